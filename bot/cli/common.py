"""What every CLI module shares: consoles and the settings loader."""

from __future__ import annotations

import typer
from rich.console import Console

from bot.logs import setup_logging
from bot.settings import Settings, SettingsError, load_settings

console = Console()
err = Console(stderr=True)


def get_settings(**overrides: object) -> Settings:
    """Load settings and set up logging; a bad value exits with code 2 and names it."""
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        err.print(f"[bold red]Configuration error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    secret = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    setup_logging(settings.log_level, secrets=(secret,), log_pii=settings.log_pii)
    return settings


def fail(message: str, *, code: int = 2) -> typer.Exit:
    """Print an error for the user and return the Exit to raise."""
    err.print(f"[bold red]Error:[/] {message}", highlight=False)
    return typer.Exit(code)
