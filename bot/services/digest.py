"""The satisfaction digest: a text and a chart for staff, for a day, a week or a month.

Periods (:data:`DIGEST_PERIODS`): ``day``, ``week`` and ``month`` are the last complete
ones (yesterday, last Monday-to-Sunday week, last calendar month), compared with the one
before; ``today``, ``thisweek`` and ``thismonth`` run from the start of the current one up
to now, compared with the same stretch of the one before (today until 14:05 against
yesterday until 14:05), so that a partial period is not measured against a whole one.
"""

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
PERIODS = ("day", "week", "month")  # the last complete one
SO_FAR = {"today": "day", "thisweek": "week", "thismonth": "month"}  # the current one, so far
DIGEST_PERIODS = (*PERIODS, *SO_FAR)
TITLES = {"day": "Daily digest", "week": "Weekly digest", "month": "Monthly digest"}
SO_FAR_TITLES = {"day": "Today so far", "week": "This week so far", "month": "This month so far"}
# Days the chart shows, ending with the period.
CHART_DAYS = {"day": 14, "week": 8 * 7, "month": 91}


@dataclass(frozen=True)
class Period:
    kind: str  # day, week or month
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive
    first_day: date
    last_day: date
    so_far: bool = False  # the current period, up to ``end`` (now)

    @property
    def title(self) -> str:
        return (SO_FAR_TITLES if self.so_far else TITLES)[self.kind]

    def label(self) -> str:
        until = f", until {self.end:%H:%M}" if self.so_far else ""
        if self.kind == "day":
            return f"{self.first_day:%a %d %b %Y}{until}"
        if self.kind == "month":
            return f"{self.first_day:%B %Y}{until}"
        return f"{self.first_day:%d %b} – {self.last_day:%d %b %Y}{until}"

    def previous(self, services: Services) -> Period:
        """The period before; for one so far, the same stretch of the period before."""
        before = period_ending(services, self.kind, self.first_day)
        if not self.so_far:
            return before
        end = min(before.start + (self.end - self.start), before.end)
        return Period(self.kind, before.start, end, before.first_day, end.date(), so_far=True)


def _first_day(kind: str, day: date) -> date:
    """The first day of the day, Monday-to-Sunday week or calendar month ``day`` is in."""
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_ending(services: Services, kind: str, day_after: date) -> Period:
    """The day, Monday-to-Sunday week or calendar month that ends just before local
    ``day_after``'s (a day, week or month that starts on ``day_after`` would follow it)."""
    if kind not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {kind!r}")
    day_after = _first_day(kind, day_after)
    first = _first_day(kind, day_after - timedelta(days=1))
    start = datetime.combine(first, time(), services.tz)
    end = datetime.combine(day_after, time(), services.tz)
    return Period(kind, start, end, first, day_after - timedelta(days=1))


def digest_period(services: Services, name: str, until: datetime) -> Period:
    """The period a digest covers: one of :data:`DIGEST_PERIODS`, as of ``until``."""
    local = until.astimezone(services.tz)
    if name in SO_FAR:
        kind = SO_FAR[name]
        first = _first_day(kind, local.date())
        start = datetime.combine(first, time(), services.tz)
        return Period(kind, start, local, first, local.date(), so_far=True)
    if name not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(DIGEST_PERIODS)}, not {name!r}")
    return period_ending(services, name, local.date())


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
        return [f"Segments: no analytics refresh up to {period.last_day:%d %b %Y}."], {}
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
    days = CHART_DAYS[period.kind]
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
        title=f"crmbot · {period.title} · {period.label()}",
        days=calendar,
        csat=[by_day[d].csat.value if d in by_day else None for d in calendar],
        nps=[by_day[d].nps.value if d in by_day else None for d in calendar],
        sentiment=[sum(v) / len(v) if (v := sentiment.get(d)) else None for d in calendar],
        segment_counts=segment_counts or None,
    )


def build_digest(services: Services, session: Session, *, period: str, until: datetime) -> Digest:
    """The digest of ``period`` (one of :data:`DIGEST_PERIODS`) as of ``until``."""
    current = digest_period(services, period, until)
    previous = current.previous(services)
    title = current.title
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
    caption = f"{digest.period.title} · chart"
    return [
        Reply(dest, digest.text, photo=digest.chart_png, caption=caption) for dest in destinations
    ]
