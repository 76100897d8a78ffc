"""Staff views of customers and segments, built from the latest analytics snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from analytics.segments import ALL_SEGMENTS, explain_segment
from bot.services.messages import Button
from bot.services.staff_questions import SEGMENT_PHRASES
from db import customer_queries as cq
from db import queries
from db import report_queries as rq
from db.models import Customer, CustomerSnapshot, Direction, Interaction, InteractionKind

PAGE_SIZE = 10
NO_SNAPSHOT = (
    "No analytics yet: the nightly refresh has not run. Run `crmbot analytics run` "
    "or wait for the schedule."
)
AT_RISK_SEGMENTS = ("Can't Lose Them", "At Risk", "About To Sleep")


def _money(value: object) -> str:
    return "–" if value is None else f"{float(value):,.2f}"  # type: ignore[arg-type]


def segments_overview(session: Session) -> str:
    dates = rq.snapshot_dates(session=session, until=datetime.max.date())
    if not dates:
        return NO_SNAPSHOT
    counts = rq.segment_counts(session=session, as_of=dates[0])
    before = rq.segment_counts(session=session, as_of=dates[1]) if len(dates) > 1 else None
    total = sum(counts.values())
    lines = [
        f"👥 Segments on {dates[0]:%d %b %Y} ({total:,} customers)"
        + (f", change since {dates[1]:%d %b}" if before is not None else "")
    ]
    for name in ALL_SEGMENTS:
        n = counts.get(name, 0)
        if not n and not (before and before.get(name)):
            continue
        change = f" ({n - before.get(name, 0):+,})" if before is not None else ""
        lines.append(f"{name}: {n:,} ({100 * n / total:.0f}%){change}")
    lines.append("\n/segment NAME lists a segment's customers.")
    return "\n".join(lines)


def resolve_segment(name: str) -> str | None:
    """Match a segment name typed by staff, forgiving case, quotes and spaces, or one of the
    loose names of :data:`~bot.services.staff_questions.SEGMENT_PHRASES`."""
    key = name.strip().strip("\"'“”").lower().replace("’", "'")
    for segment in ALL_SEGMENTS:
        if segment.lower() == key or segment.lower().replace("'", "") == key.replace("'", ""):
            return segment
    matches = [s for s in ALL_SEGMENTS if s.lower().startswith(key)] if key else []
    if len(matches) == 1:
        return matches[0]
    # the names staff use in questions too: "champs", "vips", "dormant", "sleeping"
    return next((s for s, words in SEGMENT_PHRASES.items() if key in words), None)


def segment_page(
    session: Session, segment: str, page: int, *, viewed: list[int] | None = None
) -> tuple[str, list[list[Button]]]:
    """One page of a segment's customers; their ids are appended to ``viewed`` if given."""
    as_of = cq.latest_snapshot_date(session=session)
    if as_of is None:
        return NO_SNAPSHOT, []
    total, rows = cq.segment_members(
        session=session, as_of=as_of, segment=segment, offset=page * PAGE_SIZE, limit=PAGE_SIZE
    )
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages - 1)
    lines = [
        f"{explain_segment(segment)}",
        f"{total:,} customers on {as_of:%d %b %Y}"
        + (f" · page {page + 1}/{pages}" if total else ""),
    ]
    for customer, snap in rows:
        if viewed is not None and customer.id is not None:
            viewed.append(customer.id)
        lines.append(
            f"#{customer.id} {customer.display_name}: {snap.frequency or 0} orders, "
            f"spent {_money(snap.monetary)}, last {snap.recency_days} days ago, "
            f"CLV {_money(snap.clv)}"
        )
    buttons = []
    if page > 0:
        buttons.append(Button("◀ previous", f"seg|{segment}|{page - 1}"))
    if page + 1 < pages:
        buttons.append(Button("next ▶", f"seg|{segment}|{page + 1}"))
    return "\n".join(lines), [buttons] if buttons else []


def _scores(snap: CustomerSnapshot) -> list[str]:
    lines = [
        f"Segment: {snap.segment} (R{snap.r_score} F{snap.f_score} M{snap.m_score}, "
        f"as of {snap.as_of:%d %b %Y})"
    ]
    if snap.cluster:
        lines.append(f"Cluster: {snap.cluster}")
    if snap.satisfaction is not None:
        lines.append(f"Satisfaction: {snap.satisfaction:.0f}/100")
    if snap.p_alive is not None:
        lines.append(
            f"Churn risk: {churn_risk(snap)} · expected purchases in 90 days: "
            f"{snap.expected_purchases_90d or 0:.2f} · CLV {_money(snap.clv)}"
        )
    return lines


