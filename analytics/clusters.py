"""Behavioural clusters of customers, named by what sets each cluster apart.

Steps of :func:`cluster_customers`:

1. Scaling. Skewed counts and amounts (:data:`SKEWED_FEATURES`, or the ``log_features`` the
   caller names) go through ``log1p``; missing values (NaN, e.g. the mean sentiment of a
   customer who never wrote) take the column median; every column is then standardised
   (mean 0, standard deviation 1; a constant column becomes 0).
2. k-means for every k in ``k_range`` on a random sample of at most ``fit_size`` customers,
   each k scored by the silhouette on the first ``sample_size`` customers of that sample; the
   best silhouette wins (ties: the smaller k). Every customer then gets the nearest centre.
   Labels are renumbered by cluster size, largest first.
3. Names. A cluster's centre in standard units says how far it sits from the average
   customer on each feature. The two features furthest from 0 (at least
   :data:`DISTINCTIVE_Z` standard deviations) name it with the words of
   :data:`FEATURE_WORDS`, e.g. "big spenders, frequent"; a cluster with nothing distinctive
   is "typical customers". Names are made unique by adding the next feature, then a number.
   Names depend on what the cluster is like, not on the k-means label, so the same kind of
   cluster keeps its name from one run to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SKEWED_FEATURES: frozenset[str] = frozenset(
    {
        "recency_days",
        "frequency",
        "monetary",
        "mean_spend",
        "tenure_days",
        "message_count",
        "handoffs",
        "complaints",
        "unresolved",
    }
)
"""Features scaled with ``log1p`` unless the caller names others."""

FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "recency_days": ("lapsed", "recent buyers"),
    "frequency": ("frequent", "infrequent"),
    "monetary": ("big spenders", "small spenders"),
    "mean_spend": ("big baskets", "small baskets"),
    "tenure_days": ("long-standing", "new"),
    "message_count": ("talkers", "quiet"),
    "complaint_share": ("complainers", "rarely complain"),
    "complaints": ("complainers", "rarely complain"),
    "mean_sentiment": ("happy", "unhappy"),
    "handoffs": ("need a human", "self-service"),
    "unresolved": ("open issues", "no open issues"),
}
"""Words for a feature that is high / low in a cluster; others read "high <name>"."""

DISTINCTIVE_Z = 0.5
"""How far (in standard deviations) a cluster centre must be from 0 to name the cluster."""

TYPICAL = "typical customers"


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    label: int
    name: str
    size: int
    share: float
    medians: dict[str, float]
    distinctive: str


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """Cluster label per customer (0 = largest cluster) and what each cluster is like.

    ``silhouette`` is None when no clustering was possible (fewer than 3 customers or
    fewer than 2 distinct rows): then everyone is in one cluster.
    """

    labels: IntArray
    names: list[str]
    k: int
    silhouette: float | None
    descriptions: list[ClusterDescription]
    feature_names: list[str]
    centers: FloatArray
    silhouette_by_k: dict[int, float]

    def name_of(self) -> npt.NDArray[np.str_]:
        """The cluster name of every customer."""
        return np.array(self.names, dtype=np.str_)[self.labels]


# --- scaling ---------------------------------------------------------------------------------


def scale_features(
    features: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    log_features: Collection[str] | None = None,
) -> FloatArray:
    """log1p on skewed columns, column medians for NaN, then standardise (see module doc)."""
    x = np.array(features, dtype=np.float64)  # a copy: scaled in place below
    _check_features(x, feature_names)
    logged = SKEWED_FEATURES if log_features is None else frozenset(log_features)
    for j, name in enumerate(feature_names):
        column = x[:, j]
        if name in logged:
            if np.any(column < 0):
                raise ValueError(f"{name} is log-scaled and must be >= 0")
            np.log1p(column, out=column)
        missing = np.isnan(column)
        if missing.any():
            column[missing] = np.median(column[~missing]) if (~missing).any() else 0.0
        if column.size == 0:
            continue
        mean, std = column.mean(), column.std()
        column -= mean
        if std > 1e-9 * (1.0 + abs(mean)):
            column /= std
        else:  # constant up to rounding: no information
            column[:] = 0.0
    return x


def _check_features(x: FloatArray, feature_names: Sequence[str]) -> None:
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError("features must be 2-D with one column per feature name")
    if len(set(feature_names)) != len(feature_names):
        raise ValueError("feature names must be unique")
    if np.isinf(x).any():
        raise ValueError("features must not be infinite")


# --- silhouette on a sample --------------------------------------------------------------------


def silhouettes(
    x: FloatArray,
    labelings: Sequence[IntArray],
    *,
    chunk_cells: int = 8_000_000,
    dtype: type[np.floating[Any]] = np.float32,
) -> list[float]:
    """Mean silhouette (Euclidean) of several labelings of the same rows, in one pass.

    The pairwise distances are computed once, block by block, and multiplied by the one-hot
    matrix of all labelings together, so memory stays at one block. Same definition as
    scikit-learn's ``silhouette_score`` (a point alone in its cluster scores 0). The distance
    blocks are single precision by default (twice as fast; silhouettes agree to about 1e-5);
    pass ``dtype=np.float64`` for full precision.
    """
    m = x.shape[0]
    points = np.asarray(x, dtype=dtype)
    ks = [int(labels.max()) + 1 for labels in labelings]
    offsets = np.concatenate([[0], np.cumsum(ks)])
    onehot = np.zeros((m, int(offsets[-1])), dtype=dtype)
    for labels, offset in zip(labelings, offsets[:-1], strict=True):
        onehot[np.arange(m), offset + labels] = 1.0
    sums = np.empty(onehot.shape, dtype=np.float64)
    squared = np.einsum("ij,ij->i", points, points)
    rows = max(1, chunk_cells // max(m, 1))
    for start in range(0, m, rows):
        stop = min(m, start + rows)
        block = squared[start:stop, None] + squared[None, :] - 2 * (points[start:stop] @ points.T)
        np.maximum(block, 0, out=block)
        np.sqrt(block, out=block)
        block[np.arange(stop - start), np.arange(start, stop)] = 0
        sums[start:stop] = block @ onehot
    counts = onehot.astype(np.float64)
    return [
        _mean_silhouette(sums[:, lo:hi], counts[:, lo:hi], labels)
        for labels, lo, hi in zip(labelings, offsets[:-1], offsets[1:], strict=True)
    ]


def _mean_silhouette(sums: FloatArray, onehot: FloatArray, labels: IntArray) -> float:
    sizes = onehot.sum(axis=0)
    rows = np.arange(labels.shape[0])
    own_size = sizes[labels]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, labels] / (own_size - 1)
        mean_other = sums / sizes
    mean_other[rows, labels] = np.inf
    mean_other[:, sizes == 0] = np.inf
    b = mean_other.min(axis=1)
    denominator = np.maximum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where((own_size > 1) & (denominator > 0), (b - a) / denominator, 0.0)
    return float(s.mean())


# --- clustering -------------------------------------------------------------------------------


def cluster_customers(
    features: npt.ArrayLike,
    feature_names: Sequence[str],
    *,
    seed: int = 0,
    k_range: Sequence[int] = range(2, 9),
    sample_size: int = 10_000,
    fit_size: int = 50_000,
    log_features: Collection[str] | None = None,
) -> ClusterResult:
    """Cluster customers on raw feature columns (one row per customer); see the module doc."""
    raw = np.asarray(features, dtype=np.float64)
    names = list(feature_names)
    scaled = scale_features(raw, names, log_features=log_features)
    n = scaled.shape[0]
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.permutation(n)[: min(n, fit_size)])
    # The silhouette sample is a random subset of the fit sample.
    sil_rows = np.sort(rng.permutation(fit_rows.shape[0])[: min(fit_rows.shape[0], sample_size)])
    fit_x = scaled[fit_rows]
    sil_x = fit_x[sil_rows]
    distinct = _count_distinct_rows(fit_x)
    ks = [k for k in k_range if 2 <= k <= min(distinct, sil_x.shape[0] - 1)]

    models = _fit_models(fit_x, ks, seed=seed)
    labelings = {k: model.predict(sil_x).astype(np.int64) for k, model in models.items()}
    labelings = {k: labels for k, labels in labelings.items() if np.unique(labels).size > 1}
    scores = dict(zip(labelings, silhouettes(sil_x, list(labelings.values())), strict=True))
    if not scores:
        return _single_cluster(raw, scaled, names)
    best_k = max(scores, key=lambda k: (scores[k], -k))
    labels, centers = _relabel_by_size(_predict(models[best_k], scaled), scaled)
    return _result(raw, labels, centers, names, silhouette=scores[best_k], by_k=scores)


def _fit_models(x: FloatArray, ks: Sequence[int], *, seed: int) -> dict[int, KMeans]:
    """k-means for each k, single-threaded.

    On a small sample one thread is several times faster than OpenMP and BLAS threads
    competing for a couple of cores; the limit is lifted when the block ends.
    """
    with threadpool_limits(limits=1):
        return {k: KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x) for k in ks}


def _count_distinct_rows(x: FloatArray) -> int:
    return 0 if x.shape[0] == 0 else int(np.unique(x, axis=0).shape[0])


def _predict(model: KMeans, x: FloatArray, *, rows: int = 200_000) -> IntArray:
    with threadpool_limits(limits=1):
        parts = [model.predict(x[start : start + rows]) for start in range(0, x.shape[0], rows)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _relabel_by_size(labels: IntArray, scaled: FloatArray) -> tuple[IntArray, FloatArray]:
    """Labels renumbered by size (largest first, ties by old label), and the cluster means."""
    counts = np.bincount(labels)
    present = np.flatnonzero(counts)
    order = present[np.lexsort((present, -counts[present]))]
    mapping = np.zeros(counts.shape[0], dtype=np.int64)
    mapping[order] = np.arange(order.shape[0])
    new_labels = mapping[labels]
    centers = np.stack([scaled[new_labels == j].mean(axis=0) for j in range(order.shape[0])])
    return new_labels, centers


def _single_cluster(raw: FloatArray, scaled: FloatArray, names: list[str]) -> ClusterResult:
    n = raw.shape[0]
    labels = np.zeros(n, dtype=np.int64)
    if n == 0:
        centers = np.zeros((0, len(names)))
        return ClusterResult(labels, [], 0, None, [], names, centers, {})
    centers = scaled.mean(axis=0, keepdims=True)
    return _result(raw, labels, centers, names, silhouette=None, by_k={})


# --- names and descriptions ---------------------------------------------------------------------


def _result(
    raw: FloatArray,
    labels: IntArray,
    centers: FloatArray,
    names: list[str],
    *,
    silhouette: float | None,
    by_k: dict[int, float],
) -> ClusterResult:
    k = centers.shape[0]
    overall = _nanmedian_columns(raw)
    medians = _group_medians(raw, labels, k)
    cluster_names = name_clusters(centers, names, medians=medians)
    sizes = np.bincount(labels, minlength=k)
    descriptions = [
        ClusterDescription(
            label=j,
            name=cluster_names[j],
            size=int(sizes[j]),
            share=float(sizes[j] / labels.shape[0]),
            medians={name: float(medians[j, i]) for i, name in enumerate(names)},
            distinctive=describe_cluster(centers[j], medians[j], overall, names),
        )
        for j in range(k)
    ]
    return ClusterResult(
        labels=labels,
        names=cluster_names,
        k=k,
        silhouette=silhouette,
        descriptions=descriptions,
        feature_names=names,
        centers=centers,
        silhouette_by_k=by_k,
    )


def _nanmedian_columns(x: FloatArray) -> FloatArray:
    out = np.full(x.shape[1], np.nan)
    for j in range(x.shape[1]):
        column = x[:, j]
        present = column[~np.isnan(column)]
        if present.size:
            out[j] = np.median(present)
    return out


def _group_medians(raw: FloatArray, labels: IntArray, k: int) -> FloatArray:
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    return np.stack([_nanmedian_columns(raw[order[bounds[j] : bounds[j + 1]]]) for j in range(k)])


def _words(center: FloatArray, medians: FloatArray, names: Sequence[str]) -> list[str]:
    """Words for the distinctive features of one cluster, most distinctive first."""
    order = np.argsort(-np.abs(center), kind="stable")
    words = []
    for j in order:
        if abs(center[j]) < DISTINCTIVE_Z:
            break
        high, low = FEATURE_WORDS.get(names[j], (f"high {names[j]}", f"low {names[j]}"))
        word = high if center[j] > 0 else low
        if names[j] == "frequency" and center[j] < 0 and medians[j] <= 1:
            word = "one-time buyers"
        if word not in words:
            words.append(word)
    return words


def name_clusters(
    centers: FloatArray, feature_names: Sequence[str], *, medians: FloatArray | None = None
) -> list[str]:
    """Unique names from the distinctive features of each cluster centre (see module doc)."""
    if medians is None:
        medians = np.full(centers.shape, np.nan)
    taken: set[str] = set()
    names = []
    for center, median in zip(centers, medians, strict=True):
        words = _words(center, median, feature_names)
        candidates = [", ".join(words[:n]) for n in range(2, len(words) + 1)] or [
            ", ".join(words) or TYPICAL
        ]
        name = next((c for c in candidates if c not in taken), None)
        number = 2
        while name is None or name in taken:
            name = f"{candidates[0]} ({number})"
            number += 1
        taken.add(name)
        names.append(name)
    return names


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}".removesuffix(".0")


def _ratio_phrase(verb: str) -> Callable[[float, float], str]:
    def phrase(median: float, overall: float) -> str:
        if overall > 0:
            return f"{verb} {median / overall:.1f}× the median"
        return f"{verb} {_fmt(median)} (median {_fmt(overall)})"

    return phrase


def _count(value: float, noun: str) -> str:
    return f"{_fmt(value)} {noun}" + ("" if _fmt(value) == "1" else "s")


_PHRASES: dict[str, Callable[[float, float], str]] = {
    "monetary": _ratio_phrase("spend"),
    "mean_spend": _ratio_phrase("baskets"),
    "frequency": lambda v, o: f"{_count(v, 'order')} (typical: {_fmt(o)})",
    "recency_days": lambda v, o: f"last order {_count(v, 'day')} ago (typical: {_fmt(o)})",
    "tenure_days": lambda v, o: f"customers for {_count(v, 'day')} (typical: {_fmt(o)})",
    "message_count": lambda v, o: f"{_count(v, 'message')} (typical: {_fmt(o)})",
    "complaint_share": lambda v, o: f"{100 * v:.0f}% complaints (typical: {100 * o:.0f}%)",
    "mean_sentiment": lambda v, o: f"mood {v:+.2f} (typical: {o:+.2f})",
    "handoffs": lambda v, o: f"{_count(v, 'handoff')} (typical: {_fmt(o)})",
}


def describe_cluster(
    center: FloatArray, medians: FloatArray, overall: FloatArray, feature_names: Sequence[str]
) -> str:
    """Plain words for the (up to three) most distinctive features, with the cluster median."""
    order = np.argsort(-np.abs(center), kind="stable")[:3]
    parts = []
    for j in order:
        if abs(center[j]) < DISTINCTIVE_Z or np.isnan(medians[j]):
            continue
        name = feature_names[j]
        phrase = _PHRASES.get(name, lambda v, o, n=name: f"{n} {v:.3g} (typical: {o:.3g})")
        parts.append(phrase(float(medians[j]), float(overall[j])))
        if name == "frequency" and "tenure_days" in feature_names and medians[j] > 1:
            tenure = float(medians[list(feature_names).index("tenure_days")])
            parts.append(f"buy every {_interval(tenure / (medians[j] - 1))}")
    return ", ".join(parts) if parts else "close to the average customer on every feature"


def _interval(days: float) -> str:
    """A purchase interval in days, weeks or months, rounded for reading."""
    if days < 14:
        return f"{max(1, round(days))} days"
    if days < 90:
        return f"{round(days / 7)} weeks"
    return f"{round(days / 30.4)} months"
