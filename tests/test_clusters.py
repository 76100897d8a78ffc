"""Behavioural clusters: k by silhouette, names from what sets a cluster apart (stable across
runs and row orders), plain-word descriptions, and sane results for tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from analytics.clusters import TYPICAL, cluster_customers, scale_features, silhouettes

NAMES = [
    "recency_days",
    "frequency",
    "monetary",
    "message_count",
    "complaint_share",
    "mean_sentiment",
]


def three_groups(n_per_group: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Big frequent spenders, lapsed one-time buyers, and unhappy talkers."""
    rng = np.random.default_rng(seed)
    n = n_per_group

    def group(recency, frequency, spend, messages, complaints, mood):
        return np.column_stack(
            [
                rng.gamma(4, recency / 4, n),
                rng.poisson(frequency, n) + 1,
                rng.lognormal(np.log(spend), 0.25, n),
                rng.poisson(messages, n),
                np.clip(rng.normal(complaints, 0.04, n), 0, 1),
                np.clip(rng.normal(mood, 0.1, n), -1, 1),
            ]
        )

    features = np.vstack(
        [
            group(10, 12, 900, 2, 0.02, 0.4),
            group(300, 0, 30, 1, 0.02, 0.1),
            group(60, 2, 120, 25, 0.6, -0.6),
        ]
    )
    truth = np.repeat([0, 1, 2], n)
    return features, truth


def test_three_clear_groups_are_found_and_named_by_what_sets_them_apart():
    features, truth = three_groups()
    result = cluster_customers(features, NAMES, seed=0)
    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) > 0.95
    majority = {g: np.bincount(result.labels[truth == g]).argmax() for g in (0, 1, 2)}
    by_truth = {g: result.names[label] for g, label in majority.items()}
    assert set(by_truth[0].split(", ")) == {"frequent", "big spenders"}
    assert "lapsed" in by_truth[1] or "one-time buyers" in by_truth[1]
    assert {"complainers", "talkers", "unhappy"} & set(by_truth[2].split(", "))
    assert len(set(result.names)) == result.k
    assert result.silhouette == max(result.silhouette_by_k.values())


def test_names_do_not_depend_on_the_seed_or_the_row_order():
    features, _ = three_groups()
    first = cluster_customers(features, NAMES, seed=0)
    order = np.random.default_rng(5).permutation(features.shape[0])
    second = cluster_customers(features[order], NAMES, seed=7)
    assert sorted(first.names) == sorted(second.names)
    sizes_first = {d.name: d.size for d in first.descriptions}
    sizes_second = {d.name: d.size for d in second.descriptions}
    assert sizes_first == sizes_second
    # Same customer, same cluster name.
    assert first.name_of()[order].tolist() == second.name_of().tolist()


def test_descriptions_give_sizes_shares_medians_and_plain_words():
    features, _ = three_groups()
    result = cluster_customers(features, NAMES)
    sizes = [d.size for d in result.descriptions]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == features.shape[0]
    assert result.labels.max() == result.k - 1
    assert abs(sum(d.share for d in result.descriptions) - 1.0) < 1e-9
    spenders = next(d for d in result.descriptions if "big spenders" in d.name)
    assert set(spenders.medians) == set(NAMES)
    assert spenders.medians["frequency"] >= 10
    assert "× the median" in spenders.distinctive and "orders" in spenders.distinctive


def test_purchase_interval_appears_when_tenure_is_known():
    features, _ = three_groups()
    tenure = np.full((features.shape[0], 1), 365.0)
    result = cluster_customers(np.hstack([features, tenure]), [*NAMES, "tenure_days"])
    spenders = next(d for d in result.descriptions if "big spenders" in d.name)
    assert "buy every" in spenders.distinctive


def test_silhouettes_match_scikit_learn():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4))
    labelings = [rng.integers(0, k, 300) for k in (2, 3, 5)]
    labelings.append(np.r_[np.zeros(299, dtype=np.int64), [1]])  # a cluster of one
    precise = silhouettes(x, labelings, chunk_cells=7_000, dtype=np.float64)  # several blocks
    fast = silhouettes(x, labelings)
    for labels, exact, single in zip(labelings, precise, fast, strict=True):
        assert exact == pytest.approx(silhouette_score(x, labels), abs=1e-10)
        assert single == pytest.approx(exact, abs=1e-5)


def test_scaling_logs_skewed_columns_fills_missing_values_and_standardises():
    raw = np.array([[0.0, 0.1], [9.0, np.nan], [99.0, -0.3], [999.0, 0.5]])
    scaled = scale_features(raw, ["monetary", "mean_sentiment"])
    logged = np.log1p(raw[:, 0])
    assert np.allclose(scaled[:, 0], (logged - logged.mean()) / logged.std())
    assert scaled[1, 1] == pytest.approx(np.median(scaled[[0, 2, 3], 1]))
    assert np.allclose(scaled.mean(axis=0), 0) and np.allclose(scaled.std(axis=0), 1)
    assert np.isnan(raw[1, 1])  # the input is left alone


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_customers_give_one_cluster_or_none(n):
    features, _ = three_groups()
    result = cluster_customers(features[:n], NAMES)
    assert result.labels.shape == (n,)
    assert result.silhouette is None
    assert result.k == (0 if n == 0 else 1)
    assert len(result.names) == result.k == len(result.descriptions)


def test_identical_customers_are_one_typical_cluster():
    features = np.tile([30.0, 2, 100, 1, 0, 0.1], (50, 1))
    result = cluster_customers(features, NAMES)
    assert result.k == 1 and result.names == [TYPICAL]
    assert result.descriptions[0].distinctive == "close to the average customer on every feature"


def test_missing_sentiment_of_silent_customers_is_allowed():
    features, _ = three_groups(100)
    features[::3, NAMES.index("mean_sentiment")] = np.nan
    result = cluster_customers(features, NAMES)
    assert result.k >= 2 and np.all(result.labels >= 0)


@pytest.mark.parametrize(
    ("features", "names"),
    [
        (np.ones((5, 2)), ["monetary"]),
        (np.ones((5, 2)), ["monetary", "monetary"]),
        (-np.ones((5, 1)), ["monetary"]),
        (np.full((5, 1), np.inf), ["mean_sentiment"]),
    ],
)
def test_invalid_features_are_rejected(features, names):
    with pytest.raises(ValueError):
        cluster_customers(features, names)
