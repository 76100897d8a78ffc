"""CSAT, NPS and response rate, per period, and a satisfaction score 0–100 per customer.

Definitions (PRODUCT.md):

- **CSAT** (answers 1–5): share of answers that are 4 or 5, × 100. Surveys without an answer
  are not in the share.
- **NPS** (answers 0–10): % promoters (9–10) − % detractors (0–6); passives (7–8) count in
  the denominator; −100…+100.
- **Response rate**: answers / surveys sent, a fraction 0–1.

A survey counts as *answered* when it has a score. Values are ``None`` when there are no
answers (and the response rate is ``None`` when nothing was sent): never a division by zero.
Values are not rounded.

**Periods.** :func:`period_satisfaction` puts a survey in the day or ISO week (Monday to
Sunday) of its ``sent_at`` in the business time zone, so a late answer still counts for the
period its survey was sent in and the response rate of a period is answers / sent of the same
surveys. Naive datetimes are taken as UTC (the database stores UTC).

**Per-customer score** (:func:`customer_satisfaction`), 0–100, arrays per customer::

    survey   S = mean of the available parts 25·(mean CSAT answer − 1) and 10·(mean NPS answer)
    mood     M = 50·(1 + s),  s = the customer's recency-weighted mean sentiment in [−1, 1]
    weights  wS = 3 if the customer answered a survey, else 0
             wM = min(w, 3), w = sum of the message weights 2^(−age_days / 30)
             (a message today weighs 1, a message 30 days old ½: half-life 30 days)
    base     = (wS·S + wM·M + 1·50) / (wS + wM + 1)      (a prior of one neutral message)
    penalty  = min(40, 10·unresolved issues + 5·handoffs)
    score    = clip(base − penalty, 0, 100)

A customer with no answers, no messages, no unresolved issues and no handoffs gets 50 and
``is_default`` True. The constants are the fields of :class:`SatisfactionWeights`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CSAT_SCALE = range(1, 6)
NPS_SCALE = range(0, 11)


# --- CSAT and NPS ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CSATResult:
    """CSAT of a set of surveys: ``value`` 0–100, None without answers."""

    sent: int
    answers: int
    satisfied: int
    value: float | None
    response_rate: float | None


@dataclass(frozen=True, slots=True)
class NPSResult:
    """NPS of a set of surveys: ``value`` −100…+100, None without answers."""

    sent: int
    answers: int
    promoters: int
    passives: int
    detractors: int
    value: float | None
    response_rate: float | None


def _response_rate(answers: int, sent: int) -> float | None:
    if answers > sent:
        raise ValueError(f"{answers} answers but only {sent} surveys sent")
    return answers / sent if sent else None


def _score_counts(scores: Iterable[int | None], scale: range) -> tuple[Counter[int], int]:
    counts: Counter[int] = Counter()
    items = 0
    for score in scores:
        items += 1
        if score is None:
            continue
        if score not in scale:
            raise ValueError(f"score {score!r} is outside {scale.start}–{scale.stop - 1}")
        counts[int(score)] += 1
    return counts, items


def csat(scores: Iterable[int | None], *, sent: int | None = None) -> CSATResult:
    """CSAT of survey scores (``None`` = not answered); ``sent`` defaults to len(scores)."""
    counts, items = _score_counts(scores, CSAT_SCALE)
    return csat_from_counts(counts, sent=items if sent is None else sent)


def csat_from_counts(score_counts: Mapping[int, int], *, sent: int) -> CSATResult:
    """CSAT from the number of answers per score (e.g. a SQL ``GROUP BY score``)."""
    _check_counts(score_counts, CSAT_SCALE)
    answers = sum(score_counts.values())
    satisfied = score_counts.get(4, 0) + score_counts.get(5, 0)
    return CSATResult(
        sent=sent,
        answers=answers,
        satisfied=satisfied,
        value=100.0 * satisfied / answers if answers else None,
        response_rate=_response_rate(answers, sent),
    )


def nps(scores: Iterable[int | None], *, sent: int | None = None) -> NPSResult:
    """NPS of survey scores (``None`` = not answered); ``sent`` defaults to len(scores)."""
    counts, items = _score_counts(scores, NPS_SCALE)
    return nps_from_counts(counts, sent=items if sent is None else sent)


def nps_from_counts(score_counts: Mapping[int, int], *, sent: int) -> NPSResult:
    """NPS from the number of answers per score (e.g. a SQL ``GROUP BY score``)."""
    _check_counts(score_counts, NPS_SCALE)
    answers = sum(score_counts.values())
    promoters = score_counts.get(9, 0) + score_counts.get(10, 0)
    passives = score_counts.get(7, 0) + score_counts.get(8, 0)
    detractors = answers - promoters - passives
    return NPSResult(
        sent=sent,
        answers=answers,
        promoters=promoters,
        passives=passives,
        detractors=detractors,
        value=100.0 * (promoters - detractors) / answers if answers else None,
        response_rate=_response_rate(answers, sent),
    )


def _check_counts(score_counts: Mapping[int, int], scale: range) -> None:
    for score, count in score_counts.items():
        if score not in scale:
            raise ValueError(f"score {score!r} is outside {scale.start}–{scale.stop - 1}")
        if count < 0:
            raise ValueError("counts must be >= 0")


# --- per period --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurveyRecord:
    """One survey as stored: kind "csat" or "nps", when it was sent, and the answer if any."""

    kind: str
    sent_at: datetime
    answered_at: datetime | None
    score: int | None


@dataclass(frozen=True, slots=True)
class PeriodSatisfaction:
    """CSAT and NPS of the surveys sent in one day or ISO week (``start`` = its first day)."""

    start: date
    label: str
    csat: CSATResult
    nps: NPSResult


@dataclass(frozen=True, slots=True)
class SatisfactionReport:
    """CSAT and NPS of all the surveys given, and per period when one was asked for."""

    csat: CSATResult
    nps: NPSResult
    periods: list[PeriodSatisfaction]


Period = Literal["day", "week"]
_EMPTY: Counter[int] = Counter()


def period_satisfaction(
    records: Iterable[Any],
    *,
    tz: tzinfo | str = UTC,
    by: Period | None = None,
    start: date | None = None,
    end: date | None = None,
) -> SatisfactionReport:
    """CSAT, NPS and response rates of surveys, in total and per day or ISO week (``by``).

    A survey belongs to the day (or Monday-to-Sunday week) of its ``sent_at`` in the time
    zone ``tz``. ``records`` are :class:`SurveyRecord`, objects with the same attributes
    (e.g. database rows), or tuples ``(kind, sent_at, answered_at, score)``. With ``start``
    and/or ``end`` (local days, inclusive) surveys outside are left out and, with ``by``,
    every period between is listed, empty ones included; otherwise only periods with surveys.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    sent: Counter[tuple[date, str]] = Counter()
    answers: dict[tuple[date, str], Counter[int]] = {}
    for item in records:
        record = _as_record(item)
        if record.kind not in ("csat", "nps"):
            raise ValueError(f"unknown survey kind {record.kind!r}")
        day = _local_date(record.sent_at, zone)
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        key = (day, record.kind)
        sent[key] += 1
        if record.score is not None:
            answers.setdefault(key, Counter())[int(record.score)] += 1
    periods = [] if by is None else _periods(sent, answers, by, start=start, end=end)
    return SatisfactionReport(
        csat=csat_from_counts(_total(answers, "csat"), sent=_sent(sent, "csat")),
        nps=nps_from_counts(_total(answers, "nps"), sent=_sent(sent, "nps")),
        periods=periods,
    )


