"""Pseudonymized exports for analysts: keyed pseudonyms instead of ids, contact data and
order numbers masked in the text, streamed so that any size fits in memory.

Pseudonyms are HMAC-SHA256 over ``kind:id`` with the operator's secret key
(``CRMBOT_PSEUDONYM_KEY``): stable across exports with the same key, so analysts can join
files, and not reversible without the key. Masking reuses the NLU's entity rules
(:mod:`nlp.entities`) on a blank spaCy pipeline, so it finds what the assistant finds.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import spacy
from sqlmodel import Session, col, func, select

from bot.services import audit
from bot.services.privacy import analytics_opt_outs
from db.models import AuditAction, Interaction
from nlp.entities import add_entity_ruler

MASKED_LABELS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "ORDER_ID": "<ORDER>"}
COLUMNS = (
    "interaction",
    "customer",
    "conversation",
    "created_at",
    "direction",
    "channel",
    "kind",
    "intent",
    "intent_confidence",
    "sentiment",
    "sentiment_score",
    "by_staff",
    "text",
)
BATCH = 1000


class ExportError(RuntimeError):
    """An export could not be written; the message says why."""


def pseudonym(key: str, kind: str, value: int | None) -> str:
    """A stable keyed pseudonym such as ``c_3f9a…`` (16 hex digits); empty for no value."""
    if value is None:
        return ""
    digest = hmac.new(key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind[0]}_{digest[:16]}"


class TextMasker:
    """Replaces e-mails, phone numbers and order numbers with placeholders."""

    def __init__(self) -> None:
        self.nlp = spacy.blank("en")
        add_entity_ruler(self.nlp)

    def mask_many(self, texts: list[str]) -> Iterator[str]:
        for text, doc in zip(texts, self.nlp.pipe(texts, batch_size=256), strict=True):
            out, last = [], 0
            for ent in doc.ents:
                if ent.label_ in MASKED_LABELS:
                    out += [text[last : ent.start_char], MASKED_LABELS[ent.label_]]
                    last = ent.end_char
            out.append(text[last:])
            yield "".join(out)

    def mask(self, text: str) -> str:
        return next(self.mask_many([text]))


def export_interactions(
    session: Session,
    path: Path,
    *,
    key: str,
    now: datetime,
    actor: str = "operator",
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write every interaction to ``path`` as pseudonymized CSV; returns the row count.

    Customers who withdrew their analytics consent (``/privacy analytics off``) are left out.

    The export itself is recorded in the audit log (who, how many rows, not the file).
    """
    if not key:
        raise ExportError("a pseudonym key is required")
    opted_out = analytics_opt_outs(session)
    total = int(session.exec(select(func.count()).select_from(Interaction)).one())
    masker = TextMasker()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    done, seen, last_id = 0, 0, 0
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        while True:  # keyset pagination: constant memory, no long-held cursor
            batch = session.exec(
                select(Interaction)
                .where(col(Interaction.id) > last_id)
                .order_by(col(Interaction.id))
                .limit(BATCH)
            ).all()
            if not batch:
                break
            last_id = batch[-1].id or last_id
            seen += len(batch)
            kept = [row for row in batch if row.customer_id not in opted_out]
            texts = [" ".join((row.text or "").replace("\x00", " ").split()) for row in kept]
            for row, text in zip(kept, masker.mask_many(texts), strict=True):
                writer.writerow(_row(row, text, key))
            done += len(kept)
            session.expunge_all()
            if on_progress is not None:
                on_progress(seen, total)
    partial.replace(path)
    audit.record(
        session,
        action=AuditAction.EXPORTED,
        now=now,
        actor=actor,
        detail={"what": "interactions", "rows": done, "pseudonymized": True},
    )
    return done


def _row(row: Interaction, text: str, key: str) -> list[object]:
    return [
        pseudonym(key, "interaction", row.id),
        pseudonym(key, "customer", row.customer_id),
        pseudonym(key, "conversation", row.conversation_id),
        row.created_at.isoformat(),
        row.direction,
        row.channel,
        row.kind,
        row.intent or "",
        "" if row.intent_confidence is None else round(row.intent_confidence, 4),
        row.sentiment or "",
        "" if row.sentiment_score is None else round(row.sentiment_score, 4),
        int(row.staff_member_id is not None),
        text,
    ]
