"""The `crmbot` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bot.logs import setup_logging
from bot.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="crmbot: a conversational CRM assistant that lives in Telegram.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)
config_app = typer.Typer(help="Show the configuration.", no_args_is_help=True)
nlu_app = typer.Typer(help="Train and try the NLU pipeline.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(nlu_app, name="nlu")

console = Console()
err = Console(stderr=True)
log = logging.getLogger("crmbot")


def _settings(**overrides: object) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        err.print(f"[bold red]Configuration error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    secret = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    setup_logging(settings.log_level, secrets=(secret,))
    return settings


@app.command()
def run(
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Public HTTPS URL for a webhook; without it the bot uses long polling."),
    ] = None,
    listen: Annotated[
        str, typer.Option(help="Address the webhook server binds to.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the webhook server listens on.")] = 8443,
    secret_token: Annotated[
        str | None,
        typer.Option(
            help="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; others get 403.",
            envvar="CRMBOT_WEBHOOK_SECRET",
        ),
    ] = None,
) -> None:
    """Run the Telegram bot (long polling, or a webhook with --webhook-url)."""
    from bot.telegram.runner import WebhookOptions, run_bot
    from bot.wiring import build_services

    settings = _settings()
    try:
        settings.token()
        webhook = WebhookOptions(webhook_url, listen, port, secret_token) if webhook_url else None
        if webhook:
            webhook.validate()
    except SettingsError as exc:
        err.print(f"[bold red]Configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    services = build_services(settings)
    run_bot(settings, services, webhook=webhook)


@app.command()
def chat(
    staff: Annotated[bool, typer.Option("--staff", help="Chat as a staff member.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Use the demo database.")] = False,
    name: Annotated[str, typer.Option(help="Your name in the chat.")] = "Console User",
    user_id: Annotated[int | None, typer.Option(help="Your user id in the chat.")] = None,
) -> None:
    """Chat with the assistant in the terminal, as a customer or (--staff) as staff."""
    from bot.console import console_sender, run_console
    from bot.demo.run import demo_database_url
    from bot.demo.script import DEMO_STAFF_ID
    from bot.wiring import build_services

    settings = _settings()
    if demo:
        if not (settings.data_dir / "demo.sqlite3").exists():
            err.print("No demo database yet: run `crmbot demo` first.")
            raise typer.Exit(2)
        settings = settings.model_copy(
            update={
                "database_url": demo_database_url(settings.data_dir),
                "staff_ids": settings.staff_ids | {DEMO_STAFF_ID},
            }
        )
    if user_id is None:
        user_id = (
            min(settings.staff_ids | settings.admin_ids)
            if staff and (settings.staff_ids | settings.admin_ids)
            else (1 if staff else 100_000)
        )
    if staff and not settings.is_staff(user_id):
        settings = settings.model_copy(update={"staff_ids": settings.staff_ids | {user_id}})
    with console.status("Loading…"):
        services = build_services(settings)
    run_console(services, sender=console_sender(user_id=user_id, name=name), console=console)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=50, help="Number of demo customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed of the demo shop.")] = 42,
) -> None:
    """Build a fresh demo shop and play scripted conversations (no token needed)."""
    from bot.demo.run import run_demo

    settings = _settings()
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    run_demo(settings, console=console, customers=customers, seed=seed)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations."""
    from db import migrate
    from db.engine import make_engine

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    console.print(f"Database is at revision {migrate.current_revision(engine)} (newest).")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    from db import migrate
    from db.engine import make_engine

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    state = "up to date" if current == head else f"behind (newest is {head})"
    console.print(f"revision {current or 'none'}: {state}")


@config_app.command("show")
def config_show() -> None:
    """Print the configuration, with secrets masked."""
    settings = _settings()
    table = Table("variable", "value")
    for key, value in settings.masked().items():
        table.add_row(key, value)
    console.print(table)


@nlu_app.command("train")
def nlu_train(
    output: Annotated[Path, typer.Option(help="Folder to write the trained pipeline to.")],
    data: Annotated[
        Path | None,
        typer.Option(help="Folder with intents.yml, sentiment.yml and out_of_scope.yml."),
    ] = None,
) -> None:
    """Train the NLU pipeline and save it (then set CRMBOT_MODEL_PATH to use it)."""
    from nlp.pipeline import NLU
    from nlp.training import DATA_DIR, TrainingDataError, load_training_data, train_pipeline

    _settings()
    try:
        training = load_training_data(data or DATA_DIR)
    except TrainingDataError as exc:
        err.print(f"[bold red]Training data error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    with console.status(f"Training on {len(training.intents):,} intent examples…"):
        nlu = NLU(train_pipeline(training))
    nlu.save(output)
    console.print(f"Saved to {output}. Use it with CRMBOT_MODEL_PATH={output}")


@nlu_app.command("analyze")
def nlu_analyze(text: Annotated[str, typer.Argument(help="A customer message.")]) -> None:
    """Show what the NLU makes of one message."""
    from nlp import load_or_train

    settings = _settings()
    result = load_or_train(model_path=settings.model_path).analyze(text)
    console.print(
        f"intent: {result.intent} ({result.confidence:.2f}); best guess {result.top_intent}"
    )
    console.print(f"sentiment: {result.sentiment} ({result.sentiment_score:+.2f})")
    for entity in result.entities:
        console.print(f"entity: {entity.label} {entity.text!r} → {entity.value}", markup=False)


@app.command("fake-telegram")
def fake_telegram(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8081,
) -> None:
    """Run the built-in fake Telegram Bot API server (for trying the bot offline)."""
    from bot.fake_telegram.__main__ import main as fake_main

    raise typer.Exit(fake_main(["--host", host, "--port", str(port)]))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
