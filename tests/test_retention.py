"""Retention: old message texts are masked by a scheduled job, aggregates stay, and the
run is in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.services.jobs import run_job
from bot.services.retention import MASK, months_before
from db.engine import session_scope
from db.models import AuditAction, AuditEntry, InboundUpdate, Interaction, Survey
from tests.helpers import say

NOW = datetime(2026, 11, 29, 3, 30, tzinfo=UTC)


def test_months_before_clamps_to_the_end_of_the_month():
    assert months_before(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert months_before(datetime(2026, 11, 29, tzinfo=UTC), 24) == datetime(
        2024, 11, 29, tzinfo=UTC
    )


def test_retention_masks_old_texts_and_keeps_intent_and_sentiment(services):
    old = NOW - timedelta(days=800)
    say(services, "my email is ada@example.com, order 20931 never came", now=old)
    say(services, "hello, how are you?", now=NOW - timedelta(days=10))
    with session_scope(services.session_factory) as session:
        customer_id = session.exec(select(Interaction)).first().customer_id
        for days, comment in ((800, "slow courier, call +49 151 2345 6789"), (5, "great")):
            at = NOW - timedelta(days=days)
            session.add(
                Survey(
                    customer_id=customer_id,
                    kind="csat",
                    sent_at=at,
                    answered_at=at,
                    score=4,
                    comment=comment,
                )
            )
        for update_id, days in ((1, 800), (2, 1)):
            session.add(
                InboundUpdate(
                    update_id=update_id,
                    kind="message",
                    payload={"text": "raw"},
                    received_at=NOW - timedelta(days=days),
                )
            )
    with session_scope(services.session_factory) as session:
        before = [
            (i.id, i.intent, i.sentiment, i.direction)
            for i in session.exec(select(Interaction).order_by(Interaction.id))
        ]
    outcome = run_job(services, "retention", scheduled_for=NOW)
    assert outcome.status == "succeeded"
    counts = outcome.report.counts
    assert counts["interactions_masked"] == 2  # the old message and its answer
    assert counts["survey_comments_masked"] == 1 and counts["raw_updates_deleted"] == 1
    with session_scope(services.session_factory) as session:
        rows = list(session.exec(select(Interaction).order_by(Interaction.id)))
        (entry,) = session.exec(select(AuditEntry)).all()
        surveys = session.exec(select(Survey).order_by(Survey.id)).all()
        updates = session.exec(select(InboundUpdate)).all()
    assert [(s.score, s.comment) for s in surveys] == [(4, MASK), (4, "great")]
    assert [u.update_id for u in updates] == [2], "only the old raw update goes"
    assert [(i.id, i.intent, i.sentiment, i.direction) for i in rows] == before
    old_rows = [i for i in rows if i.created_at < NOW - timedelta(days=700)]
    assert old_rows and all(i.text == MASK and i.entities is None for i in old_rows)
    assert all("ada@example.com" not in i.text for i in rows)
    assert next(i.text for i in rows if i.created_at > NOW - timedelta(days=30)) == (
        "hello, how are you?"
    )
    assert entry.action == AuditAction.RETENTION_MASKED and entry.actor == "system"
    assert entry.detail["interactions_masked"] == 2 and entry.detail["months"] == 24
    again = run_job(services, "retention", scheduled_for=NOW + timedelta(days=1))
    assert again.report.counts["interactions_masked"] == 0, "masking is done once"
