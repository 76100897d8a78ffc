"""The satisfaction digest: a text and a chart for staff, for one day or one week."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import Session

from analytics.charts import digest_chart
from analytics.mix import shares
from analytics.satisfaction import SurveyRecord, period_satisfaction
from bot.services.context import Services
from bot.services.messages import Reply
from db import report_queries as rq

ATTENTION_SEGMENTS = ("At Risk", "Can't Lose Them", "About To Sleep")
PERIODS = ("day", "week")


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive
    first_day: date
    last_day: date

    def label(self) -> str:
        if self.kind == "day":
            return self.first_day.strftime("%a %d %b %Y")
        return f"{self.first_day:%d %b} – {self.last_day:%d %b %Y}"

    def previous(self, services: Services) -> Period:
        return period_ending(services, self.kind, self.first_day)


def period_ending(services: Services, kind: str, day_after: date) -> Period:
    """The day (or the Monday-to-Sunday week) that ends just before local ``day_after``."""
    if kind not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {kind!r}")
    if kind == "day":
        first = day_after - timedelta(days=1)
    else:
        this_monday = day_after - timedelta(days=day_after.weekday())
        first = this_monday - timedelta(days=7)
        day_after = this_monday
    start = datetime.combine(first, time(), services.tz)
    end = datetime.combine(day_after, time(), services.tz)
    return Period(kind, start, end, first, day_after - timedelta(days=1))


@dataclass
class Digest:
    period: Period
    text: str
    chart_png: bytes
    figures: dict[str, float | int | str] = field(default_factory=dict)
    named_customers: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, float | int | str]:
        return {"period": self.period.label(), **self.figures}


def _delta(now: float | None, before: float | None, *, unit: str = "", digits: int = 0) -> str:
    if now is None or before is None:
        return ""
    change = now - before
    if round(change, digits) == 0:
        return " (= previous)"
    arrow = "▲" if change > 0 else "▼"
    return f" ({arrow} {change:+.{digits}f}{unit} vs previous)"


def _fmt(value: float | None, *, digits: int = 0, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _satisfaction_lines(
    session: Session, services: Services, period: Period, previous: Period
) -> tuple[list[str], dict[str, float | int | str]]:
    def summary(p: Period):  # type: ignore[no-untyped-def]
        rows = rq.survey_rows(session=session, start=p.start, end=p.end)
        return period_satisfaction(
            [SurveyRecord(r.kind, r.sent_at, r.answered_at, r.score) for r in rows]
        )

    now, before = summary(period), summary(previous)
    lines = []
    if now.csat.sent:
        lines.append(
            f"CSAT {_fmt(now.csat.value)} ({now.csat.answers} of {now.csat.sent} surveys "
            f"answered, {_fmt(_pct(now.csat.response_rate))}%)"
            + _delta(now.csat.value, before.csat.value)
        )
    else:
        lines.append("CSAT: no surveys sent in this period")
    if now.nps.sent:
        lines.append(
            f"NPS {_fmt(now.nps.value, signed=True)} ({now.nps.answers} answers: "
            f"{now.nps.promoters} promoters, {now.nps.passives} passives, "
            f"{now.nps.detractors} detractors)" + _delta(now.nps.value, before.nps.value)
        )
    figures: dict[str, float | int | str] = {
        "csat": now.csat.value if now.csat.value is not None else "",
        "nps": now.nps.value if now.nps.value is not None else "",
        "surveys_sent": now.csat.sent + now.nps.sent,
    }
    return lines, figures


def _pct(share: float | None) -> float | None:
    return None if share is None else 100.0 * share


def _message_lines(
    session: Session, period: Period, previous: Period
) -> tuple[list[str], dict[str, float | int | str]]:
    rows = rq.inbound_rows(session=session, start=period.start, end=period.end)
    old = rq.inbound_rows(session=session, start=previous.start, end=previous.end)

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    scores = [r.sentiment_score for r in rows if r.sentiment_score is not None]
    old_scores = [r.sentiment_score for r in old if r.sentiment_score is not None]
    negative = sum(1 for s in scores if s < -0.3)
    lines = [f"Customer messages: {len(rows):,}" + _delta(len(rows), len(old))]
    if scores:
        lines.append(
            f"Sentiment: mean {_fmt(mean(scores), digits=2, signed=True)}"
            f"{_delta(mean(scores), mean(old_scores), digits=2)}; "
            f"{_fmt(_pct(negative / len(scores)))}% negative"
        )
    intents = shares(Counter(r.intent for r in rows if r.intent), top=5)
    old_intents = {s.label: s.percent for s in shares(Counter(r.intent for r in old if r.intent))}
    if intents:
        parts = []
        for share in intents:
            before = old_intents.get(share.label)
            change = "" if before is None else f" ({share.percent - before:+.0f} pts)"
            parts.append(f"{share.label} {share.percent:.0f}%{change}")
        lines.append("Top intents: " + ", ".join(parts))
    figures: dict[str, float | int | str] = {"messages": len(rows)}
    return lines, figures


def _segment_lines(session: Session, period: Period) -> tuple[list[str], dict[str, int]]:
    dates = rq.snapshot_dates(session=session, until=period.last_day + timedelta(days=1))
    if not dates:
        return ["Segments: no analytics refresh has run yet."], {}
    latest = dates[0]
    counts = rq.segment_counts(session=session, as_of=latest)
    lines = []
    if len(dates) > 1:
        before = rq.segment_counts(session=session, as_of=dates[1])
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:6]
        lines.append(
            f"Segments ({latest:%d %b} vs {dates[1]:%d %b}): "
            + ", ".join(f"{name} {n:,} ({n - before.get(name, 0):+,})" for name, n in top)
        )
        moves = rq.segment_moves(session=session, before=dates[1], after=latest)
        worst = sorted(moves.items(), key=lambda kv: -kv[1])[:4]
        if worst:
            lines.append("Moves: " + "; ".join(f"{n:,} {a} → {b}" for (a, b), n in worst))
    else:
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:6]
        lines.append(
            f"Segments ({latest:%d %b}): " + ", ".join(f"{name} {n:,}" for name, n in top)
        )
    return lines, counts


def _attention_lines(session: Session, period: Period) -> tuple[list[str], list[int]]:
    """Open handoffs, and unhappy at-risk customers (whose ids are returned: naming them in
    a staff message is a read of their data)."""
    handoffs = rq.open_handoffs(session=session)
    dates = rq.snapshot_dates(session=session, until=period.last_day + timedelta(days=1), limit=1)
    lines = [f"Needs attention: {handoffs} open handoff{'s' if handoffs != 1 else ''}"]
    named: list[int] = []
    if dates:
        rows = rq.unhappy_valuable_customers(
            session=session, as_of=dates[0], since=period.start, segments=ATTENTION_SEGMENTS
        )
        if rows:
            lines.append(
                "Unhappy and at risk: "
                + ", ".join(
                    f"#{r.customer_id} {r.name} ({r.segment}"
                    + (f", CLV {r.clv:,.0f}" if r.clv is not None else "")
                    + ")"
                    for r in rows[:5]
                )
            )
            named = [r.customer_id for r in rows[:5]]
    return lines, named


def _chart(
    session: Session, services: Services, period: Period, segment_counts: dict[str, int]
) -> bytes:
    days = 14 if period.kind == "day" else 8 * 7
    first = period.last_day - timedelta(days=days - 1)
    start = datetime.combine(first, time(), services.tz)
    rows = rq.inbound_rows(session=session, start=start, end=period.end)
    surveys = rq.survey_rows(session=session, start=start, end=period.end)
    per_day = period_satisfaction(
        [SurveyRecord(r.kind, r.sent_at, r.answered_at, r.score) for r in surveys],
        tz=services.tz,
        by="day",
    )
    calendar = [first + timedelta(days=i) for i in range(days)]
    sentiment: dict[date, list[float]] = {}
    for row in rows:
        if row.sentiment_score is not None:
            day = row.created_at.astimezone(services.tz).date()
            sentiment.setdefault(day, []).append(row.sentiment_score)
    by_day = {p.start: p for p in per_day.periods}
    return digest_chart(
        title=f"crmbot {period.kind}ly digest · {period.label()}".replace("dayly", "daily"),
        days=calendar,
        csat=[by_day[d].csat.value if d in by_day else None for d in calendar],
        nps=[by_day[d].nps.value if d in by_day else None for d in calendar],
        sentiment=[sum(v) / len(v) if (v := sentiment.get(d)) else None for d in calendar],
        segment_counts=segment_counts or None,
    )


def build_digest(services: Services, session: Session, *, period: str, until: datetime) -> Digest:
    """The digest for the day (or week) that ended before ``until``'s local date."""
    current = period_ending(services, period, until.astimezone(services.tz).date())
    previous = current.previous(services)
    title = "Daily digest" if period == "day" else "Weekly digest"
    satisfaction, figures = _satisfaction_lines(session, services, current, previous)
    messages, message_figures = _message_lines(session, current, previous)
    segments, segment_counts = _segment_lines(session, current)
    attention, named = _attention_lines(session, current)
    lines = [
        f"📈 {title} · {current.label()} ({services.tz.key})",
        "",
        *satisfaction,
        *messages,
        *segments,
        *attention,
    ]
    offers = rq.offer_results(session=session, start=current.start, end=current.end)
    if offers:
        lines.append(
            f"Offers: {offers['deliveries'] - offers['holdout']:,} sent, "
            f"{offers['holdout']:,} held out, {offers['redeemed']:,} redeemed"
        )
    chart = _chart(session, services, current, segment_counts)
    return Digest(current, "\n".join(lines), chart, {**figures, **message_figures}, named)


def digest_replies(digest: Digest, destinations: list[int]) -> list[Reply]:
    """The digest as messages: the chart as a photo, then the text."""
    caption = f"{'Daily' if digest.period.kind == 'day' else 'Weekly'} digest chart"
    return [
        Reply(dest, digest.text, photo=digest.chart_png, caption=caption) for dest in destinations
    ]
