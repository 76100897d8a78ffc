"""Backups while the bot writes, restores that refuse to overwrite, the nightly job."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.services.jobs import run_job
from db import backup, migrate
from db.backup import BackupError
from db.clock import utcnow
from db.engine import make_engine, make_session_factory, session_scope
from db.models import Customer, Interaction
from tests.helpers import crmbot

TABLES = ("customers", "interactions", "audit_log")


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of the tables the test writes, ordered by id."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY id"))]
                for t in TABLES
            }
    finally:
        engine.dispose()


def checksum(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


class Writer(threading.Thread):
    """Inserts a customer and its interaction per transaction until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = make_engine(url)
        self.stop = threading.Event()
        self.written = 0

    def run(self) -> None:
        factory = make_session_factory(self.engine)
        while not self.stop.is_set():
            with session_scope(factory) as session:
                customer = Customer(telegram_user_id=1_000_000 + self.written)
                session.add(customer)
                session.flush()
                session.add(
                    Interaction(
                        customer_id=customer.id, direction="in", text=f"msg {self.written} \x00"
                    )
                )
            self.written += 1


@pytest.fixture
def migrated(database_url: str) -> str:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    return database_url


def test_backup_during_writes_restores_a_consistent_snapshot(migrated, tmp_path):
    writer = Writer(migrated)
    writer.start()
    try:
        while writer.written < 30:
            threading.Event().wait(0.01)
        result = backup.backup(migrated, tmp_path / "during.bak")
        at_backup = writer.written
        while writer.written < at_backup + 30:  # keep writing after the backup
            threading.Event().wait(0.01)
    finally:
        writer.stop.set()
        writer.join()
        writer.engine.dispose()
    assert result.bytes > 0 and not list(tmp_path.glob("*.partial"))
    source = snapshot(migrated)

    with pytest.raises(BackupError, match="not empty"):
        backup.restore(migrated, result.path)
    backup.restore(migrated, result.path, force=True)
    restored = snapshot(migrated)

    customers, interactions = restored["customers"], restored["interactions"]
    assert 30 <= len(customers) < len(source["customers"]), "a snapshot from mid-writing"
    assert len(customers) == len(interactions), "no transaction is half in the backup"
    for table in TABLES:  # the restored rows are exactly the source's rows up to the snapshot
        prefix = source[table][: len(restored[table])]
        assert checksum(restored[table]) == checksum(prefix), table
    last_texts = [v for v in interactions[-1] if isinstance(v, str) and v.startswith("msg ")]
    assert last_texts, "the last restored row has its text"
    engine = make_engine(migrated)
    assert migrate.is_up_to_date(engine)
    engine.dispose()


def test_restore_into_an_empty_database_needs_no_force(tmp_path):
    source = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    engine = make_engine(source)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        session.add(Customer(telegram_user_id=1))
    engine.dispose()
    backup.backup(source, tmp_path / "a.bak")
    fresh = f"sqlite:///{tmp_path / 'new' / 'b.sqlite3'}"
    assert backup.is_empty(fresh)
    backup.restore(fresh, tmp_path / "a.bak")
    assert snapshot(fresh) == snapshot(source)
    with pytest.raises(BackupError, match=r"not a SQLite backup|damaged"):
        (tmp_path / "junk.bak").write_bytes(b"not a database" * 100)
        backup.restore(fresh, tmp_path / "junk.bak", force=True)


def test_nightly_backup_job_keeps_the_newest(services, tmp_path):
    services.backup_keep = 2
    start = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
    for day in range(4):
        outcome = run_job(services, "nightly_backup", scheduled_for=start + timedelta(days=day))
        assert outcome.status == "succeeded", outcome.error
    kept = sorted(p.name for p in Path(services.backup_dir).iterdir())
    suffix = backup.suffix_for(services.database_url)
    assert kept == [f"crmbot-2026110{d}-030000{suffix}" for d in (3, 4)]
    assert outcome.report.counts["pruned"] == 1


def test_cli_backup_and_restore(cli_env, tmp_path):
    assert crmbot("db", "upgrade", env=cli_env).returncode == 0
    url = cli_env["CRMBOT_DATABASE_URL"]
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        session.add(Customer(telegram_user_id=5, first_seen_at=utcnow()))
    engine.dispose()
    done = crmbot("db", "backup", str(tmp_path / "x.bak"), env=cli_env)
    assert done.returncode == 0 and "Backed up to" in done.stdout, done.stderr
    refused = crmbot("db", "restore", str(tmp_path / "x.bak"), env=cli_env)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = crmbot("db", "restore", "--force", str(tmp_path / "x.bak"), env=cli_env)
    assert forced.returncode == 0 and "Restored" in forced.stdout, forced.stderr