def _total(answers: Mapping[tuple[date, str], Counter[int]], kind: str) -> Counter[int]:
    total: Counter[int] = Counter()
    for (_, k), counts in answers.items():
        if k == kind:
            total.update(counts)
    return total


def _sent(sent: Mapping[tuple[date, str], int], kind: str) -> int:
    return sum(n for (_, k), n in sent.items() if k == kind)


def _periods(
    sent: Mapping[tuple[date, str], int],
    answers: Mapping[tuple[date, str], Counter[int]],
    by: Period,
    *,
    start: date | None,
    end: date | None,
) -> list[PeriodSatisfaction]:
    period_sent: Counter[tuple[date, str]] = Counter()
    period_answers: dict[tuple[date, str], Counter[int]] = {}
    for (day, kind), n in sent.items():
        key = (_period_start(day, by), kind)
        period_sent[key] += n
        period_answers.setdefault(key, Counter()).update(answers.get((day, kind), _EMPTY))
    starts = sorted({day for day, _ in period_sent})
    first = _period_start(start, by) if start else (starts[0] if starts else None)
    last = _period_start(end, by) if end else (starts[-1] if starts else None)
    if first is not None and last is not None and (start is not None or end is not None):
        starts = _period_range(first, last, by)
    return [
        PeriodSatisfaction(
            start=day,
            label=_label(day, by),
            csat=csat_from_counts(
                period_answers.get((day, "csat"), _EMPTY), sent=period_sent[day, "csat"]
            ),
            nps=nps_from_counts(
                period_answers.get((day, "nps"), _EMPTY), sent=period_sent[day, "nps"]
            ),
        )
        for day in starts
    ]


