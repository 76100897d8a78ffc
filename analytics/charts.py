"""The digest chart: satisfaction and sentiment trends and the segment sizes, as PNG bytes.

Drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas directly: no pyplot, no
``matplotlib.use``, no global figure state, so it is safe in a bot process and in threads.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from datetime import date

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from analytics.segments import ALL_SEGMENTS

CSAT_COLOR = "#2b8a3e"
NPS_COLOR = "#1c64b4"
SENTIMENT_COLOR = "#c2410c"
BAR_COLOR = "#5b6ee1"
NO_DATA = "no data yet"


def digest_chart(
    *,
    title: str,
    days: Sequence[date],
    csat: Sequence[float | None],
    nps: Sequence[float | None],
    sentiment: Sequence[float | None],
    segment_counts: Mapping[str, int] | None,
    dpi: int = 100,
) -> bytes:
    """A PNG with up to three panels: CSAT and NPS per day, mean sentiment per day, customers
    per segment. ``csat`` (0–100), ``nps`` (−100…100) and ``sentiment`` (−1…1) have one value
    per day, None where there is none. Panels without data say "no data yet".
    """
    for name, values in (("csat", csat), ("nps", nps), ("sentiment", sentiment)):
        if len(values) != len(days):
            raise ValueError(f"{name} must have one value per day")
    figure = Figure(figsize=(8, 9), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=14, fontweight="bold")
    top, middle, bottom = figure.subplots(3, 1, height_ratios=(3, 2, 3))
    _satisfaction_panel(top, days, csat, nps)
    _sentiment_panel(middle, days, sentiment)
    _segment_panel(bottom, segment_counts or {})
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _values(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _has_data(*series: Sequence[float | None]) -> bool:
    return any(v is not None and not math.isnan(v) for values in series for v in values)


def _no_data(axes: Axes, title: str) -> None:
    axes.set_title(title, loc="left")
    axes.text(
        0.5,
        0.5,
        NO_DATA,
        ha="center",
        va="center",
        fontsize=13,
        color="gray",
        transform=axes.transAxes,
    )
    axes.set_xticks([])
    axes.set_yticks([])


def _date_axis(axes: Axes) -> None:
    locator = AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.grid(True, alpha=0.3)


def _satisfaction_panel(
    axes: Axes, days: Sequence[date], csat: Sequence[float | None], nps: Sequence[float | None]
) -> None:
    title = "Satisfaction per day"
    if not days or not _has_data(csat, nps):
        _no_data(axes, title)
        return
    axes.set_title(title, loc="left")
    x = date2num(list(days))
    axes.plot(x, _values(csat), marker="o", color=CSAT_COLOR, label="CSAT (% 4–5 of 5)")
    axes.plot(x, _values(nps), marker="s", color=NPS_COLOR, label="NPS (−100…100)")
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylim(-105, 105)
    axes.set_ylabel("score")
    axes.legend(loc="best", fontsize=9)
    _date_axis(axes)


def _sentiment_panel(axes: Axes, days: Sequence[date], sentiment: Sequence[float | None]) -> None:
    title = "Mean sentiment of customer messages"
    if not days or not _has_data(sentiment):
        _no_data(axes, title)
        return
    axes.set_title(title, loc="left")
    axes.plot(date2num(list(days)), _values(sentiment), marker="o", color=SENTIMENT_COLOR)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylim(-1.05, 1.05)
    axes.set_ylabel("−1 negative … +1 positive")
    _date_axis(axes)


def _segment_panel(axes: Axes, counts: Mapping[str, int]) -> None:
    title = "Customers per segment"
    shown = [(name, n) for name, n in _segment_order(counts) if n > 0]
    if not shown:
        _no_data(axes, title)
        return
    axes.set_title(title, loc="left")
    names = [name for name, _ in shown][::-1]
    sizes = [n for _, n in shown][::-1]
    bars = axes.barh(names, sizes, color=BAR_COLOR)
    axes.bar_label(bars, labels=[f"{n:,}" for n in sizes], padding=3, fontsize=9)
    axes.set_xlabel("customers")
    axes.set_xlim(0, max(sizes) * 1.15)
    axes.grid(True, axis="x", alpha=0.3)


def _segment_order(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Known segments in priority order, then any other names alphabetically."""
    known = [(name, counts[name]) for name in ALL_SEGMENTS if name in counts]
    others = sorted((name, n) for name, n in counts.items() if name not in ALL_SEGMENTS)
    return known + others
