"""Customer lifetime value: BG/NBD for purchase counts, Gamma-Gamma for spend per purchase.

The models are in :mod:`analytics.bgnbd` and :mod:`analytics.gamma_gamma` (re-exported here).
This module turns transactions into the per-customer summary the models need, combines the
two models into a CLV over a horizon, and checks the purchase forecast on a holdout period.

**Summary conventions** (as in Fader, Hardie & Lee and the ``lifetimes`` package):
purchases on the same day are one purchase (their values are added); ``frequency`` is the
number of *repeat* purchase days; ``recency`` is the time from the first to the last purchase
and ``T`` from the first purchase to the end of the calibration period, both in units of
``freq_days`` days (weeks by default); ``monetary_value`` is the mean value of the repeat
purchases (0 without repeat purchases), as Gamma-Gamma expects. Customers whose first
purchase is after the calibration end are not in the summary.

**CLV** over ``horizon_days`` (default 90), in steps of ``step_days`` (30)::

    CLV = E[value per purchase] · Σ_k (E[purchases by t_k] − E[purchases by t_{k−1}]) · d_k
    d_k = (1 + annual_discount_rate) ^ −(t_k / 365.25)

with E[purchases by t] the BG/NBD conditional expectation and E[value per purchase] the
Gamma-Gamma expectation. Churn risk is 1 − P(alive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from analytics.bgnbd import (
    BGNBDParams,
    distinct_rows,
    expected_purchases,
    expected_purchases_rows,
    fit_bgnbd,
    p_alive,
    p_alive_rows,
)
from analytics.gamma_gamma import GammaGammaParams, expected_average_value, fit_gamma_gamma

__all__ = [
    "BGNBDParams",
    "CustomerValue",
    "GammaGammaParams",
    "HoldoutBucket",
    "HoldoutCheck",
    "Summary",
    "customer_lifetime_value",
    "expected_average_value",
    "expected_purchases",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "holdout_check",
    "p_alive",
    "predict_customers",
    "summary_from_transactions",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DayLike = date | datetime | np.datetime64 | str


# --- from transactions to the summary -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Summary:
    """One row per customer (sorted by id); times in units of ``freq_days`` days.

    ``holdout_frequency`` (purchase days after the calibration end, up to the observation end)
    and ``holdout_duration`` are None without an ``observation_end``.
    """

    customer_ids: npt.NDArray[np.generic]
    frequency: IntArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray
    holdout_frequency: IntArray | None
    holdout_duration: float | None
    freq_days: float

    def __len__(self) -> int:
        return int(self.customer_ids.shape[0])


def _day_number(value: DayLike) -> int:
    """Days since 1970-01-01 of a date, a datetime (its own date), a datetime64 or a string."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[D]").astype(np.int64))
    return int(np.datetime64(value, "D").astype(np.int64))


def summary_from_transactions(
    customer_ids: npt.ArrayLike,
    timestamps: npt.ArrayLike,
    *,
    calibration_end: DayLike,
    observation_end: DayLike | None = None,
    freq_days: float = 7.0,
    values: npt.ArrayLike | None = None,
) -> Summary:
    """The per-customer BG/NBD and Gamma-Gamma inputs from a list of transactions.

    ``timestamps`` are dates or naive datetimes in the business time zone (only the day is
    used); ``calibration_end`` and ``observation_end`` are inclusive days. ``values`` are the
    transaction amounts (zeros when not given).
    """
    ids = np.asarray(customer_ids)
    days = np.asarray(timestamps).astype("datetime64[D]").astype(np.int64)
    amounts = np.zeros(ids.shape[0]) if values is None else np.asarray(values, dtype=np.float64)
    if not ids.shape == days.shape == amounts.shape or ids.ndim != 1:
        raise ValueError("customer_ids, timestamps and values must be 1-D and aligned")
    if freq_days <= 0:
        raise ValueError("freq_days must be > 0")
    cal = _day_number(calibration_end)
    obs = None if observation_end is None else _day_number(observation_end)
    if obs is not None and obs < cal:
        raise ValueError("observation_end must not be before calibration_end")
    keep = days <= (cal if obs is None else obs)
    unique_ids, code = np.unique(ids[keep], return_inverse=True)
    code, day, amount = _purchase_days(code.reshape(-1), days[keep], amounts[keep])
    in_cal = day <= cal
    customers, first_index = np.unique(code[in_cal], return_index=True)
    counts = np.bincount(code[in_cal], minlength=unique_ids.shape[0])[customers]
    last_index = first_index + counts - 1
    cal_day, cal_amount = day[in_cal], amount[in_cal]
    totals = np.bincount(code[in_cal], weights=cal_amount, minlength=unique_ids.shape[0])
    frequency = (counts - 1).astype(np.int64)
    repeat_spend = totals[customers] - cal_amount[first_index]
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(frequency > 0, repeat_spend / frequency, 0.0)
    holdout = None
    if obs is not None:
        after = np.bincount(code[~in_cal], minlength=unique_ids.shape[0])
        holdout = after[customers].astype(np.int64)
    return Summary(
        customer_ids=unique_ids[customers],
        frequency=frequency,
        recency=(cal_day[last_index] - cal_day[first_index]) / freq_days,
        T=(cal - cal_day[first_index]) / freq_days,
        monetary_value=monetary,
        holdout_frequency=holdout,
        holdout_duration=None if obs is None else (obs - cal) / freq_days,
        freq_days=freq_days,
    )


