"""Retention: after the configured period, raw message texts are masked; aggregates stay.

What goes: the text, the extracted entities (they hold emails, phone numbers, order
numbers) and attachment metadata of interactions, and survey comments. What stays: the
rows themselves with direction, kind, intent, sentiment and timestamps, so counts, intent
mixes, sentiment trends, CSAT and NPS over old periods are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col

from bot.services import audit
from db.models import AuditAction, InboundUpdate, Interaction, Survey

MASK = "[removed after the retention period]"


@dataclass(frozen=True)
class RetentionResult:
    cutoff: datetime
    interactions: int
    survey_comments: int
    raw_updates: int

    def counts(self) -> dict[str, float | int | str]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "interactions_masked": self.interactions,
            "survey_comments_masked": self.survey_comments,
            "raw_updates_deleted": self.raw_updates,
        }


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to month end)."""
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def _rowcount(result: sa.Result[Any]) -> int:
    """Rows an UPDATE changed (execute() of an UPDATE returns a CursorResult)."""
    return int(cast(sa.CursorResult[Any], result).rowcount or 0)


def mask_old_texts(session: Session, *, months: int, now: datetime) -> RetentionResult:
    """Mask what is older than ``months`` and record the run in the audit log."""
    cutoff = months_before(now, months)
    interactions = _rowcount(
        session.execute(
            sa.update(Interaction)
            .where(col(Interaction.created_at) < cutoff, col(Interaction.text) != MASK)
            .values(text=MASK, entities=sa.null(), attachment=sa.null())
            .execution_options(synchronize_session=False)
        )
    )
    comments = _rowcount(
        session.execute(
            sa.update(Survey)
            .where(
                col(Survey.answered_at) < cutoff,
                col(Survey.comment).is_not(None),
                col(Survey.comment) != MASK,
            )
            .values(comment=MASK)
            .execution_options(synchronize_session=False)
        )
    )
    # Raw Telegram updates (they hold texts and names) are only needed to drop redeliveries,
    # which Telegram makes within a day: past retention they go entirely.
    updates = _rowcount(
        session.execute(
            sa.delete(InboundUpdate)
            .where(col(InboundUpdate.received_at) < cutoff)
            .execution_options(synchronize_session=False)
        )
    )
    result = RetentionResult(cutoff, interactions, comments, updates)
    audit.record(
        session,
        action=AuditAction.RETENTION_MASKED,
        now=now,
        actor=audit.SYSTEM,
        detail={"months": months, **result.counts()},
    )
    return result
