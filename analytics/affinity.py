"""Item-to-item product affinity from co-purchases ("bought together").

Input: the lines of many orders as ``(order_id, product_id)`` pairs (repeats within an
order count once). Each order is a basket; for two products A and B:

- ``n_A``, ``n_B``: baskets holding A, B; ``n_AB``: baskets holding both; ``N``: all baskets.
- **lift** = ``n_AB · N / (n_A · n_B)``: how much more often A and B are bought together
  than if they were bought independently (1 = no relation, 2 = twice as often).
- **cosine** = ``n_AB / sqrt(n_A · n_B)``: between 0 and 1, less sensitive to rare products.

Lift overrates pairs seen together once or twice, so a pair needs at least ``min_together``
shared baskets (default 2) to count. The score that ranks related products is lift by
default, or cosine (``metric="cosine"``). Symmetric: A relates to B with the same score as
B to A.

Pure: arrays or iterables in, frozen dataclasses out; no database (tests/test_layering.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

Metric = Literal["lift", "cosine"]
METRICS: tuple[Metric, ...] = ("lift", "cosine")


@dataclass(frozen=True, slots=True)
class Related:
    """A product bought together with another one, and how strongly."""

    product_id: int
    score: float
    together: int
    lift: float
    cosine: float


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A product to suggest to a customer, and the bought product that suggests it."""

    product_id: int
    because_of: int
    score: float


@dataclass(frozen=True)
class ProductAffinity:
    """For each product, its related products, best first (at most ``top`` each)."""

    related: dict[int, tuple[Related, ...]]
    baskets: int
    metric: Metric

    def top(self, product_id: int, n: int | None = None) -> tuple[Related, ...]:
        found = self.related.get(product_id, ())
        return found if n is None else found[:n]

    def recommend(
        self,
        bought: Collection[int],
        *,
        min_score: float = 0.0,
        among: Collection[int] | None = None,
        per_product: int | None = None,
    ) -> Recommendation | None:
        """The best product related to any of ``bought`` that is not bought yet.

        ``among`` limits the suggestions to these products; ``per_product`` looks only at
        the first n related products of each bought one. Ties go to the smaller product id,
        so the answer is deterministic.
        """
        best: Recommendation | None = None
        for source in sorted(set(bought)):
            for rel in self.top(source, per_product):
                if rel.score < min_score or rel.product_id in bought:
                    continue
                if among is not None and rel.product_id not in among:
                    continue
                key = (-rel.score, rel.product_id, source)
                if best is None or key < (-best.score, best.product_id, best.because_of):
                    best = Recommendation(rel.product_id, source, rel.score)
        return best


def co_purchase(
    order_ids: Iterable[int] | np.ndarray,
    product_ids: Iterable[int] | np.ndarray,
    *,
    metric: Metric = "lift",
    min_together: int = 2,
    top: int = 10,
) -> ProductAffinity:
    """Related products per product from aligned arrays of order ids and product ids."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if min_together < 1 or top < 1:
        raise ValueError("min_together and top must be at least 1")
    orders = np.asarray(list(order_ids) if not isinstance(order_ids, np.ndarray) else order_ids)
    products = np.asarray(
        list(product_ids) if not isinstance(product_ids, np.ndarray) else product_ids
    )
    if orders.shape != products.shape or orders.ndim != 1:
        raise ValueError("order_ids and product_ids must be 1-d and of the same length")
    if orders.size == 0:
        return ProductAffinity({}, 0, metric)
    order_keys, order_index = np.unique(orders, return_inverse=True)
    product_keys, product_index = np.unique(products, return_inverse=True)
    # Basket × product incidence, 1 where the basket holds the product (duplicates merged).
    incidence = sp.csr_matrix(
        (np.ones(orders.size, dtype=np.int64), (order_index, product_index)),
        shape=(order_keys.size, product_keys.size),
    )
    incidence.data[:] = 1
    baskets = int(order_keys.size)
    together = (incidence.T @ incidence).tocoo()
    counts = np.asarray(incidence.sum(axis=0)).ravel().astype(np.float64)
    keep = (together.row != together.col) & (together.data >= min_together)
    rows, cols = together.row[keep], together.col[keep]
    both = together.data[keep].astype(np.float64)
    lift = both * baskets / (counts[rows] * counts[cols])
    cosine = both / np.sqrt(counts[rows] * counts[cols])
    score = lift if metric == "lift" else cosine
    related: dict[int, list[Related]] = {}
    # Best first; ties by the other product's id, so the result does not depend on input order.
    order = np.lexsort((product_keys[cols], -score, rows))
    for i in order:
        source = int(product_keys[rows[i]])
        bucket = related.setdefault(source, [])
        if len(bucket) < top:
            bucket.append(
                Related(
                    product_id=int(product_keys[cols[i]]),
                    score=float(score[i]),
                    together=int(both[i]),
                    lift=float(lift[i]),
                    cosine=float(cosine[i]),
                )
            )
    return ProductAffinity({k: tuple(v) for k, v in related.items()}, baskets, metric)


def co_purchase_pairs(
    lines: Iterable[tuple[int, int]],
    *,
    metric: Metric = "lift",
    min_together: int = 2,
    top: int = 10,
) -> ProductAffinity:
    """The same from ``(order_id, product_id)`` pairs."""
    pairs = list(lines)
    orders = np.fromiter((o for o, _ in pairs), dtype=np.int64, count=len(pairs))
    products = np.fromiter((p for _, p in pairs), dtype=np.int64, count=len(pairs))
    return co_purchase(orders, products, metric=metric, min_together=min_together, top=top)
