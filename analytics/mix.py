"""Shares of a categorical mix (intents, sentiments, segments), largest first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Share:
    label: str
    count: int
    percent: float


def shares(counts: Mapping[str, int], *, top: int | None = None) -> list[Share]:
    """Each label's count and percentage of the total, sorted by count then label.

    With ``top``, the labels after the first ``top`` are folded into one ``other`` row, so
    the percentages still add up to 100.
    """
    total = sum(counts.values())
    if total <= 0:
        return []
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if top is not None and len(ordered) > top:
        rest = sum(n for _, n in ordered[top:])
        ordered = [*ordered[:top], ("other", rest)]
    return [Share(label, n, round(100.0 * n / total, 1)) for label, n in ordered]
