"""`crmbot db backup|restore` and `crmbot export interactions`: data protection commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import console, err, fail, get_settings

export_app = typer.Typer(help="Export data for analysts (pseudonymized).", no_args_is_help=True)


def backup_command(
    file: Annotated[Path, typer.Argument(help="Where to write the backup.")],
) -> None:
    """Make a consistent backup while the bot runs (SQLite backup API, or pg_dump)."""
    from db.backup import BackupError, backup

    settings = get_settings()
    try:
        result = backup(settings.resolved_database_url, file)
    except BackupError as exc:
        raise fail(str(exc)) from None
    console.print(f"Backed up to {result.path} ({result.bytes:,} bytes, {result.method}).")


def restore_command(
    file: Annotated[Path, typer.Argument(help="A backup made by `crmbot db backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a database that already has data.")
    ] = False,
) -> None:
    """Restore a backup; refuses to overwrite a non-empty database without --force."""
    from db import migrate
    from db.backup import BackupError, restore
    from db.engine import make_engine

    settings = get_settings()
    try:
        restore(settings.resolved_database_url, file, force=force)
    except BackupError as exc:
        raise fail(str(exc)) from None
    engine = make_engine(settings.resolved_database_url)
    revision = migrate.current_revision(engine)
    engine.dispose()
    console.print(f"Restored {file} (schema revision {revision or 'none'}).")
    if revision != migrate.head_revision():
        err.print("The restored schema is older than this crmbot: run `crmbot db upgrade`.")


@export_app.command("interactions")
def export_interactions_command(
    file: Annotated[Path, typer.Argument(help="CSV file to write.")],
    pseudonymize: Annotated[
        bool,
        typer.Option(
            "--pseudonymize", help="Keyed pseudonyms instead of ids, contact data masked."
        ),
    ] = False,
) -> None:
    """Write all interactions as analysis-ready CSV (with --pseudonymize for sharing)."""
    from rich.progress import Progress

    from bot.services.export import ExportError, export_interactions
    from db.clock import utcnow
    from db.engine import make_engine, make_session_factory, session_scope

    settings = get_settings()
    if not pseudonymize:
        raise fail("only pseudonymized exports are offered: add --pseudonymize")
    if settings.pseudonym_key is None:
        raise fail(
            "CRMBOT_PSEUDONYM_KEY is not set: set a long random secret (e.g. from "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`) and keep it; "
            "the same key gives the same pseudonyms in every export."
        )
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    try:
        with Progress(console=err, transient=True) as progress, session_scope(factory) as session:
            task = progress.add_task("exporting interactions", total=None)
            count = export_interactions(
                session,
                file,
                key=settings.pseudonym_key.get_secret_value(),
                now=utcnow(),
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except ExportError as exc:
        raise fail(str(exc)) from None
    finally:
        engine.dispose()
    console.print(f"Wrote {count:,} interactions to {file} (pseudonymized).")