def _as_record(item: Any) -> SurveyRecord:
    if isinstance(item, SurveyRecord):
        return item
    if hasattr(item, "sent_at"):
        return SurveyRecord(str(item.kind), item.sent_at, item.answered_at, item.score)
    kind, sent_at, answered_at, score = item
    return SurveyRecord(str(kind), sent_at, answered_at, score)


def _local_date(moment: datetime, zone: tzinfo) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def _period_start(day: date, period: Period) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    raise ValueError(f"unknown period {period!r}")


def _period_range(first: date, last: date, period: Period) -> list[date]:
    step = timedelta(days=1 if period == "day" else 7)
    days = []
    while first <= last:
        days.append(first)
        first += step
    return days


def _label(day: date, period: Period) -> str:
    if period == "day":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# --- per customer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SatisfactionWeights:
    """The constants of the per-customer score (see the module doc)."""

    survey_weight: float = 3.0
    mood_weight_cap: float = 3.0
    prior_weight: float = 1.0
    neutral: float = 50.0
    unresolved_penalty: float = 10.0
    handoff_penalty: float = 5.0
    penalty_cap: float = 40.0
    half_life_days: float = 30.0


DEFAULT_WEIGHTS = SatisfactionWeights()


@dataclass(frozen=True, eq=False)
class DecayedSentiment:
    """Per customer: recency-weighted mean sentiment (NaN without messages) and total weight."""

    mean: FloatArray
    weight: FloatArray


def decayed_sentiment(
    customer_index: npt.ArrayLike,
    age_days: npt.ArrayLike,
    sentiment: npt.ArrayLike,
    *,
    n_customers: int,
    half_life_days: float = DEFAULT_WEIGHTS.half_life_days,
) -> DecayedSentiment:
    """Per-customer weighted mean of message sentiments, weights 2^(−age_days / half-life).

    One entry per message: the customer's row index (0 … n_customers − 1), the message's age
    in days at the time of scoring (negative ages count as 0) and its sentiment in [−1, 1]
    (NaN entries are skipped). In SQL the same weight is ``exp(-ln(2) * age / half_life)``.
    """
    index = np.asarray(customer_index, dtype=np.int64)
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    value = np.asarray(sentiment, dtype=np.float64)
    if not index.shape == age.shape == value.shape:
        raise ValueError("customer_index, age_days and sentiment must have the same shape")
    if half_life_days <= 0:
        raise ValueError("half_life_days must be > 0")
    keep = ~np.isnan(value)
    weights = np.exp2(-age[keep] / half_life_days)
    total = np.bincount(index[keep], weights=weights, minlength=n_customers).astype(np.float64)
    weighted = np.bincount(index[keep], weights=weights * value[keep], minlength=n_customers)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(total > 0, weighted / total, np.nan)
    return DecayedSentiment(mean=mean, weight=total)


@dataclass(frozen=True, eq=False)
class SurveyMeans:
    """Per customer: mean CSAT answer (1–5) and mean NPS answer (0–10), NaN without any."""

    csat_mean: FloatArray
    nps_mean: FloatArray
    csat_count: npt.NDArray[np.int64]
    nps_count: npt.NDArray[np.int64]


