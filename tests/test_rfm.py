"""RFM quintile scores: exact quintiles without ties, equal scores for equal values, sensible
scores for tiny customer bases, and customers without orders left unscored."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.rfm import RFMInput, quintile_scores, score_rfm


def rfm_input(recency, frequency, monetary, tenure=None) -> RFMInput:
    n = len(frequency)
    return RFMInput(
        customer_ids=np.arange(1, n + 1),
        recency_days=recency,
        frequency=frequency,
        monetary=monetary,
        tenure_days=tenure if tenure is not None else np.full(n, 400.0),
    )


def test_without_ties_the_scores_are_the_quintiles_of_the_rank():
    assert quintile_scores(np.arange(10.0)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores([50.0, 10, 40, 20, 30]).tolist() == [5, 1, 4, 2, 3]
    scores = quintile_scores(np.random.default_rng(1).permutation(1000).astype(float))
    assert np.bincount(scores).tolist() == [0, 200, 200, 200, 200, 200]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([7.0], [3]),
        ([1.0, 2.0], [1, 5]),
        ([3.0, 1.0, 2.0], [5, 1, 3]),
        ([1.0, 2.0, 3.0, 4.0], [1, 2, 4, 5]),
        ([2.0, 2.0, 2.0], [3, 3, 3]),
        ([1.0, 1.0, 2.0], [1, 1, 5]),
    ],
)
def test_tiny_customer_bases_get_spread_or_middle_scores(values, expected):
    assert quintile_scores(values).tolist() == expected


def test_zero_customers_give_empty_scores():
    scores = score_rfm(rfm_input([], np.zeros(0, dtype=int), []))
    assert len(scores) == 0 and scores.r_score.shape == (0,) and scores.codes() == []


def test_most_customers_with_one_order_all_get_f1_and_repeat_buyers_share_the_rest():
    frequency = np.array([1] * 60 + [2] * 20 + [3] * 10 + [4] * 5 + [9] * 5)
    scores = quintile_scores(frequency.astype(float))
    assert set(scores[frequency == 1]) == {1}
    assert set(scores[frequency == 2]) == {4}  # 60 of the 80 others are worse: 75 %
    assert set(scores[frequency == 9]) == {5}
    assert np.all(np.diff(scores[np.argsort(frequency, kind="stable")]) >= 0)


def test_recency_is_reversed_so_the_most_recent_customers_score_5():
    scores = score_rfm(
        rfm_input(
            recency=[1.0, 400.0, 30.0, 90.0, 200.0],
            frequency=[1, 1, 1, 1, 1],
            monetary=[10.0, 20, 30, 40, 50],
        )
    )
    assert scores.r_score.tolist() == [5, 1, 4, 3, 2]
    assert scores.f_score.tolist() == [3] * 5  # everybody tied: no information, the middle
    assert scores.m_score.tolist() == [1, 2, 3, 4, 5]
    assert scores.codes()[0] == "531"


def test_customers_without_orders_are_not_scored_and_do_not_move_the_others():
    with_orders = rfm_input([5.0, 50.0, 500.0], [3, 2, 1], [300.0, 200.0, 100.0])
    mixed = rfm_input(
        [5.0, np.nan, 50.0, 500.0, np.nan],
        [3, 0, 2, 1, 0],
        [300.0, 0.0, 200.0, 100.0, 0.0],
        tenure=[400.0, np.nan, 400.0, 400.0, np.nan],
    )
    alone, together = score_rfm(with_orders), score_rfm(mixed)
    assert together.scored.tolist() == [True, False, True, True, False]
    assert together.r_score.tolist() == [5, 0, 3, 1, 0]
    assert together.r_score[together.scored].tolist() == alone.r_score.tolist()
    assert together.m_score[together.scored].tolist() == alone.m_score.tolist()


def test_mean_spend_is_total_spend_per_order():
    data = rfm_input([1.0, np.nan], [4, 0], [100.0, 0.0], tenure=[10.0, np.nan])
    assert data.mean_spend[0] == 25.0 and np.isnan(data.mean_spend[1])


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("frequency", [-1, 1]),
        ("recency_days", [np.nan, 1.0]),
        ("monetary", [-5.0, 1.0]),
        ("recency_days", [1.0]),
    ],
)
def test_invalid_input_is_rejected(field, bad):
    good = {
        "customer_ids": [1, 2],
        "recency_days": [1.0, 2.0],
        "frequency": [1, 1],
        "monetary": [1.0, 2.0],
        "tenure_days": [1.0, 2.0],
    }
    with pytest.raises(ValueError):
        RFMInput(**{**good, field: bad})


values_with_ties = st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=60)


@settings(deadline=None)
@given(values_with_ties)
def test_equal_values_get_equal_scores_and_scores_never_decrease_with_value(values):
    x = np.array(values, dtype=float)
    scores = quintile_scores(x)
    assert scores.min() >= 1 and scores.max() <= 5
    for value in np.unique(x):
        assert len(set(scores[x == value])) == 1
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)


@settings(deadline=None)
@given(values_with_ties, st.randoms())
def test_scores_do_not_depend_on_row_order(values, random):
    x = np.array(values, dtype=float)
    permutation = list(range(len(x)))
    random.shuffle(permutation)
    assert quintile_scores(x)[permutation].tolist() == quintile_scores(x[permutation]).tolist()
