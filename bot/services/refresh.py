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
from datetime import date, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from analytics.clusters import cluster_customers
from analytics.rfm import RFMInput, score_rfm
from analytics.segments import ALL_SEGMENTS, assign_segments
from bot.services.clv import fit_clv_models, predict_clv
from bot.services.context import Services
from bot.services.satisfaction import score_customers
from db import analytics_queries as aq
from db.engine import session_scope
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
    if source_ids.size:
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
    with session_scope(services.session_factory) as session:
        step("orders")
        ids = aq.all_customer_ids(session=session, as_of=as_of)
        orders = aq.order_aggregates(session=session, as_of=as_of)
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


def _nullable(values: np.ndarray | None, index: int, digits: int = 4) -> float | None:
    if values is None:
        return None
    value = float(values[index])
    return None if np.isnan(value) else round(value, digits)


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
    table = CustomerSnapshot.__table__
    session.execute(sa.delete(table).where(table.c.as_of == day))
    batch: list[dict] = []
    for i, customer_id in enumerate(ids.tolist()):
        scored = bool(scores.scored[i])
        batch.append(
            {
                "customer_id": customer_id,
                "as_of": day,
                "recency_days": int(rfm.recency_days[i]) if scored else None,
                "frequency": int(rfm.frequency[i]),
                "monetary": round(float(rfm.monetary[i]), 2),
                "tenure_days": int(rfm.tenure_days[i]) if scored else None,
                "r_score": int(scores.r_score[i]) or None,
                "f_score": int(scores.f_score[i]) or None,
                "m_score": int(scores.m_score[i]) or None,
                "segment": str(segments[i]),
                "cluster": clusters[i] or None,
                "satisfaction": _nullable(satisfaction, i, 1),
                "p_alive": _nullable(p_alive, i),
                "expected_purchases_90d": _nullable(expected, i),
                "clv": _nullable(value, i, 2),
                "computed_at": datetime.now().astimezone(),
            }
        )
        if len(batch) >= 20_000:
            session.execute(sa.insert(table), batch)
            batch = []
    if batch:
        session.execute(sa.insert(table), batch)
