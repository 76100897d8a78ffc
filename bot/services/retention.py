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


def mask_interactions(session: Session, *where: Any, marker: str, **also: Any) -> int:
    """Replace the text of the matching interactions with ``marker`` and drop their entities
    and attachment metadata (``also``: further columns to set); returns the rows changed.

    Rows whose text is the marker already are left alone, so running it twice changes
    nothing the second time."""
    return _rowcount(
        session.execute(
            sa.update(Interaction)
            .where(*where, col(Interaction.text) != marker)
            .values(text=marker, entities=sa.null(), attachment=sa.null(), **also)
            .execution_options(synchronize_session=False)
        )
    )


def mask_survey_comments(session: Session, *where: Any, marker: str) -> int:
    """Replace the comments of the matching surveys with ``marker``; scores stay."""
    return _rowcount(
        session.execute(
            sa.update(Survey)
            .where(*where, col(Survey.comment).is_not(None), col(Survey.comment) != marker)
            .values(comment=marker)
            .execution_options(synchronize_session=False)
        )
    )


def mask_old_texts(session: Session, *, months: int, now: datetime) -> RetentionResult:
    """Mask what is older than ``months`` and record the run in the audit log."""
    cutoff = months_before(now, months)
    interactions = mask_interactions(session, col(Interaction.created_at) < cutoff, marker=MASK)
    comments = mask_survey_comments(session, col(Survey.answered_at) < cutoff, marker=MASK)
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
