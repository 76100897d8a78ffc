"""Item-to-item co-purchase affinity (analytics.affinity), on small baskets worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.affinity import co_purchase, co_purchase_pairs

A, B, C, D = 1, 2, 3, 4
# Six baskets: A+B twice, A+C once, B alone, C+D twice. The (1, A) line is repeated: a
# product twice in one order is one basket holding it.
LINES = [
    (1, A),
    (1, A),
    (1, B),
    (2, A),
    (2, B),
    (3, A),
    (3, C),
    (4, B),
    (5, C),
    (5, D),
    (6, C),
    (6, D),
]


def test_lift_and_cosine_match_the_hand_computed_values():
    affinity = co_purchase_pairs(LINES)
    assert affinity.baskets == 6
    (ab,) = affinity.top(A)
    # n_A = n_B = 3, n_AB = 2, N = 6: lift = 2·6 / (3·3), cosine = 2 / √(3·3)
    assert ab.product_id == B and ab.together == 2
    assert ab.lift == pytest.approx(12 / 9)
    assert ab.cosine == pytest.approx(2 / 3)
    (cd,) = affinity.top(C)
    # n_C = 3, n_D = 2, n_CD = 2: lift = 2·6 / (3·2) = 2, cosine = 2 / √6
    assert (cd.product_id, cd.lift, cd.cosine) == (
        D,
        pytest.approx(2.0),
        pytest.approx(2 / math.sqrt(6)),
    )
    assert affinity.top(D)[0].product_id == C  # symmetric
    assert affinity.top(B)[0].score == pytest.approx(ab.score)


def test_pairs_seen_together_less_than_min_together_do_not_count():
    assert [r.product_id for r in co_purchase_pairs(LINES).top(A)] == [B]
    loose = co_purchase_pairs(LINES, min_together=1)
    related = loose.top(A)
    assert [r.product_id for r in related] == [B, C]  # best first
    assert related[1].lift == pytest.approx(6 / 9)


def test_the_ranking_metric_can_be_cosine_and_top_limits_the_list():
    by_cosine = co_purchase_pairs(LINES, metric="cosine", min_together=1)
    assert by_cosine.top(A)[0].score == pytest.approx(2 / 3)
    assert len(co_purchase_pairs(LINES, min_together=1, top=1).top(A)) == 1
    assert len(by_cosine.top(A, 1)) == 1


def test_recommend_suggests_the_best_product_not_yet_bought():
    affinity = co_purchase_pairs(LINES)
    best = affinity.recommend({A})
    assert best is not None and (best.product_id, best.because_of) == (B, A)
    assert affinity.recommend({C}).product_id == D  # type: ignore[union-attr]
    assert affinity.recommend({A, B}) is None  # B is bought, nothing else is related enough
    assert affinity.recommend({A}, min_score=1.5) is None  # lift 1.33 is below
    assert affinity.recommend({A, C}).product_id == D  # type: ignore[union-attr]  # lift 2 beats 1.33
    assert affinity.recommend({A, C}, among={B}).product_id == B  # type: ignore[union-attr]
    assert affinity.recommend(set()) is None


def test_the_result_does_not_depend_on_the_order_of_the_lines():
    forward = co_purchase_pairs(LINES, min_together=1)
    backward = co_purchase_pairs(list(reversed(LINES)), min_together=1)
    assert forward.related == backward.related


def test_arrays_and_pairs_give_the_same_result():
    orders = np.array([o for o, _ in LINES])
    products = np.array([p for _, p in LINES])
    assert co_purchase(orders, products).related == co_purchase_pairs(LINES).related


def test_empty_and_malformed_input():
    empty = co_purchase_pairs([])
    assert empty.baskets == 0 and empty.recommend({A}) is None
    with pytest.raises(ValueError, match="same length"):
        co_purchase([1, 2], [1])
    with pytest.raises(ValueError, match="unknown metric"):
        co_purchase_pairs(LINES, metric="jaccard")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        co_purchase_pairs(LINES, min_together=0)


def test_single_item_baskets_count_in_the_base_but_relate_nothing():
    affinity = co_purchase_pairs([(1, A), (2, B), (3, A), (3, B)], min_together=1)
    # N = 3, n_A = n_B = 2, n_AB = 1: lift = 3/4 (bought together less than by chance)
    assert affinity.top(A)[0].lift == pytest.approx(0.75)
