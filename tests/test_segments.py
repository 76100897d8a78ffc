"""RFM segments: an explicit priority order that covers all 125 score cells, reaches every
named segment, and is the same scalar and vectorised; segment moves between snapshots."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.rfm import RFMInput, score_rfm
from analytics.segments import (
    ALL_SEGMENTS,
    SEGMENT_RULES,
    SEGMENTS,
    UNCLASSIFIED,
    Move,
    assign_segment_codes,
    assign_segments,
    describe_segments,
    explain_segment,
    segment_for,
    segment_moves,
    transition_matrix,
    unclassified_cells,
)

CELLS = [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]

# The widely copied table (R, F, M ranges), read in its own order, first match wins.
COPIED_TABLE = [
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal Customers", (2, 5), (3, 5), (3, 5)),
    ("Potential Loyalist", (3, 5), (1, 3), (1, 3)),
    ("New Customers", (4, 5), (1, 1), (1, 1)),
    ("Promising", (3, 4), (1, 1), (1, 1)),
    ("Need Attention", (2, 3), (2, 3), (2, 3)),
    ("About To Sleep", (2, 3), (1, 2), (1, 2)),
    ("At Risk", (1, 2), (2, 5), (2, 5)),
    ("Can't Lose Them", (1, 1), (4, 5), (4, 5)),
    ("Hibernating", (1, 2), (1, 2), (1, 2)),
    ("Lost", (1, 2), (1, 2), (1, 2)),
]


def copied_table_segment(r: int, f: int, m: int) -> str:
    for name, rr, ff, mm in COPIED_TABLE:
        if rr[0] <= r <= rr[1] and ff[0] <= f <= ff[1] and mm[0] <= m <= mm[1]:
            return name
    return UNCLASSIFIED


def test_the_copied_table_in_its_own_order_never_reaches_four_segments():
    """Why the explicit priority exists (PRODUCT.md)."""
    reached = {copied_table_segment(*cell) for cell in CELLS}
    assert set(SEGMENTS) - reached == {"New Customers", "Promising", "Can't Lose Them", "Lost"}
    assert UNCLASSIFIED in reached


def test_every_cell_is_classified_and_every_segment_is_reachable():
    cells = Counter(segment_for(*cell) for cell in CELLS)
    assert unclassified_cells() == []
    assert cells == {
        "Champions": 8,
        "Loyal Customers": 37,
        "Can't Lose Them": 8,
        "At Risk": 22,
        "New Customers": 3,
        "Promising": 3,
        "Potential Loyalist": 14,
        "Need Attention": 12,
        "About To Sleep": 4,
        "Lost": 4,
        "Hibernating": 10,
    }
    assert sum(cells.values()) == 125


@pytest.mark.parametrize(
    ("cell", "segment"),
    [
        ((5, 5, 5), "Champions"),
        ((4, 4, 4), "Champions"),
        ((5, 5, 1), "Loyal Customers"),
        ((3, 3, 5), "Loyal Customers"),
        ((1, 5, 5), "Can't Lose Them"),
        ((2, 4, 4), "Can't Lose Them"),
        ((1, 3, 1), "At Risk"),
        ((2, 5, 2), "At Risk"),
        ((5, 1, 1), "New Customers"),
        ((5, 1, 3), "New Customers"),
        ((4, 1, 2), "Promising"),
        ((5, 1, 5), "Potential Loyalist"),
        ((4, 2, 1), "Potential Loyalist"),
        ((3, 1, 4), "Need Attention"),
        ((2, 2, 5), "Need Attention"),
        ((3, 1, 2), "About To Sleep"),
        ((3, 2, 1), "About To Sleep"),
        ((1, 1, 1), "Lost"),
        ((1, 2, 2), "Lost"),
        ((1, 1, 5), "Hibernating"),
        ((2, 1, 1), "Hibernating"),
        ((0, 0, 0), UNCLASSIFIED),
    ],
)
def test_cells_land_in_the_documented_segment(cell, segment):
    assert segment_for(*cell) == segment


def test_the_first_matching_rule_wins():
    """(5, 5, 5) matches both Champions and Loyal Customers; Champions comes first."""
    loyal = next(rule for rule in SEGMENT_RULES if rule.name == "Loyal Customers")
    assert loyal.matches(5, 5, 5)
    assert segment_for(5, 5, 5) == "Champions"


def test_vectorised_assignment_equals_the_scalar_rules_on_every_cell():
    r, f, m = (np.array(column) for column in zip(*CELLS, strict=True))
    assert assign_segments(r, f, m).tolist() == [segment_for(*cell) for cell in CELLS]
    codes = assign_segment_codes(r, f, m)
    assert [ALL_SEGMENTS[c] for c in codes] == [segment_for(*cell) for cell in CELLS]


def test_unscored_and_out_of_range_scores_are_unclassified():
    names = assign_segments([0, 6, -1, 5], [0, 3, 3, 5], [0, 3, 3, 5])
    assert names.tolist() == [UNCLASSIFIED, UNCLASSIFIED, UNCLASSIFIED, "Champions"]


def test_shapes_must_agree():
    with pytest.raises(ValueError):
        assign_segments([1, 2], [1], [1, 2])


@settings(deadline=None)
@given(st.lists(st.tuples(*[st.integers(-2, 7)] * 3), max_size=50))
def test_assignment_always_returns_a_known_name(cells):
    r, f, m = (np.array([c[i] for c in cells], dtype=np.int64) for i in range(3))
    assert set(assign_segments(r, f, m).tolist()) <= set(ALL_SEGMENTS)


def test_every_segment_is_reached_on_skewed_data_where_f2_and_f3_never_occur():
    """With 60 % one-time buyers F takes only 1, 4 and 5; the rules still reach all eleven."""
    rng = np.random.default_rng(3)
    n = 5000
    frequency = np.where(rng.random(n) < 0.6, 1, 2 + rng.poisson(2, n))
    recency = rng.uniform(0, 365, n)
    data = RFMInput(
        customer_ids=np.arange(n),
        recency_days=recency,
        frequency=frequency,
        monetary=frequency * rng.lognormal(3.5, 0.5, n),
        tenure_days=recency + 30,
    )
    scores = score_rfm(data)
    assert set(scores.f_score.tolist()) == {1, 4, 5}
    segments = assign_segments(scores.r_score, scores.f_score, scores.m_score)
    assert set(segments.tolist()) == set(SEGMENTS)
    fresh_small_one_timer = np.argmin(
        np.where((frequency == 1) & (scores.m_score <= 3), recency, np.inf)
    )
    assert segments[fresh_small_one_timer] == "New Customers"


def test_each_segment_has_a_plain_explanation_and_the_help_lists_them_in_priority_order():
    for name in ALL_SEGMENTS:
        assert explain_segment(name).startswith(f"{name}: ")
    with pytest.raises(KeyError):
        explain_segment("Whales")
    text = describe_segments(with_actions=True)
    positions = [text.index(f". {name}: ") for name in SEGMENTS]
    assert positions == sorted(positions)
    first = "1. Champions: bought recently, buy often and spend the most (R 4–5, F 4–5, M 4–5)"
    assert first in text
    assert "What to do:" in text and UNCLASSIFIED in text


def test_moves_list_only_changed_customers_with_new_and_gone_ones():
    before = {1: "Champions", 2: "Lost", 3: "Loyal Customers", 4: "Promising"}
    after = {1: "At Risk", 2: "Lost", 3: "Champions", 5: "New Customers"}
    assert segment_moves(before, after) == [
        Move(1, "Champions", "At Risk"),
        Move(3, "Loyal Customers", "Champions"),
        Move(4, "Promising", None),
        Move(5, None, "New Customers"),
    ]
    champions_to_at_risk = [
        m.customer_id
        for m in segment_moves(before, after)
        if (m.before, m.after) == ("Champions", "At Risk")
    ]
    assert champions_to_at_risk == [1]


def test_transition_matrix_counts_every_customer_once():
    before = {1: "Champions", 2: "Champions", 3: "Lost", 4: "Promising", 6: "VIP"}
    after = {1: "At Risk", 2: "Champions", 3: "Lost", 5: "New Customers", 6: "VIP"}
    matrix = transition_matrix(before, after)
    assert matrix.counts.sum() == 6
    assert matrix.count("Champions", "At Risk") == 1
    assert matrix.count("Champions", "Champions") == 1
    assert matrix.count(None, "New Customers") == 1
    assert matrix.count("Promising", None) == 1
    assert matrix.count("VIP", "VIP") == 1
    assert set(matrix.changes()) == {
        ("Champions", "At Risk", 1),
        (None, "New Customers", 1),
        ("Promising", None, 1),
    }
