"""Gamma-Gamma: how much a customer spends per purchase.

Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
analysis", Journal of Marketing Research 42(4); the log-likelihood as in Fader & Hardie's
note "The Gamma-Gamma model of monetary value" (2013). A customer's transaction values are
Gamma(p, ν); across customers ν ~ Gamma(q, v). Only customers with repeat purchases
(x > 0) and their mean repeat-transaction value m_x enter the fit::

    ln L = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln m_x + px ln x
           − (px+q) ln(v + x·m_x)

maximised in log-parameter space with L-BFGS-B and the analytic gradient. The model assumes
spend per purchase does not depend on how often a customer buys; check the correlation of
frequency and monetary value on your data before trusting it.

Expected mean transaction value (for any x ≥ 0; x = 0 gives the population mean p·v/(q−1))::

    E[M | x, m_x] = p·(v + x·m_x) / (p·x + q − 1)        (needs q > 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

FloatArray = npt.NDArray[np.float64]

BOUNDS = [(-12.0, 12.0), (-12.0, 12.0), (-12.0, 18.0)]
"""Bounds of ln p, ln q and ln v during the fit."""


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters; ``converged`` is False when the likelihood is not flat
    or a parameter sits at its bound (see :data:`BOUNDS`)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: int
    converged: bool = True

    @property
    def population_mean(self) -> float:
        """Mean transaction value across customers, p·v/(q−1) (infinite when q ≤ 1)."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else float("inf")


class _Likelihood:
    """The Gamma-Gamma log-likelihood arranged for speed: the special functions depend on x
    alone (computed once per distinct x), sums of ln m_x are constants, and per customer only
    ln(v + x·m_x) is left."""

    def __init__(self, x: FloatArray, m: FloatArray) -> None:
        self.n = float(x.shape[0])
        self.x_values, x_index = np.unique(x, return_inverse=True)
        self.x_count = np.bincount(x_index).astype(np.float64)
        self.x, self.xm = x, x * m
        log_m = np.log(m)
        self.sum_log_m = float(log_m.sum())
        self.sum_x_log_m = float(x @ log_m)
        self.log_x_values = np.log(self.x_values)

    def nll_and_gradient(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = np.exp(log_params)
        xv, cx, log_xv = self.x_values, self.x_count, self.log_x_values
        pxv = p * xv
        log_total = np.log(v + self.xm)
        sum_log_total = log_total.sum()
        sum_x_log_total = self.x @ log_total
        ll = (
            cx @ (gammaln(pxv + q) - gammaln(pxv) + pxv * log_xv)
            + self.n * (q * np.log(v) - gammaln(q))
            + p * self.sum_x_log_m
            - self.sum_log_m
            - p * sum_x_log_total
            - q * sum_log_total
        )
        psi = digamma(pxv + q)
        d_p = cx @ (xv * (psi - digamma(pxv) + log_xv)) + self.sum_x_log_m - sum_x_log_total
        d_q = cx @ psi - self.n * digamma(q) + self.n * np.log(v) - sum_log_total
        d_v = self.n * q / v - ((p * self.x + q) @ (1.0 / (v + self.xm)))
        gradient = np.array([d_p * p, d_q * q, d_v * v])
        return float(-ll / self.n), -gradient / self.n


def fit_gamma_gamma(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters on the customers with x > 0 and m_x > 0.

    ``monetary_value`` is the mean value of each customer's repeat purchases (as built by
    :func:`analytics.clv.summary_from_transactions`). Raises ValueError with fewer than two
    such customers, or when the fitted q ≤ 1 (no finite expected spend: unusable for CLV).
    """
    x, m = _pairs(frequency, monetary_value)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if x.shape[0] < 2:
        raise ValueError("Gamma-Gamma needs at least two customers with repeat purchases")
    start = np.log([1.0, 2.0, float(np.mean(m))])
    result = minimize(
        _Likelihood(x, m).nll_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=BOUNDS,
        options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
    )
    p, q, v = (float(value) for value in np.exp(result.x))
    if q <= 1.0:
        raise ValueError(
            f"Gamma-Gamma fit has q = {q:.3f} <= 1: spend is too heavy-tailed for a finite "
            f"expected value (p = {p:.3f}, v = {v:.3f})"
        )
    return GammaGammaParams(
        p=p,
        q=q,
        v=v,
        log_likelihood=float(-result.fun * x.shape[0]),
        n_customers=x.shape[0],
        converged=_converged(result.jac, result.x),
    )


def _converged(gradient: FloatArray, log_params: FloatArray) -> bool:
    """A flat mean log-likelihood with every parameter inside its bounds."""
    low, high = np.array(BOUNDS).T
    inside = np.all((log_params > low + 1e-6) & (log_params < high - 1e-6))
    return bool(inside and np.max(np.abs(gradient)) < 1e-5)


def _pairs(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary_value must have the same shape")
    if np.any(x < 0) or np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError("frequency and monetary_value must be finite and >= 0")
    return x, m


def expected_average_value(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> FloatArray:
    """Expected mean transaction value per customer (module doc); needs q > 1.

    Customers without repeat purchases (x = 0) get the population mean.
    """
    if params.q <= 1.0:
        raise ValueError(f"the expected value needs q > 1 (fitted q = {params.q:.3f})")
    x, m = _pairs(frequency, monetary_value)
    m = np.where(x > 0, m, 0.0)
    return params.p * (params.v + x * m) / (params.p * x + params.q - 1.0)