def survey_means(
    customer_ids: npt.ArrayLike,
    answer_customer_ids: npt.ArrayLike,
    kinds: npt.ArrayLike,
    scores: npt.ArrayLike,
) -> SurveyMeans:
    """Mean answers per customer of ``customer_ids`` from one row per answered survey.

    Answers of customers not in ``customer_ids`` are ignored.
    """
    ids = np.asarray(customer_ids, dtype=np.int64)
    answer_ids = np.asarray(answer_customer_ids, dtype=np.int64)
    kind = np.asarray(kinds, dtype=np.str_)
    score = np.asarray(scores, dtype=np.float64)
    if not answer_ids.shape == kind.shape == score.shape:
        raise ValueError("answer_customer_ids, kinds and scores must be aligned")
    if not np.all(np.isin(kind, ("csat", "nps"))):
        raise ValueError("kinds must be 'csat' or 'nps'")
    n = ids.shape[0]
    sorter = np.argsort(ids, kind="stable")
    position = np.minimum(np.searchsorted(ids, answer_ids, sorter=sorter), max(n - 1, 0))
    known = (ids[sorter[position]] == answer_ids) if n else np.zeros(answer_ids.shape, bool)
    row = sorter[position[known]]
    kind, score = kind[known], score[known]
    means, counts = [], []
    for name in ("csat", "nps"):
        mask = kind == name
        count = np.bincount(row[mask], minlength=n)
        total = np.bincount(row[mask], weights=score[mask], minlength=n).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            means.append(np.where(count > 0, total / count, np.nan))
        counts.append(count.astype(np.int64))
    return SurveyMeans(means[0], means[1], counts[0], counts[1])


@dataclass(frozen=True, eq=False)
class CustomerSatisfaction:
    """Per customer: ``score`` 0–100 and whether it is the no-data default."""

    score: FloatArray
    is_default: BoolArray


def customer_satisfaction(
    *,
    csat_mean: npt.ArrayLike,
    nps_mean: npt.ArrayLike,
    sentiment: npt.ArrayLike,
    sentiment_weight: npt.ArrayLike,
    unresolved: npt.ArrayLike,
    handoffs: npt.ArrayLike,
    weights: SatisfactionWeights = DEFAULT_WEIGHTS,
) -> CustomerSatisfaction:
    """The per-customer satisfaction score of the module doc, vectorised.

    Arrays are aligned per customer: mean CSAT answer (1–5) and mean NPS answer (0–10), NaN
    when none; recency-weighted sentiment and its weight (see :func:`decayed_sentiment`);
    counts of unresolved issues and of handoffs.
    """
    arrays = [
        np.asarray(values, dtype=np.float64)
        for values in (csat_mean, nps_mean, sentiment, sentiment_weight, unresolved, handoffs)
    ]
    if len({values.shape for values in arrays}) != 1:
        raise ValueError("all arrays must have one value per customer")
    _check_ranges(arrays)
    csat_m, nps_m, mood, mood_w, open_issues, handed = arrays
    parts = np.stack([25.0 * (csat_m - 1.0), 10.0 * nps_m])
    present = (~np.isnan(parts)).sum(axis=0)
    has_survey = present > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        survey = np.nansum(parts, axis=0) / present
    has_mood = ~np.isnan(mood) & (mood_w > 0)
    w_survey = np.where(has_survey, weights.survey_weight, 0.0)
    w_mood = np.where(has_mood, np.minimum(mood_w, weights.mood_weight_cap), 0.0)
    numerator = (
        w_survey * np.where(has_survey, survey, 0.0)
        + w_mood * np.where(has_mood, 50.0 * (1.0 + np.clip(mood, -1.0, 1.0)), 0.0)
        + weights.prior_weight * weights.neutral
    )
    base = numerator / (w_survey + w_mood + weights.prior_weight)
    penalty = np.minimum(
        weights.penalty_cap,
        weights.unresolved_penalty * np.nan_to_num(open_issues)
        + weights.handoff_penalty * np.nan_to_num(handed),
    )
    score = np.clip(base - penalty, 0.0, 100.0)
    is_default = ~has_survey & ~has_mood & (penalty == 0)
    return CustomerSatisfaction(score=score, is_default=is_default)


def _check_ranges(arrays: list[FloatArray]) -> None:
    csat_m, nps_m, mood, mood_w, open_issues, handed = arrays
    checks = (
        ("csat_mean", csat_m, 1.0, 5.0),
        ("nps_mean", nps_m, 0.0, 10.0),
        ("sentiment", mood, -1.0, 1.0),
        ("sentiment_weight", mood_w, 0.0, np.inf),
        ("unresolved", open_issues, 0.0, np.inf),
        ("handoffs", handed, 0.0, np.inf),
    )
    for name, values, low, high in checks:
        if np.any((values < low - 1e-9) | (values > high + 1e-9)):
            raise ValueError(f"{name} must be within {low}…{high} (NaN for none)")
