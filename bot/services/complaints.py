"""``/complaints``: what customers complain about, for staff.

The messages the NLU read as complaints in a stretch of time (the last 7 days, today, or
the last 30 days), against the same stretch before it; what they are about, by a few topic
word lists of our own (a message can touch several topics); the products of the catalogue
they name; and the latest ones with who wrote them and where their conversation stands.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlmodel import Session

from bot.services.context import Services
from db import queries
from db import report_queries as rq
from db.models import ConversationStatus

# Topic: words that put a complaint under it (lower case, whole words, simple forms).
TOPICS: dict[str, re.Pattern[str]] = {
    name: re.compile(r"\b(?:" + "|".join(words) + r")\b", re.I)
    for name, words in {
        "late or missing delivery": [
            "late", "delay(?:ed)?", "still waiting", "(?:hasn'?t|has not|not|never) "
            "(?:arrived|come|came|shown up)", "never (?:got|received)", "lost", "tracking",
            "delivered but", "(?:parcel|package|delivery|courier|shipping)",
        ],
        "damaged or faulty": [
            "broken", "broke", "damaged", "cracked", "faulty", "defective", "leak(?:s|ing)?",
            "torn", "scratched", "dead", "(?:doesn'?t|does not|don'?t|not|stopped) work(?:ing)?",
            "hole",
        ],
        "wrong or missing item": [
            "wrong", "someone else'?s?", "instead of", "missing", "not what I ordered",
            "different (?:colou?r|size|item)",
        ],
        "refund or payment": [
            "refunds?", "money back", "charged", "overcharged", "payment", "paid", "card",
        ],
        "service": [
            "rude", "service", "support", "nobody", "no one", "call(?:ed)? back",
            "callback", "ignored", "no answer", "bot",
        ],
    }.items()
}  # fmt: skip
COMPLAINT = "complaint"  # the intent counted
LATEST = 8
SNIPPET_CHARS = 90
STATUS_WORDS: dict[str, str] = {
    ConversationStatus.WAITING_HUMAN: "waiting for a person",
    ConversationStatus.OPEN: "open",
    ConversationStatus.RESOLVED: "resolved",
}
# /complaints ARG: the stretch of time (None: since local midnight).
PERIODS: dict[str, int | None] = {"": 7, "week": 7, "7": 7, "today": None, "month": 30, "30": 30}
USAGE = "Usage: /complaints [today|week|month] (the last 7 days by default)"


@dataclass(frozen=True)
class Stretch:
    start: datetime
    end: datetime
    label: str  # "last 7 days"
    before_label: str  # "the 7 days before"

    def before(self) -> Stretch:
        length = self.end - self.start
        return Stretch(self.start - length, self.start, self.before_label, "")


def stretch(services: Services, arg: str, now: datetime) -> Stretch | None:
    """The time the report covers, for ``/complaints ARG``; None for an unknown ARG."""
    key = arg.strip().lower().removesuffix(" days").removesuffix("days")
    if key not in PERIODS:
        return None
    days = PERIODS[key]
    if days is None:
        midnight = datetime.combine(now.astimezone(services.tz).date(), time(), services.tz)
        return Stretch(midnight, now, "today", "yesterday by this time")
    return Stretch(now - timedelta(days=days), now, f"last {days} days", f"the {days} days before")


def topics(text: str) -> list[str]:
    """The topics a complaint touches (none: "other")."""
    return [name for name, pattern in TOPICS.items() if pattern.search(text)]


def complaints_report(
    services: Services,
    session: Session,
    period: Stretch,
    *,
    viewed: list[int] | None = None,
) -> str:
    """The report; the customers named in it are appended to ``viewed`` (a read of them)."""
    rows = rq.complaint_rows(session=session, start=period.start, end=period.end, intent=COMPLAINT)
    before = period.before()
    earlier = queries.inbound_label_counts(
        session=session, column="intent", since=before.start, until=before.end
    ).get(COMPLAINT, 0)
    change = len(rows) - earlier
    trend = (
        f"(as many as {before.label})"
        if change == 0
        else f"({'▲' if change > 0 else '▼'} {change:+d} vs {before.label})"
    )
    if not rows:
        return f"😌 No complaints, {period.label} {trend}."
    customers = {row.customer_id for row in rows}
    lines = [
        f"😠 Complaints, {period.label}: {len(rows):,} from {len(customers):,} "
        f"customer{'s' if len(customers) != 1 else ''} {trend}"
    ]
    about = Counter(topic for row in rows for topic in topics(row.text) or ["other"])
    lines.append("About: " + " · ".join(f"{name} {n}" for name, n in about.most_common()))
    products = Counter(
        str(e.get("value") or e.get("text"))
        for row in rows
        for e in row.entities
        if e.get("label") == "PRODUCT"
    )
    if products:
        lines.append(
            "Products named: " + " · ".join(f"{name} {n}" for name, n in products.most_common(5))
        )
    lines.append("Latest:")
    for row in rows[:LATEST]:
        if viewed is not None:
            viewed.append(row.customer_id)
        when = row.created_at.astimezone(services.tz)
        status = STATUS_WORDS.get(row.status or "", "")
        text = " ".join(row.text.split())
        if len(text) > SNIPPET_CHARS:
            text = text[: SNIPPET_CHARS - 1].rstrip() + "…"
        lines.append(
            f"• {when:%d %b %H:%M} #{row.customer_id} {row.name}"
            + (f" ({status})" if status else "")
            + f": {text}"
        )
    lines.append("/customer ID shows one in full.")
    return "\n".join(lines)