def churn_risk(snap: CustomerSnapshot) -> str:
    """1 − P(alive). BG/NBD learns dropout only from repeat purchases, so for one-time
    buyers it has no evidence and says nothing."""
    if snap.p_alive is None:
        return "unknown"
    if (snap.frequency or 0) <= 1:
        return "unknown (one order only)"
    return f"{100 * (1 - snap.p_alive):.0f}%"


NO_MATCH = (
    "No customer matches {ident!r}. Use the id shown as #ID, an external id, @user or a name."
)


def name_matches(
    session: Session, customers: Sequence[Customer], ident: str, *, more: bool = False
) -> str:
    """Several customers answer to a name: who they are (segment, orders, last seen), to
    pick one by id (``more``: there are others beyond these)."""
    head = (
        f"The {len(customers)} most recently seen of the customers matching {ident!r}:"
        if more
        else f"{len(customers)} customers match {ident!r}, most recently seen first:"
    )
    lines = [head]
    for c in customers:
        assert c.id is not None
        snap = cq.customer_snapshot(session=session, customer_id=c.id)
        count, _ = cq.customer_order_totals(session=session, customer_id=c.id)
        lines.append(
            f"#{c.id} {c.display_name}"
            + (f" (@{c.username})" if c.username else "")
            + (f" · {snap.segment}" if snap is not None and snap.segment else "")
            + f" · {count:,} order{'s' if count != 1 else ''}"
            + f" · last seen {c.last_seen_at:%d %b %Y}"
        )
    lines.append("/customer ID shows one in full" + (", or add to the name." if more else "."))
    return "\n".join(lines)


def customer_profile(session: Session, customer: Customer) -> str:
    assert customer.id is not None
    count, total = cq.customer_order_totals(session=session, customer_id=customer.id)
    consent = {True: "yes", False: "no", None: "not asked"}[customer.marketing_consent]
    lines = [
        f"👤 #{customer.id} {customer.display_name}"
        + (f" (@{customer.username})" if customer.username else ""),
        f"External id: {customer.external_id or '–'} · Telegram: "
        f"{customer.telegram_user_id or '–'} · language {customer.language_code or '–'}",
        f"First seen {customer.first_seen_at:%d %b %Y}, last seen {customer.last_seen_at:%d %b %Y}"
        f" · marketing consent: {consent}",
        f"Orders: {count:,}, total {total:,.2f}",
    ]
    snap = cq.customer_snapshot(session=session, customer_id=customer.id)
    lines += _scores(snap) if snap else ["No analytics snapshot for this customer yet."]
    orders = cq.customer_orders(session=session, customer_id=customer.id)
    if orders:
        lines.append("Last orders:")
        lines += [
            f"  {o.external_id} {o.ordered_at:%d %b %Y} {o.total} {o.currency} {o.status}"
            for o in orders
        ]
    interactions = queries.recent_interactions(session=session, customer_id=customer.id, limit=5)
    if interactions:
        lines.append("Last messages:")
        for item in interactions:
            label = f" [{item.intent}, {item.sentiment}]" if item.intent else ""
            lines.append(f"  {transcript_line(item)}{label}")
    return "\n".join(lines)


def transcript_line(item: Interaction, *, limit: int = 200) -> str:
    """One message for staff: who wrote it and its text on one line, clipped; a button
    press shows as such."""
    who = "👤" if item.direction == Direction.INBOUND else "🤖"
    if item.kind == InteractionKind.CALLBACK:
        return f"{who} 🔘 pressed {item.text}"
    text = " ".join((item.text or f"[{item.kind}]").split())
    return f"{who} {text if len(text) <= limit else text[: limit - 1] + '…'}"


def at_risk(session: Session, *, viewed: list[int] | None = None) -> str:
    """The at-risk list; the ids of the customers shown are appended to ``viewed``."""
    as_of = cq.latest_snapshot_date(session=session)
    if as_of is None:
        return NO_SNAPSHOT
    rows = cq.at_risk_customers(session=session, as_of=as_of, segments=AT_RISK_SEGMENTS, limit=15)
    if not rows:
        return f"No customers at risk on {as_of:%d %b %Y}. 🎉"
    lines = [f"⚠️ Valuable customers drifting away ({as_of:%d %b %Y}), biggest spenders first:"]
    for customer, snap in rows:
        if viewed is not None and customer.id is not None:
            viewed.append(customer.id)
        risk = f", churn risk {churn_risk(snap)}" if (snap.frequency or 0) > 1 else ""
        lines.append(
            f"#{customer.id} {customer.display_name} · {snap.segment}: last order "
            f"{snap.recency_days} days ago, spent {_money(snap.monetary)}{risk}"
        )
    lines.append("/customer ID shows one in full.")
    return "\n".join(lines)
