"""Consistent backups while the bot runs, and restores that never overwrite by accident.

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies a consistent
  snapshot page by page while other connections keep writing (WAL mode).
- PostgreSQL: ``pg_dump --format=custom`` (one transaction, so one consistent snapshot),
  restored with ``pg_restore --clean``. Both must be on PATH, in the server's major version
  or newer. The password goes to them in ``PGPASSWORD``, never on the command line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlmodel import SQLModel

from db import models  # noqa: F401  (registers the tables in SQLModel.metadata)
from db.engine import make_engine

SQLITE_SUFFIX = ".sqlite3"
PG_SUFFIX = ".dump"


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    method: str


def backend(url: str) -> str:
    return make_url(url).get_backend_name()


def suffix_for(url: str) -> str:
    return SQLITE_SUFFIX if backend(url) == "sqlite" else PG_SUFFIX


def backup(url: str, target: Path) -> BackupResult:
    """Write a consistent backup of the database at ``url`` to ``target`` (atomically)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if backend(url) == "sqlite":
        _sqlite_copy(_sqlite_path(url), partial)
        method = "sqlite online backup"
    elif backend(url) == "postgresql":
        _pg_run("pg_dump", url, ["--format=custom", "--no-owner", f"--file={partial}"])
        method = "pg_dump --format=custom"
    else:
        raise BackupError(f"backups of {backend(url)} databases are not supported")
    partial.replace(target)
    return BackupResult(target, target.stat().st_size, method)


def restore(url: str, source: Path, *, force: bool = False) -> None:
    """Restore ``source`` into the database at ``url``.

    Refuses to overwrite a database that holds any rows unless ``force`` is given. Stop
    the bot first: a restore replaces everything under it.
    """
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    if not force and not is_empty(url):
        raise BackupError(
            "the database is not empty; restoring would overwrite it. "
            "Use --force if that is what you want (stop the bot first)."
        )
    if backend(url) == "sqlite":
        _check_sqlite_file(source)
        _sqlite_copy(source, _sqlite_path(url))
    elif backend(url) == "postgresql":
        _pg_run("pg_restore", url, ["--clean", "--if-exists", "--no-owner", str(source)])
    else:
        raise BackupError(f"restores into {backend(url)} databases are not supported")


def is_empty(url: str) -> bool:
    """True if none of crmbot's tables exists or has a row."""
    if backend(url) == "sqlite" and not Path(_sqlite_path(url)).exists():
        return True
    engine = make_engine(url)
    try:
        existing = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                if (
                    table.name in existing
                    and conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
                ):
                    return False
        return True
    finally:
        engine.dispose()


def prune(folder: Path, *, keep: int, prefix: str = "crmbot-") -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``folder``; returns what was deleted."""
    backups = sorted(
        p
        for p in folder.glob(f"{prefix}*")
        if p.suffix in {SQLITE_SUFFIX, PG_SUFFIX} and p.is_file()
    )
    doomed = backups[:-keep] if keep > 0 else backups
    for path in doomed:
        path.unlink()
    return doomed


def scheduled_name(url: str, moment: datetime) -> str:
    return f"crmbot-{moment:%Y%m%d-%H%M%S}{suffix_for(url)}"


# --- SQLite ------------------------------------------------------------------------------


def _sqlite_path(url: str) -> str:
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("only file-based SQLite databases can be backed up or restored")
    return str(Path(database).expanduser())


def _sqlite_copy(source: str | Path, target: str | Path) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(target), timeout=30)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _check_sqlite_file(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (result,) = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite backup: {exc}") from None
    if result != "ok":
        raise BackupError(f"{path} is damaged: {result}")


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_run(tool: str, url: str, args: list[str]) -> None:
    exe = shutil.which(tool)
    if exe is None:
        raise BackupError(
            f"{tool} is not on PATH; install the PostgreSQL client tools "
            "(e.g. apt-get install postgresql-client) in the server's major version"
        )
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    schema = _search_path_schema(parsed)
    flag = "--dbname" if tool == "pg_restore" else None
    conninfo = _libpq_url(parsed)
    command = [exe, *(["--schema", schema] if schema else []), *args]
    command += [f"{flag}={conninfo}"] if flag else [conninfo]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip()[-2000:]}")


def _libpq_url(parsed: URL) -> str:
    """The URL as libpq understands it, without driver name and password."""
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return plain.render_as_string(hide_password=False)


def _search_path_schema(parsed: URL) -> str | None:
    """The schema named in ``options=-csearch_path=...``, to dump or restore only that."""
    options = parsed.query.get("options")
    text = options if isinstance(options, str) else " ".join(options or ())
    for part in text.split():
        for key, values in parse_qs(part.removeprefix("-c"), separator=" ").items():
            if key == "search_path" and values:
                return values[0].split(",")[0].strip()
    return None
