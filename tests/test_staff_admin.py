"""Staff roles: admins add and remove agents and admins in the chat; agents handle chats
but cannot manage staff; the configured allowlist can only be changed in the config."""

from __future__ import annotations

from sqlmodel import select

from bot.services.assistant import UNKNOWN_COMMAND
from bot.services.staff_directory import StaffDirectory
from db.engine import session_scope
from db.models import AuditAction, AuditEntry, StaffMember
from tests.conftest import ADMIN_ID, STAFF_ID
from tests.helpers import say

NEWBIE = 8080


def test_admin_adds_an_agent_who_can_then_work_and_removes_them(services):
    assert say(services, "/stats", user_id=NEWBIE)[0].text == UNKNOWN_COMMAND
    (added,) = say(services, f"/staff add {NEWBIE}", user_id=ADMIN_ID)
    assert "now staff (agent)" in added.text
    assert "crmbot stats" in say(services, "/stats", user_id=NEWBIE)[0].text
    assert say(services, "/staff", user_id=NEWBIE)[0].text == UNKNOWN_COMMAND, "agents can't"
    (listing,) = say(services, "/staff", user_id=ADMIN_ID)
    assert f"{NEWBIE}: agent (added in chat)" in listing.text
    assert f"{STAFF_ID}: agent (configured)" in listing.text

    (removed,) = say(services, f"/staff remove {NEWBIE}", user_id=ADMIN_ID)
    assert "no longer staff" in removed.text
    assert say(services, "/stats", user_id=NEWBIE)[0].text == UNKNOWN_COMMAND
    with session_scope(services.session_factory) as session:
        changes = session.exec(
            select(AuditEntry.detail).where(AuditEntry.action == AuditAction.STAFF_CHANGED)
        ).all()
    assert [c["change"] for c in changes] == ["added as agent", "removed"]


def test_an_added_admin_can_manage_staff(services):
    say(services, f"/staff add {NEWBIE} admin", user_id=ADMIN_ID)
    (added,) = say(services, "/staff add 9090", user_id=NEWBIE)
    assert "now staff" in added.text


def test_configured_staff_and_bad_arguments_are_refused(services):
    (answer,) = say(services, f"/staff remove {STAFF_ID}", user_id=ADMIN_ID)
    assert "CRMBOT_STAFF_IDS" in answer.text
    for args in ("add", "add x", "remove 1 admin", "add 5 boss", "promote 5"):
        (usage,) = say(services, f"/staff {args}", user_id=ADMIN_ID)
        assert usage.text.startswith("Usage"), args
    (missing,) = say(services, "/staff remove 5555", user_id=ADMIN_ID)
    assert "not on the staff list" in missing.text
    assert say(services, "/staff add 1", user_id=STAFF_ID)[0].text == UNKNOWN_COMMAND


def test_chat_added_staff_survive_the_sync_at_start(services):
    from db import queries

    say(services, f"/staff add {NEWBIE}", user_id=ADMIN_ID)
    with session_scope(services.session_factory) as session:
        queries.sync_staff(
            session=session, staff_ids=frozenset({STAFF_ID}), admin_ids=frozenset({ADMIN_ID})
        )
        member = session.exec(
            select(StaffMember).where(StaffMember.telegram_user_id == NEWBIE)
        ).one()
        assert member.active


def test_the_directory_rereads_the_database_after_its_ttl(services):
    clock = [0.0]
    directory = StaffDirectory(services.session_factory, ttl=10, clock=lambda: clock[0])
    assert directory.added() == (frozenset(), frozenset())
    with session_scope(services.session_factory) as session:
        session.add(StaffMember(telegram_user_id=NEWBIE, source="chat"))
    assert directory.added()[0] == frozenset(), "cached"
    clock[0] = 11
    assert directory.added()[0] == frozenset({NEWBIE})