def _purchase_days(
    code: IntArray, day: IntArray, amount: FloatArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Distinct (customer, day) pairs sorted by customer then day, with the day's total."""
    order = np.lexsort((day, code))
    code, day, amount = code[order], day[order], amount[order]
    if code.shape[0] == 0:
        return code, day, amount
    starts = np.ones(code.shape[0], dtype=bool)
    starts[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    first = np.flatnonzero(starts)
    return code[first], day[first], np.add.reduceat(amount, first)


# --- CLV ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CustomerValue:
    """Per customer predictions over one horizon (aligned with the input arrays)."""

    p_alive: FloatArray
    churn_risk: FloatArray
    expected_purchases: FloatArray
    expected_average_value: FloatArray
    clv: FloatArray
    horizon_days: float


def predict_customers(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    horizon_days: float = 90.0,
    annual_discount_rate: float = 0.0,
    step_days: float = 30.0,
) -> CustomerValue:
    """P(alive), churn risk, expected purchases, value per purchase and CLV for the horizon.

    Times are in the unit of ``bgnbd.freq_days``; see the module doc for the CLV formula.
    """
    if horizon_days < 0 or step_days <= 0 or annual_discount_rate <= -1:
        raise ValueError("need horizon_days >= 0, step_days > 0, annual_discount_rate > -1")
    rows = distinct_rows(frequency, recency, T)
    value = expected_average_value(gamma_gamma, frequency, monetary_value)
    alive = p_alive_rows(bgnbd, rows)
    steps = _step_ends(horizon_days, step_days)
    discounted = np.zeros(rows.x.shape[0])
    previous = np.zeros(rows.x.shape[0])
    for end in steps:
        cumulative = expected_purchases_rows(bgnbd, end / bgnbd.freq_days, rows)
        discounted += (cumulative - previous) * (1.0 + annual_discount_rate) ** (-end / 365.25)
        previous = cumulative
    return CustomerValue(
        p_alive=alive[rows.inverse],
        churn_risk=1.0 - alive[rows.inverse],
        expected_purchases=previous[rows.inverse],
        expected_average_value=value,
        clv=value * discounted[rows.inverse],
        horizon_days=horizon_days,
    )


def _step_ends(horizon_days: float, step_days: float) -> list[float]:
    ends = list(np.arange(step_days, horizon_days, step_days))
    return [float(end) for end in ends] + ([float(horizon_days)] if horizon_days > 0 else [])


def customer_lifetime_value(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    *,
    horizon_days: float = 90.0,
    annual_discount_rate: float = 0.0,
    step_days: float = 30.0,
) -> FloatArray:
    """Expected (discounted) spend per customer over the next ``horizon_days``."""
    return predict_customers(
        bgnbd,
        gamma_gamma,
        frequency,
        recency,
        T,
        monetary_value,
        horizon_days=horizon_days,
        annual_discount_rate=annual_discount_rate,
        step_days=step_days,
    ).clv


# --- holdout check -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldoutBucket:
    """Customers with one calibration frequency (the last bucket: that many or more)."""

    label: str
    customers: int
    actual_mean: float
    predicted_mean: float
    mean_absolute_error: float


@dataclass(frozen=True, slots=True)
class HoldoutCheck:
    """Predicted vs actual repeat purchases in the holdout period."""

    customers: int
    actual_total: int
    predicted_total: float
    mean_absolute_error: float
    buckets: list[HoldoutBucket]


def holdout_check(params: BGNBDParams, summary: Summary, *, top_bucket: int = 7) -> HoldoutCheck:
    """Compare the forecast for the holdout period with what customers actually bought."""
    if summary.holdout_frequency is None or summary.holdout_duration is None:
        raise ValueError("the summary has no holdout period (no observation_end)")
    predicted = expected_purchases(
        params, summary.holdout_duration, summary.frequency, summary.recency, summary.T
    )
    actual = summary.holdout_frequency.astype(np.float64)
    bucket = np.minimum(summary.frequency, top_bucket)
    buckets = []
    for value in range(top_bucket + 1):
        members = bucket == value
        if not members.any():
            continue
        buckets.append(
            HoldoutBucket(
                label=f"{value}+" if value == top_bucket else str(value),
                customers=int(members.sum()),
                actual_mean=float(actual[members].mean()),
                predicted_mean=float(predicted[members].mean()),
                mean_absolute_error=float(np.abs(actual[members] - predicted[members]).mean()),
            )
        )
    return HoldoutCheck(
        customers=len(summary),
        actual_total=int(actual.sum()),
        predicted_total=float(predicted.sum()),
        mean_absolute_error=float(np.abs(actual - predicted).mean()) if len(summary) else 0.0,
        buckets=buckets,
    )
