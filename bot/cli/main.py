"""The `crmbot` command line: the app and the commands that wire the bot."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.analytics import analytics_app, digest_command, jobs_app
from bot.cli.common import console, err, get_settings
from bot.cli.data import backup_command, export_app, restore_command
from bot.cli.imports import import_app
from bot.cli.nlu import nlu_app
from bot.settings import SettingsError

app = typer.Typer(
    help="crmbot: a conversational CRM assistant that lives in Telegram.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: upgrade and inspect.", no_args_is_help=True)
config_app = typer.Typer(help="Show the configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(nlu_app, name="nlu")
app.add_typer(analytics_app, name="analytics")
app.add_typer(jobs_app, name="jobs")
app.command("digest")(digest_command)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
db_app.command("backup")(backup_command)
db_app.command("restore")(restore_command)


# Options of both webhook commands (`run --webhook-url` and `serve`).
ListenOption = Annotated[str, typer.Option(help="Address the webhook server binds to.")]
PortOption = Annotated[int, typer.Option(help="Port the webhook server listens on.")]
SecretOption = Annotated[
    str | None,
    typer.Option(
        help="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; others get 403.",
        envvar="CRMBOT_WEBHOOK_SECRET",
    ),
]


@app.command()
def run(
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Public HTTPS URL for a webhook; without it the bot uses long polling."),
    ] = None,
    listen: ListenOption = "127.0.0.1",
    port: PortOption = 8443,
    secret_token: SecretOption = None,
) -> None:
    """Run the Telegram bot (long polling, or a webhook with --webhook-url)."""
    from bot.telegram.runner import WebhookOptions, run_bot
    from bot.wiring import build_services

    settings = get_settings()
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
def serve(
    webhook_url: Annotated[
        str, typer.Option(help="Public HTTPS URL Telegram posts updates to (set once at start).")
    ],
    listen: ListenOption = "127.0.0.1",
    port: PortOption = 8443,
    secret_token: SecretOption = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (more than 1 needs PostgreSQL).")
    ] = 1,
    leader_retry_seconds: Annotated[
        float, typer.Option(hidden=True, min=0.1, help="How often followers bid to lead.")
    ] = 15.0,
) -> None:
    """Serve the webhook with N worker processes (uvicorn), sharing PostgreSQL: each chat's
    order kept, the scheduler in exactly one of them."""
    from telegram.error import TelegramError

    from bot.telegram.runner import WebhookOptions
    from bot.telegram.serve import serve as serve_webhook
    from bot.telegram.serve import serve_options

    settings = get_settings()
    webhook = WebhookOptions(webhook_url, listen, port, secret_token)
    try:
        options = serve_options(
            settings, webhook, workers=workers, leader_retry_seconds=leader_retry_seconds
        )
    except SettingsError as exc:
        err.print(f"[bold red]Configuration error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    try:
        serve_webhook(settings, webhook, options)
    except TelegramError as exc:
        err.print(f"[bold red]Telegram refused the webhook:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None


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

    settings = get_settings()
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

    settings = get_settings()
    logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    run_demo(settings, console=console, customers=customers, seed=seed)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all database migrations."""
    from db import migrate
    from db.engine import make_engine

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    console.print(f"Database is at revision {migrate.current_revision(engine)} (newest).")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision."""
    from db import migrate
    from db.engine import make_engine

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    state = "up to date" if current == head else f"behind (newest is {head})"
    console.print(f"revision {current or 'none'}: {state}")


@config_app.command("show")
def config_show() -> None:
    """Print the configuration, with secrets masked."""
    settings = get_settings()
    table = Table("variable", "value")
    for key, value in settings.masked().items():
        table.add_row(key, value)
    console.print(table)


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
