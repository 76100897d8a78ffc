"""`crmbot export interactions --pseudonymize`: keyed pseudonyms, masked contact data."""

from __future__ import annotations

import csv

from sqlmodel import select

from bot.services.export import COLUMNS, export_interactions, pseudonym
from db.clock import utcnow
from db.engine import session_scope
from db.models import AuditAction, AuditEntry, Customer
from tests.helpers import crmbot, say

PHONE = "+49 151 2345 6789"
EMAIL = "ada.lovelace@example.org"


def read(path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_export_pseudonymizes_ids_and_masks_contact_data(services, tmp_path):
    say(services, f"my phone is {PHONE}, mail {EMAIL}, where is order #20931?")
    say(services, "thanks!", user_id=502)
    seen = []
    with session_scope(services.session_factory) as session:
        count = export_interactions(
            session,
            tmp_path / "a.csv",
            key="k1",
            now=utcnow(),
            on_progress=lambda done, total: seen.append((done, total)),
        )
        ids = {c.telegram_user_id: c.id for c in session.exec(select(Customer))}
    with session_scope(services.session_factory) as session:
        export_interactions(session, tmp_path / "b.csv", key="k1", now=utcnow())
        export_interactions(session, tmp_path / "c.csv", key="k2", now=utcnow())
        entries = session.exec(select(AuditEntry)).all()
    rows = read(tmp_path / "a.csv")
    assert count == len(rows) == 4 and seen[-1] == (4, 4)
    assert list(rows[0]) == list(COLUMNS)
    first = rows[0]
    assert first["text"] == "my phone is <PHONE>, mail <EMAIL>, where is order <ORDER>?"
    assert first["customer"] == pseudonym("k1", "customer", ids[501])
    assert first["intent"] and first["direction"] == "in"
    raw = (tmp_path / "a.csv").read_text()
    assert PHONE not in raw and EMAIL not in raw and "20931" not in raw
    assert str(ids[501]) not in {r["customer"] for r in rows}
    assert read(tmp_path / "b.csv") == rows, "same key, same pseudonyms"
    assert read(tmp_path / "c.csv")[0]["customer"] != first["customer"], "another key differs"
    assert [e.action for e in entries] == [AuditAction.EXPORTED] * 3
    assert entries[0].detail == {"what": "interactions", "rows": 4, "pseudonymized": True}


def test_cli_export_needs_the_key(cli_env, tmp_path):
    assert crmbot("db", "upgrade", env=cli_env).returncode == 0
    missing = crmbot("export", "interactions", "--pseudonymize", "x.csv", env=cli_env)
    assert missing.returncode == 2 and "CRMBOT_PSEUDONYM_KEY" in missing.stderr
    env = {**cli_env, "CRMBOT_PSEUDONYM_KEY": "s3cret-key"}
    out = tmp_path / "out.csv"
    done = crmbot("export", "interactions", "--pseudonymize", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert "Wrote 0 interactions" in done.stdout and read(out) == []
    shown = crmbot("config", "show", env=env)
    assert "s3cret-key" not in shown.stdout and "CRMBOT_PSEUDONYM_KEY" in shown.stdout


def test_customers_without_analytics_consent_are_left_out(services, tmp_path):
    say(services, "where is my order?")
    say(services, "hello", user_id=502)
    say(services, "/privacy analytics off", user_id=502)
    with session_scope(services.session_factory) as session:
        count = export_interactions(session, tmp_path / "a.csv", key="k", now=utcnow())
        ids = {c.telegram_user_id: c.id for c in session.exec(select(Customer))}
    rows = read(tmp_path / "a.csv")
    assert count == len(rows) == 2
    assert {r["customer"] for r in rows} == {pseudonym("k", "customer", ids[501])}
