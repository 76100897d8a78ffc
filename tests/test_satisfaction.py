"""CSAT, NPS and response rate exactly as PRODUCT.md defines them, per day and ISO week in the
business time zone, and the per-customer satisfaction score."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.satisfaction import (
    SatisfactionWeights,
    SurveyRecord,
    csat,
    csat_from_counts,
    customer_satisfaction,
    decayed_sentiment,
    nps,
    nps_from_counts,
    period_satisfaction,
    survey_means,
)


def test_csat_is_the_share_of_4_and_5_among_answers_and_ignores_non_answers():
    result = csat([5, 4, 3, None, 1, None])
    assert (result.sent, result.answers, result.satisfied) == (6, 4, 2)
    assert result.value == 50.0
    assert result.response_rate == pytest.approx(4 / 6)


def test_nps_counts_passives_in_the_denominator():
    result = nps([10, 9, 8, 7, 6, 0, None, 3])
    assert (result.promoters, result.passives, result.detractors) == (2, 2, 3)
    assert result.value == pytest.approx(100 * (2 - 3) / 7)
    assert nps([10, 10, 9]).value == 100.0 and nps([0, 6]).value == -100.0
    assert nps([7, 8]).value == 0.0


def test_no_answers_give_none_and_nothing_sent_gives_no_response_rate():
    assert csat([None, None]).value is None and csat([None, None]).response_rate == 0.0
    empty = nps([])
    assert (empty.value, empty.response_rate, empty.sent) == (None, None, 0)


def test_sent_can_be_given_and_cannot_be_below_the_answers():
    assert csat([5, 5], sent=10).response_rate == 0.2
    with pytest.raises(ValueError):
        csat([5, 5, 5], sent=2)


@pytest.mark.parametrize(("function", "score"), [(csat, 0), (csat, 6), (nps, 11), (nps, -1)])
def test_scores_outside_the_scale_are_rejected(function, score):
    with pytest.raises(ValueError):
        function([score])


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(1, 5)), max_size=40))
def test_csat_stays_within_0_and_100_and_equals_the_count_form(scores):
    result = csat(scores)
    counts = Counter(s for s in scores if s is not None)
    assert result == csat_from_counts(counts, sent=len(scores))
    assert result.value is None or 0.0 <= result.value <= 100.0


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(0, 10)), max_size=40))
def test_nps_stays_within_minus_100_and_100_and_equals_the_count_form(scores):
    result = nps(scores)
    counts = Counter(s for s in scores if s is not None)
    assert result == nps_from_counts(counts, sent=len(scores))
    assert result.value is None or -100.0 <= result.value <= 100.0
    assert result.promoters + result.passives + result.detractors == result.answers


# --- per period ----------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_periods_follow_sent_at_in_the_business_time_zone():
    records = [
        SurveyRecord("csat", utc(2024, 3, 4, 23, 30), utc(2024, 3, 6, 9), 5),  # Berlin: 5 Mar
        SurveyRecord("csat", utc(2024, 3, 4, 12, 0), None, None),
        SurveyRecord("csat", utc(2024, 3, 4, 13, 0), utc(2024, 3, 4, 13, 5), 2),
        SurveyRecord("nps", utc(2024, 3, 5, 8, 0), utc(2024, 3, 5, 8, 1), 10),
    ]
    report = period_satisfaction(records, tz=BERLIN, by="day")
    assert [p.label for p in report.periods] == ["2024-03-04", "2024-03-05"]
    monday, tuesday = report.periods
    assert (monday.csat.sent, monday.csat.answers, monday.csat.value) == (2, 1, 0.0)
    assert (tuesday.csat.sent, tuesday.csat.value, tuesday.csat.response_rate) == (1, 100.0, 1.0)
    assert tuesday.nps.value == 100.0 and monday.nps.value is None and monday.nps.sent == 0
    assert (report.csat.sent, report.csat.answers, report.csat.value) == (3, 2, 50.0)
    in_utc = period_satisfaction(records, by="day")
    assert in_utc.periods[0].csat.sent == 3  # 23:30 UTC is still 4 March in UTC


def test_weeks_are_iso_weeks_starting_on_monday():
    records = [
        ("csat", utc(2024, 12, 29, 12), None, 4),  # Sunday of 2024-W52
        ("csat", utc(2024, 12, 30, 12), None, 5),  # Monday of 2025-W01
        ("csat", utc(2025, 1, 5, 12), None, 1),  # Sunday of 2025-W01
    ]
    report = period_satisfaction(records, tz="UTC", by="week")
    assert [(p.label, p.start) for p in report.periods] == [
        ("2024-W52", date(2024, 12, 23)),
        ("2025-W01", date(2024, 12, 30)),
    ]
    assert report.periods[1].csat.value == 50.0


def test_start_and_end_fill_empty_periods_and_leave_out_surveys_outside():
    records = [
        ("nps", utc(2024, 1, 1, 12), None, 9),
        ("nps", utc(2024, 1, 3, 12), None, 0),
        ("nps", utc(2024, 1, 9, 12), None, 10),
    ]
    report = period_satisfaction(
        records, tz="UTC", by="day", start=date(2024, 1, 2), end=date(2024, 1, 5)
    )
    assert [p.start.day for p in report.periods] == [2, 3, 4, 5]
    assert [p.nps.sent for p in report.periods] == [0, 1, 0, 0]
    assert report.periods[0].nps.value is None
    assert (report.nps.sent, report.nps.value) == (1, -100.0)


def test_database_like_rows_and_naive_utc_datetimes_are_accepted():
    class Row:
        def __init__(self, kind, sent_at, answered_at, score):
            self.kind, self.sent_at, self.answered_at, self.score = (
                kind,
                sent_at,
                answered_at,
                score,
            )

    naive = datetime(2024, 6, 30, 23, 0)  # UTC: 1 July 01:00 in Berlin
    report = period_satisfaction([Row("csat", naive, naive, 4)], tz=BERLIN, by="day")
    assert report.periods[0].start == date(2024, 7, 1)
    with pytest.raises(ValueError):
        period_satisfaction([Row("ces", naive, None, None)])


# --- per customer --------------------------------------------------------------------------------


def score_one(**overrides: float) -> tuple[float, bool]:
    values = {
        "csat_mean": np.nan,
        "nps_mean": np.nan,
        "sentiment": np.nan,
        "sentiment_weight": 0.0,
        "unresolved": 0.0,
        "handoffs": 0.0,
    }
    values.update(overrides)
    result = customer_satisfaction(**{k: np.array([v]) for k, v in values.items()})
    return float(result.score[0]), bool(result.is_default[0])


def test_a_customer_without_data_gets_the_flagged_neutral_default():
    assert score_one() == (50.0, True)
    assert score_one(handoffs=1) == (45.0, False)


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({"csat_mean": 5}, (3 * 100 + 50) / 4),
        ({"csat_mean": 1}, 50 / 4),
        ({"nps_mean": 10, "csat_mean": 3}, (3 * 75 + 50) / 4),
        ({"sentiment": -1, "sentiment_weight": 1}, 25.0),
        ({"sentiment": 0.5, "sentiment_weight": 10}, (3 * 75 + 50) / 4),
        ({"csat_mean": 5, "sentiment": 1, "sentiment_weight": 0.5}, (300 + 50 + 50) / 4.5),
        ({"csat_mean": 5, "unresolved": 1, "handoffs": 2}, 87.5 - 20),
        ({"csat_mean": 1, "unresolved": 9}, 0.0),
    ],
)
def test_the_documented_formula(inputs, expected):
    assert score_one(**inputs)[0] == pytest.approx(expected)


def test_decay_halves_the_weight_of_a_message_every_half_life():
    result = decayed_sentiment(
        [0, 0, 2, 2], [0.0, 30.0, 60.0, 5.0], [1.0, -1.0, 0.2, np.nan], n_customers=3
    )
    assert result.weight.tolist() == pytest.approx([1.5, 0.0, 0.25])
    assert result.mean[0] == pytest.approx((1.0 - 0.5) / 1.5)
    assert np.isnan(result.mean[1]) and result.mean[2] == pytest.approx(0.2)
    shorter = decayed_sentiment([0, 0], [0.0, 30.0], [1.0, -1.0], n_customers=1, half_life_days=15)
    assert shorter.weight[0] == pytest.approx(1.25)


def test_survey_means_per_customer():
    means = survey_means(
        [30, 10, 20], [10, 10, 20, 10, 99], ["csat", "csat", "nps", "nps", "csat"], [5, 2, 9, 6, 1]
    )
    assert means.csat_mean.tolist()[1:] == [3.5, pytest.approx(np.nan, nan_ok=True)]
    assert np.isnan(means.csat_mean[0]) and means.csat_count.tolist() == [0, 2, 0]
    assert means.nps_mean[1] == 6.0 and means.nps_mean[2] == 9.0


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.just(np.nan), st.floats(1, 5)),
            st.one_of(st.just(np.nan), st.floats(0, 10)),
            st.one_of(st.just(np.nan), st.floats(-1, 1)),
            st.floats(0, 50),
            st.integers(0, 10),
            st.integers(0, 10),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_the_score_is_always_within_0_and_100(rows):
    columns = [np.array(c, dtype=float) for c in zip(*rows, strict=True)]
    result = customer_satisfaction(
        csat_mean=columns[0],
        nps_mean=columns[1],
        sentiment=columns[2],
        sentiment_weight=columns[3],
        unresolved=columns[4],
        handoffs=columns[5],
    )
    assert np.all((result.score >= 0) & (result.score <= 100))


def test_better_mood_never_lowers_the_score_and_weights_are_tunable():
    moods = np.linspace(-1, 1, 21)
    n = moods.size
    result = customer_satisfaction(
        csat_mean=np.full(n, 4.0),
        nps_mean=np.full(n, np.nan),
        sentiment=moods,
        sentiment_weight=np.full(n, 2.0),
        unresolved=np.zeros(n),
        handoffs=np.zeros(n),
    )
    assert np.all(np.diff(result.score) > 0)
    harsh = SatisfactionWeights(unresolved_penalty=50, penalty_cap=100)
    assert customer_satisfaction(
        csat_mean=[5.0],
        nps_mean=[np.nan],
        sentiment=[np.nan],
        sentiment_weight=[0.0],
        unresolved=[1],
        handoffs=[0],
        weights=harsh,
    ).score[0] == pytest.approx(37.5)


def test_out_of_range_inputs_are_rejected():
    with pytest.raises(ValueError):
        score_one(csat_mean=7)
    with pytest.raises(ValueError):
        score_one(unresolved=-1)


def test_one_million_customers_in_one_call():
    n = 1_000_000
    rng = np.random.default_rng(0)
    result = customer_satisfaction(
        csat_mean=np.where(rng.random(n) < 0.1, rng.uniform(1, 5, n), np.nan),
        nps_mean=np.full(n, np.nan),
        sentiment=rng.uniform(-1, 1, n),
        sentiment_weight=rng.exponential(1, n),
        unresolved=rng.poisson(0.05, n),
        handoffs=rng.poisson(0.1, n),
    )
    assert result.score.shape == (n,) and 0 <= result.score.min() <= result.score.max() <= 100
