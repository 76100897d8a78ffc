"""The analytics refresh: load aggregates from the database, score, store a snapshot.

Steps (each reported to ``progress``): order aggregates (SQL) → RFM scores and segments →
behaviour aggregates (SQL) → clusters → satisfaction → BG/NBD + Gamma-Gamma (churn risk,
expected purchases, CLV) → one snapshot row per customer for the ``as_of`` date.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from analytics.clusters import cluster_customers
from analytics.rfm import RFMInput, score_rfm
from analytics.segments import ALL_SEGMENTS, assign_segments
from bot.services.clv import fit_clv_models, predict_clv
from bot.services.context import Services
from bot.services.satisfaction import score_customers
from db import analytics_queries as aq
from db.bulk import insert_rows
from db.engine import read_scope, session_scope
from db.models import CustomerSnapshot

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
STEPS = ("orders", "scores", "behaviour", "clusters", "satisfaction", "clv", "snapshot")
CLUSTER_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "message_count",
    "complaint_share",
    "mean_sentiment",
    "handoffs",
)


@dataclass
class RefreshResult:
    as_of: date
    customers: int
    scored: int
    segments: dict[str, int] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)
    clv_fitted: bool = False
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, float | int | str]:
        return {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "with_orders": self.scored,
            "clusters": len(self.clusters),
            "clv_model": "fitted" if self.clv_fitted else "not enough data",
            "seconds": round(self.seconds, 2),
        }


def _align(ids: np.ndarray, source_ids: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    """``values`` (one per ``source_ids``) re-indexed onto ``ids``; missing get ``fill``."""
    out = np.full(ids.shape[0], fill, dtype=np.float64)
    if source_ids.size and ids.size:
        positions = np.searchsorted(ids, source_ids)
        ok = (positions < ids.shape[0]) & (
            ids[np.minimum(positions, ids.shape[0] - 1)] == source_ids
        )
        out[positions[ok]] = values[ok]
    return out


def run_refresh(
    services: Services, *, as_of: datetime, progress: Progress | None = None
) -> RefreshResult:
    """Recompute every customer's scores as of ``as_of`` and store the snapshot."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    report = progress or (lambda *_: None)

    def step(name: str) -> None:
        timings[name] = time.perf_counter()
        report(name, STEPS.index(name), len(STEPS))

    snapshot_day = as_of.astimezone(services.tz).date()
    # Read and compute without holding the SQLite turn (customers are answered meanwhile);
    # only the snapshot is written in a transaction of its own.
    with read_scope(services.session_factory) as session:
        step("orders")
        orders = aq.order_aggregates(session=session, as_of=as_of)
        # Everyone known by then: imported customers are created at import time, so those
        # with orders before ``as_of`` count too.
        ids = np.union1d(aq.all_customer_ids(session=session, as_of=as_of), orders.customer_ids)
        step("scores")
        frequency = _align(ids, orders.customer_ids, orders.frequency.astype(float), 0.0)
        rfm = RFMInput(
            customer_ids=ids,
            recency_days=_align(ids, orders.customer_ids, orders.recency_days, np.nan),
            frequency=frequency.astype(np.int64),
            monetary=_align(ids, orders.customer_ids, orders.monetary, 0.0),
            tenure_days=_align(ids, orders.customer_ids, orders.tenure_days, np.nan),
        )
        scores = score_rfm(rfm)
        segments = assign_segments(scores.r_score, scores.f_score, scores.m_score)
        step("behaviour")
        talk = aq.interaction_aggregates(session=session, as_of=as_of)
        conv_ids, handoffs, unresolved = aq.conversation_aggregates(session=session, as_of=as_of)
        messages = _align(ids, talk.customer_ids, talk.messages.astype(float), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_sentiment = _align(
                ids,
                talk.customer_ids,
                np.where(
                    talk.sentiment_count > 0,
                    talk.sentiment_sum / np.maximum(talk.sentiment_count, 1),
                    np.nan,
                ),
                np.nan,
            )
            complaint_share = np.where(
                messages > 0,
                _align(ids, talk.customer_ids, talk.complaints.astype(float), 0.0) / messages,
                0.0,
            )
        handoff_counts = _align(ids, conv_ids, handoffs.astype(float), 0.0)
        unresolved_counts = _align(ids, conv_ids, unresolved.astype(float), 0.0)
        step("clusters")
        cluster_names = np.full(ids.shape[0], "", dtype=object)
        buyers = scores.scored
        cluster_sizes: dict[str, int] = {}
        if int(buyers.sum()) >= 20:
            features = np.column_stack(
                [
                    rfm.recency_days[buyers],
                    rfm.frequency[buyers],
                    rfm.monetary[buyers],
                    messages[buyers],
                    complaint_share[buyers],
                    mean_sentiment[buyers],
                    handoff_counts[buyers],
                ]
            )
            clusters = cluster_customers(features, list(CLUSTER_FEATURES))
            names = np.asarray(clusters.names, dtype=object)[clusters.labels]
            cluster_names[buyers] = names
            cluster_sizes = {d.name: d.size for d in clusters.descriptions}
        step("satisfaction")
        satisfaction = score_customers(
            session, ids, as_of=as_of, unresolved=unresolved_counts, handoffs=handoff_counts
        ).score
        step("clv")
        calibration_end = snapshot_day - timedelta(days=1)
        summary = aq.purchase_summary(session=session, calibration_end=calibration_end)
        models = fit_clv_models(services, summary=summary)
        clv = predict_clv(models, summary) if models is not None else None
        p_alive = _align(ids, summary.customer_ids, clv.p_alive, np.nan) if clv else None
        expected = (
            _align(ids, summary.customer_ids, clv.expected_purchases, np.nan) if clv else None
        )
        value = _align(ids, summary.customer_ids, clv.clv, np.nan) if clv else None
    step("snapshot")
    with session_scope(services.session_factory) as session:
        _store_snapshot(
            session,
            snapshot_day,
            ids,
            rfm,
            scores,
            segments,
            cluster_names,
            satisfaction,
            p_alive,
            expected,
            value,
        )
    timings["end"] = time.perf_counter()
    marks = list(timings.items())
    step_seconds = {name: round(marks[i + 1][1] - t, 3) for i, (name, t) in enumerate(marks[:-1])}
    counts = Counter(segments.tolist())
    return RefreshResult(
        as_of=snapshot_day,
        customers=int(ids.shape[0]),
        scored=int(buyers.sum()),
        segments={name: counts[name] for name in ALL_SEGMENTS if counts.get(name)},
        clusters=cluster_sizes,
        clv_fitted=models is not None,
        seconds=time.perf_counter() - started,
        step_seconds=step_seconds,
    )


SNAPSHOT_COLUMNS = (
    "customer_id",
    "as_of",
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "r_score",
    "f_score",
    "m_score",
    "segment",
    "cluster",
    "satisfaction",
    "p_alive",
    "expected_purchases_90d",
    "clv",
    "computed_at",
)


def _column(values: np.ndarray | None, n: int, digits: int) -> list[float | None]:
    """Rounded floats with NaN as None (a whole column at once: fast on 1M rows)."""
    if values is None:
        return [None] * n
    rounded = np.round(values.astype(np.float64), digits)
    return [None if v != v else v for v in rounded.tolist()]  # v != v: NaN


def _ints(values: np.ndarray, keep: np.ndarray) -> list[int | None]:
    return [int(v) if k else None for v, k in zip(values.tolist(), keep.tolist(), strict=True)]


def _store_snapshot(
    session,
    day,
    ids,
    rfm,
    scores,
    segments,
    clusters,
    satisfaction,  # type: ignore[no-untyped-def]
    p_alive,
    expected,
    value,
) -> None:
    """Replace the snapshot of ``day`` with one row per customer (bulk insert)."""
    table = CustomerSnapshot.__table__  # type: ignore[attr-defined]
    session.execute(sa.delete(table).where(table.c.as_of == day))
    n = ids.shape[0]
    scored = scores.scored
    computed_at = datetime.now(UTC)
    columns = zip(
        ids.tolist(),
        [day] * n,
        _ints(np.nan_to_num(rfm.recency_days).astype(np.int64), scored),
        rfm.frequency.tolist(),
        _column(rfm.monetary, n, 2),
        _ints(np.nan_to_num(rfm.tenure_days).astype(np.int64), scored),
        _ints(scores.r_score, scored),
        _ints(scores.f_score, scored),
        _ints(scores.m_score, scored),
        segments.tolist(),
        [c or None for c in clusters.tolist()],
        _column(satisfaction, n, 1),
        _column(p_alive, n, 4),
        _column(expected, n, 4),
        _column(value, n, 2),
        [computed_at] * n,
        strict=True,
    )
    rows = list(columns)
    for start in range(0, n, 100_000):
        insert_rows(session, "customer_snapshots", SNAPSHOT_COLUMNS, rows[start : start + 100_000])
