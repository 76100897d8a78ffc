"""The audit trail: every staff read or change of a customer's data is appended, only
admins can read it, and nothing can edit it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.services.assistant import UNKNOWN_COMMAND
from bot.services.buttons import handle_callback
from bot.services.messages import IncomingCallback
from bot.services.refresh import run_refresh
from db.engine import session_scope
from db.models import AuditAction, AuditEntry, Customer
from tests.conftest import ADMIN_ID, STAFF_ID
from tests.helpers import say, sender, texts_to


def audit_rows(services) -> list[AuditEntry]:
    with session_scope(services.session_factory) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.id)).all())


def customer_id(services, telegram_user_id: int = 501) -> int:
    with session_scope(services.session_factory) as session:
        customer = session.exec(
            select(Customer).where(Customer.telegram_user_id == telegram_user_id)
        ).one()
        assert customer.id is not None
        return customer.id


def test_customer_profile_read_is_audited_with_who_and_whom(services):
    say(services, "hello")
    cid = customer_id(services)
    say(services, f"/customer #{cid}", user_id=STAFF_ID)
    say(services, "/customer #99999", user_id=STAFF_ID)  # no customer, nothing was read
    (entry,) = audit_rows(services)
    assert entry.action == AuditAction.CUSTOMER_VIEWED
    assert (entry.actor_telegram_id, entry.customer_id) == (STAFF_ID, cid)
    assert entry.staff_member_id is not None and entry.at.tzinfo is not None


def test_handoff_reply_and_resolve_are_audited(services):
    replies = say(services, "I want to talk to a real person")
    (card,) = texts_to(replies, STAFF_ID)
    conversation_id = int(card.split("#")[1].split(":")[0])
    say(services, f"/reply {conversation_id} on it", user_id=STAFF_ID)
    say(services, f"/reply {conversation_id} done soon", user_id=STAFF_ID)
    say(services, f"/resolve {conversation_id}", user_id=STAFF_ID)
    rows = audit_rows(services)
    assert [r.action for r in rows] == [
        AuditAction.HANDOFF_TAKEN,
        AuditAction.REPLY_SENT,
        AuditAction.REPLY_SENT,
        AuditAction.CONVERSATION_RESOLVED,
    ]
    cid = customer_id(services)
    assert {(r.customer_id, r.actor_telegram_id) for r in rows} == {(cid, STAFF_ID)}
    assert all(r.detail == {"conversation": conversation_id} for r in rows)


def test_failed_staff_action_leaves_no_entry(services):
    say(services, "/reply 999 hello", user_id=STAFF_ID)
    assert audit_rows(services) == []


def test_segment_pages_record_the_customers_listed(shop):
    run_refresh(shop, as_of=datetime.now(UTC))
    (page,) = say(shop, "/segment loyal customers", user_id=STAFF_ID)
    (button,) = page.buttons[0]
    press = IncomingCallback(sender=sender(STAFF_ID), data=button.data, message_id=5)
    handle_callback(shop, press)
    first, second = audit_rows(shop)
    assert first.action == second.action == AuditAction.SEGMENT_VIEWED
    assert first.detail["segment"] == "Loyal Customers" and second.detail["page"] == 1
    listed = first.detail["customers"]
    assert len(listed) == 10 and all(f"#{cid} " in page.text for cid in listed)
    assert not set(listed) & set(second.detail["customers"])


def test_handoff_and_at_risk_lists_record_the_customers_named(shop):
    run_refresh(shop, as_of=datetime.now(UTC))
    say(shop, "I want to talk to a real person")
    (listing,) = say(shop, "/handoffs", user_id=STAFF_ID)
    (risky,) = say(shop, "/atrisk", user_id=STAFF_ID)
    assert "waiting for a human" in listing.text
    handoffs, atrisk = audit_rows(shop)
    assert handoffs.action == atrisk.action == AuditAction.LIST_VIEWED
    assert handoffs.detail == {"list": "handoffs", "customers": [customer_id(shop)]}
    assert atrisk.detail["list"] == "atrisk" and atrisk.detail["customers"]
    assert all(f"#{cid} " in risky.text for cid in atrisk.detail["customers"])


def test_audit_command_is_for_admins_only(services):
    say(services, "hello")
    cid = customer_id(services)
    say(services, f"/customer {cid}", user_id=STAFF_ID)
    (answer,) = say(services, f"/audit customer {cid}", user_id=ADMIN_ID)
    assert f"staff {STAFF_ID} · customer.viewed customer #{cid}" in answer.text
    (by_staff,) = say(services, f"/audit staff {STAFF_ID}", user_id=ADMIN_ID)
    assert "customer.viewed" in by_staff.text
    assert say(services, "/audit", user_id=ADMIN_ID)[0].text.startswith("Usage")
    # a non-admin staff member and a customer get the unknown-command answer, nothing else
    assert [r.text for r in say(services, f"/audit customer {cid}", user_id=STAFF_ID)] == [
        UNKNOWN_COMMAND
    ]
    assert [r.text for r in say(services, f"/audit customer {cid}")] == [UNKNOWN_COMMAND]
    assert "/audit" not in say(services, "/help", user_id=STAFF_ID)[0].text
    assert "/audit" in say(services, "/help", user_id=ADMIN_ID)[0].text
    actions = [r.action for r in audit_rows(services)]
    assert actions == [
        AuditAction.CUSTOMER_VIEWED,
        AuditAction.AUDIT_VIEWED,
        AuditAction.AUDIT_VIEWED,
    ]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"]
)
def test_the_database_refuses_to_edit_the_audit_log(services, statement):
    say(services, "hello")
    say(services, f"/customer {customer_id(services)}", user_id=STAFF_ID)
    with (
        pytest.raises(sa.exc.DatabaseError, match="append-only"),
        session_scope(services.session_factory) as session,
    ):
        session.execute(sa.text(statement))
    assert len(audit_rows(services)) == 1


def test_digest_naming_customers_is_audited(shop):
    from datetime import timedelta

    from bot.services.digest import ATTENTION_SEGMENTS
    from db.models import CustomerSnapshot, Interaction

    run_refresh(shop, as_of=datetime.now(UTC))
    yesterday_noon = datetime.now(UTC).replace(hour=12, minute=0) - timedelta(days=1)
    with session_scope(shop.session_factory) as session:
        snap = session.exec(
            select(CustomerSnapshot).where(CustomerSnapshot.segment.in_(ATTENTION_SEGMENTS))
        ).first()
        assert snap is not None
        session.add(
            Interaction(
                customer_id=snap.customer_id,
                direction="in",
                text="awful",
                intent="complaint",
                sentiment="negative",
                sentiment_score=-0.9,
                created_at=yesterday_noon,
            )
        )
    (digest,) = say(shop, "/digest day", user_id=STAFF_ID)
    assert f"#{snap.customer_id} " in digest.text
    (entry,) = audit_rows(shop)
    assert entry.action == AuditAction.LIST_VIEWED and entry.actor_telegram_id == STAFF_ID
    assert entry.detail == {"list": "digest", "customers": [snap.customer_id]}
