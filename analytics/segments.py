"""Named RFM segments: an explicit priority order of rules over the R, F and M scores.

The widely copied segment table overlaps and leaves gaps; read in table order, New Customers,
Promising, Can't Lose Them and Lost can never be reached. Here the rules are tried in the
order of :data:`SEGMENT_RULES` and the first match wins. Together they cover all 125 cells
of scores 1–5, and every segment owns at least one cell (the tests walk the cube).
"Unclassified" is left for customers without scores (no orders: scores 0).

The rules are chosen to work on real, skewed data too. With the tie rule of
:mod:`analytics.rfm` the customers with the fewest orders (usually one) always get F = 1, and
when most customers have one order every repeat buyer is in the top 40 % and gets F 4–5: F 2–3
then never occur. Every segment therefore owns cells with F = 1 or F ≥ 4, where spend (M) and
recency (R) tell customers apart, so all eleven segments can still be reached.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

UNCLASSIFIED = "Unclassified"

ScoreRange = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """A segment and the score ranges (inclusive) that select it, if no earlier rule did."""

    name: str
    r: ScoreRange
    f: ScoreRange
    m: ScoreRange
    description: str
    action: str

    def matches(self, r: int, f: int, m: int) -> bool:
        return (
            self.r[0] <= r <= self.r[1]
            and self.f[0] <= f <= self.f[1]
            and self.m[0] <= m <= self.m[1]
        )

    def scores_text(self) -> str:
        """The ranges in words, e.g. ``R 4–5, F 4–5, M 4–5``."""
        return ", ".join(
            f"{label} {_range_text(bounds)}"
            for label, bounds in (("R", self.r), ("F", self.f), ("M", self.m))
        )


def _range_text(bounds: ScoreRange) -> str:
    low, high = bounds
    if (low, high) == (1, 5):
        return "any"
    return str(low) if low == high else f"{low}–{high}"


SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule(
        "Champions", (4, 5), (4, 5), (4, 5),
        "bought recently, buy often and spend the most",
        "reward them; early access to new products; ask for reviews",
    ),
    SegmentRule(
        "Loyal Customers", (3, 5), (3, 5), (1, 5),
        "buy regularly and bought fairly recently",
        "offer memberships or loyalty rewards; upsell higher-value products",
    ),
    SegmentRule(
        "Can't Lose Them", (1, 2), (4, 5), (4, 5),
        "used to buy often and spend the most, but not for a long time",
        "win them back personally; ask what went wrong; don't lose them to a competitor",
    ),
    SegmentRule(
        "At Risk", (1, 2), (3, 5), (1, 5),
        "bought several times, but not for a long time",
        "send a personal reactivation offer; remind them what they liked",
    ),
    SegmentRule(
        "New Customers", (5, 5), (1, 1), (1, 3),
        "made their first order very recently",
        "welcome them; help with the first delivery; build the relationship",
    ),
    SegmentRule(
        "Promising", (4, 4), (1, 1), (1, 3),
        "made one modest order fairly recently",
        "make them aware of the range; a small incentive for a second order",
    ),
    SegmentRule(
        "Potential Loyalist", (4, 5), (1, 3), (1, 5),
        "recent customers with a big first order or a second one",
        "recommend related products; invite them to a loyalty programme",
    ),
    SegmentRule(
        "Need Attention", (2, 3), (1, 3), (3, 5),
        "bought once or twice and spent well, but not recently",
        "a limited-time offer based on their past purchases",
    ),
    SegmentRule(
        "About To Sleep", (3, 3), (1, 3), (1, 5),
        "bought once or twice, spent little, and not recently",
        "share popular products or a discount to wake them up",
    ),
    SegmentRule(
        "Lost", (1, 1), (1, 2), (1, 2),
        "bought once or twice, spent little, and not for a very long time",
        "a last reactivation attempt at low cost; otherwise leave them alone",
    ),
    SegmentRule(
        "Hibernating", (1, 2), (1, 2), (1, 5),
        "bought once or twice long ago",
        "offer relevant products or a special discount; reconnect with care",
    ),
)  # fmt: skip

SEGMENTS: tuple[str, ...] = tuple(rule.name for rule in SEGMENT_RULES)
"""The named segments in priority order (without "Unclassified")."""

ALL_SEGMENTS: tuple[str, ...] = (*SEGMENTS, UNCLASSIFIED)
"""The named segments and "Unclassified"; the index is the segment code."""

_RULES_BY_NAME = {rule.name: rule for rule in SEGMENT_RULES}
_UNCLASSIFIED_CODE = len(SEGMENTS)


def segment_for(r: int, f: int, m: int) -> str:
    """The segment of one R/F/M cell; "Unclassified" when no rule matches (e.g. scores 0)."""
    for rule in SEGMENT_RULES:
        if rule.matches(r, f, m):
            return rule.name
    return UNCLASSIFIED


def _build_lookup() -> npt.NDArray[np.int8]:
    """Segment code per cell of a 6×6×6 cube; index 0 (not scored) is "Unclassified"."""
    lookup = np.full((6, 6, 6), _UNCLASSIFIED_CODE, dtype=np.int8)
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                lookup[r, f, m] = ALL_SEGMENTS.index(segment_for(r, f, m))
    return lookup


_LOOKUP = _build_lookup()


def assign_segment_codes(
    r: npt.ArrayLike, f: npt.ArrayLike, m: npt.ArrayLike
) -> npt.NDArray[np.int8]:
    """Segment codes (indexes into :data:`ALL_SEGMENTS`) for arrays of scores.

    Scores outside 1–5 (0 marks "not scored") give "Unclassified".
    """
    arrays = [np.asarray(x, dtype=np.int64) for x in (r, f, m)]
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape:
        raise ValueError("r, f and m must have the same shape")
    valid = np.ones(arrays[0].shape, dtype=bool)
    for scores in arrays:
        valid &= (scores >= 1) & (scores <= 5)
    ri, fi, mi = (np.where(valid, scores, 0) for scores in arrays)
    return _LOOKUP[ri, fi, mi]


def assign_segments(r: npt.ArrayLike, f: npt.ArrayLike, m: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """Segment names for arrays of scores (vectorised :func:`segment_for`)."""
    names = np.array(ALL_SEGMENTS, dtype=np.str_)
    return names[assign_segment_codes(r, f, m)]


def explain_segment(name: str) -> str:
    """One plain sentence about a segment, for staff answers."""
    if name == UNCLASSIFIED:
        return f"{UNCLASSIFIED}: no orders yet, so no RFM scores."
    rule = _RULES_BY_NAME.get(name)
    if rule is None:
        raise KeyError(f"unknown segment {name!r}")
    return f"{rule.name}: {rule.description}."


def describe_segments(*, with_scores: bool = True, with_actions: bool = False) -> str:
    """The segments in priority order, one line each, for help texts and docs."""
    lines = []
    for number, rule in enumerate(SEGMENT_RULES, start=1):
        line = f"{number}. {rule.name}: {rule.description}"
        if with_scores:
            line += f" ({rule.scores_text()})"
        if with_actions:
            line += f". What to do: {rule.action}"
        lines.append(line + ".")
    lines.append(f"{UNCLASSIFIED}: no orders yet, so no scores.")
    return "\n".join(lines)


def unclassified_cells() -> list[tuple[int, int, int]]:
    """The (R, F, M) cells of scores 1–5 no rule covers (empty with the current rules)."""
    return [
        (r, f, m)
        for r in range(1, 6)
        for f in range(1, 6)
        for m in range(1, 6)
        if segment_for(r, f, m) == UNCLASSIFIED
    ]


# --- segment moves between two snapshots ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Move:
    """A customer whose segment changed; None means not in that snapshot (new or gone)."""

    customer_id: int
    before: str | None
    after: str | None


def segment_moves(before: Mapping[int, str], after: Mapping[int, str]) -> list[Move]:
    """Customers whose segment differs between two snapshots, ordered by customer id.

    Customers in only one snapshot are included with ``None`` on the other side.
    """
    moves = []
    for customer_id in sorted(before.keys() | after.keys()):
        old, new = before.get(customer_id), after.get(customer_id)
        if old != new:
            moves.append(Move(customer_id, old, new))
    return moves


@dataclass(frozen=True, eq=False)
class TransitionMatrix:
    """Counts of customers by segment before (rows) and after (columns).

    Labels are :data:`ALL_SEGMENTS` plus any other names found in the snapshots, then
    ``None`` for "not in that snapshot" (new customers in the ``None`` row, customers who
    left in the ``None`` column).
    """

    labels: tuple[str | None, ...]
    counts: npt.NDArray[np.int64]

    def count(self, before: str | None, after: str | None) -> int:
        return int(self.counts[self.labels.index(before), self.labels.index(after)])

    def changes(self) -> list[tuple[str | None, str | None, int]]:
        """(before, after, count) for every off-diagonal cell with customers, largest first."""
        cells = [
            (self.labels[i], self.labels[j], int(self.counts[i, j]))
            for i, j in zip(*np.nonzero(self.counts), strict=True)
            if i != j
        ]
        return sorted(cells, key=lambda cell: -cell[2])


def transition_matrix(before: Mapping[int, str], after: Mapping[int, str]) -> TransitionMatrix:
    """How many customers went from each segment to each other one between two snapshots."""
    pairs = Counter(
        (before.get(customer_id), after.get(customer_id))
        for customer_id in before.keys() | after.keys()
    )
    extra = sorted(
        {name for pair in pairs for name in pair if name is not None} - set(ALL_SEGMENTS)
    )
    labels: tuple[str | None, ...] = (*ALL_SEGMENTS, *extra, None)
    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for (old, new), n in pairs.items():
        counts[index[old], index[new]] = n
    return TransitionMatrix(labels=labels, counts=counts)
