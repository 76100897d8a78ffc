"""Churn risk and lifetime value for the refresh and the CLI: BG/NBD and Gamma-Gamma fitted
on purchase summaries aggregated in the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from analytics.bgnbd import BGNBDParams, fit_bgnbd
from analytics.clv import CustomerValue, predict_customers
from analytics.gamma_gamma import GammaGammaParams, fit_gamma_gamma
from bot.services.context import Services
from db import analytics_queries as aq
from db.engine import session_scope

log = logging.getLogger(__name__)
WEEK_DAYS = 7.0
HORIZON_DAYS = 90.0


@dataclass(frozen=True)
class FittedModels:
    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams | None
    customers: int

    def as_dict(self) -> dict[str, float | int | None]:
        gg = self.gamma_gamma
        return {
            "r": self.bgnbd.r,
            "alpha": self.bgnbd.alpha,
            "a": self.bgnbd.a,
            "b": self.bgnbd.b,
            "p": gg.p if gg else None,
            "q": gg.q if gg else None,
            "v": gg.v if gg else None,
            "customers": self.customers,
            "time_unit_days": WEEK_DAYS,
        }


def fit_clv_models(
    services: Services,
    *,
    summary: aq.PurchaseSummary | None = None,
    calibration_end: date | None = None,
) -> FittedModels | None:
    """Fit both models (time unit: weeks); None when the history is too thin to fit."""
    if summary is None:
        if calibration_end is None:
            raise ValueError("give a purchase summary or a calibration end date")
        with session_scope(services.session_factory) as session:
            summary = aq.purchase_summary(session=session, calibration_end=calibration_end)
    try:
        bgnbd = fit_bgnbd(
            summary.frequency,
            summary.recency_days / WEEK_DAYS,
            summary.age_days / WEEK_DAYS,
            freq_days=WEEK_DAYS,
        )
    except ValueError as exc:
        log.info("BG/NBD not fitted: %s", exc)
        return None
    try:
        gamma_gamma: GammaGammaParams | None = fit_gamma_gamma(
            summary.frequency, summary.repeat_value
        )
    except ValueError as exc:
        log.info("Gamma-Gamma not fitted: %s", exc)
        gamma_gamma = None
    return FittedModels(bgnbd, gamma_gamma, len(summary.customer_ids))


def predict_clv(models: FittedModels, summary: aq.PurchaseSummary) -> CustomerValue | None:
    """P(alive), expected purchases and value over the next 90 days, per summary row."""
    if models.gamma_gamma is None:
        return None
    return predict_customers(
        models.bgnbd,
        models.gamma_gamma,
        summary.frequency,
        summary.recency_days / WEEK_DAYS,
        summary.age_days / WEEK_DAYS,
        summary.repeat_value,
        horizon_days=HORIZON_DAYS,
    )
