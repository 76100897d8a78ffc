"""RFM inputs and quintile scores 1–5.

Definitions (PRODUCT.md):

- ``recency_days``: days since the customer's last order, relative to an explicit ``as_of``.
- ``frequency``: number of orders.
- ``monetary``: **total** spend over all orders (the mean order value is available as
  :attr:`RFMInput.mean_spend`).
- ``tenure_days``: days since the customer's first order.

Scores are rank-based quintiles. For each dimension every customer gets the share of *other*
customers who are strictly worse (older last order, fewer orders, less spend), out of the
customers whose value differs from theirs::

    p = worse / (worse + better)            (everybody tied: p = 1/2)
    score = 1 + min(4, floor(5 · p))

so equal values always get equal scores (the tie rule), the lowest value gets 1, the highest
5, and without ties the scores are the usual quintiles of the rank. Recency is reversed by
the definition of "worse": the most recent customers get 5. With heavy ties the five scores
are not 20 % each: when most customers have exactly one order, they all get F = 1 and the
repeat buyers share 2–5. The arithmetic is in integers, so scores are exact and deterministic.

Customers with no orders (``frequency == 0``) have no recency; they are not scored (scores 0,
``scored`` False), take no part in the ranks, and fall into the "Unclassified" segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ScoreArray = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class RFMInput:
    """One row per customer, aligned by index. Arrays are converted on construction.

    ``monetary`` is the customer's total spend; ``recency_days`` and ``tenure_days`` may be
    NaN for customers without orders (``frequency == 0``).
    """

    customer_ids: IntArray
    recency_days: FloatArray
    frequency: IntArray
    monetary: FloatArray
    tenure_days: FloatArray

    def __post_init__(self) -> None:
        converted = {
            "customer_ids": np.asarray(self.customer_ids, dtype=np.int64),
            "recency_days": np.asarray(self.recency_days, dtype=np.float64),
            "frequency": np.asarray(self.frequency, dtype=np.int64),
            "monetary": np.asarray(self.monetary, dtype=np.float64),
            "tenure_days": np.asarray(self.tenure_days, dtype=np.float64),
        }
        n = converted["customer_ids"].shape
        for name, values in converted.items():
            if values.ndim != 1 or values.shape != n:
                raise ValueError(f"{name} must be 1-D with one value per customer")
            object.__setattr__(self, name, values)
        _validate(self)

    def __len__(self) -> int:
        return int(self.customer_ids.shape[0])

    @property
    def mean_spend(self) -> FloatArray:
        """Mean order value (total spend / orders); NaN for customers without orders."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.frequency > 0, self.monetary / self.frequency, np.nan)


def _validate(data: RFMInput) -> None:
    if np.any(data.frequency < 0):
        raise ValueError("frequency must be >= 0")
    buyers = data.frequency > 0
    for name in ("recency_days", "monetary", "tenure_days"):
        values = getattr(data, name)[buyers]
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be finite for customers with orders")
        if np.any(values < 0):
            raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True, eq=False)
class RFMScores:
    """Quintile scores 1–5 per customer (0 where ``scored`` is False: no orders)."""

    customer_ids: IntArray
    r_score: ScoreArray
    f_score: ScoreArray
    m_score: ScoreArray
    scored: BoolArray

    def __len__(self) -> int:
        return int(self.customer_ids.shape[0])

    def codes(self) -> list[str]:
        """The usual three-digit cell names ("555", "511", …; "000" when not scored)."""
        stacked = np.stack([self.r_score, self.f_score, self.m_score], axis=1)
        return ["".join(map(str, row)) for row in stacked.tolist()]


def score_rfm(data: RFMInput) -> RFMScores:
    """R, F and M quintile scores for every customer with at least one order (see module doc)."""
    n = len(data)
    scored = data.frequency > 0
    r = np.zeros(n, dtype=np.int8)
    f = np.zeros(n, dtype=np.int8)
    m = np.zeros(n, dtype=np.int8)
    # Recency is reversed: a larger number of days is worse, so rank its negation.
    r[scored] = quintile_scores(-data.recency_days[scored])
    f[scored] = quintile_scores(data.frequency[scored].astype(np.float64))
    m[scored] = quintile_scores(data.monetary[scored])
    return RFMScores(
        customer_ids=data.customer_ids.copy(), r_score=r, f_score=f, m_score=m, scored=scored
    )


def quintile_scores(values: npt.ArrayLike) -> ScoreArray:
    """Scores 1–5 where higher values are better, with the tie rule of the module doc."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, dtype=np.int8)
    if not np.all(np.isfinite(x)):
        raise ValueError("values must be finite")
    n = x.size
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts_group = np.ones(n, dtype=bool)
    starts_group[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(starts_group)  # first position of each tie group
    worse = starts  # customers before a tie group are strictly worse
    better = n - np.append(starts[1:], n)  # customers after it are strictly better
    others = worse + better
    # score - 1 = floor(5 * worse / others), in integers; everybody tied -> the middle, 3.
    step = np.where(others > 0, (5 * worse) // np.maximum(others, 1), 2)
    group_scores = (1 + np.minimum(4, step)).astype(np.int8)
    scores = np.empty(n, dtype=np.int8)
    scores[order] = group_scores[np.cumsum(starts_group) - 1]
    return scores
