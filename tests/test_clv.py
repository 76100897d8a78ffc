"""BG/NBD and Gamma-Gamma: the published CDNOW parameters, the holdout forecast, simulated
customers with known parameters, and small hand-checked cases. The CDNOW tests read
``../shared/data`` (or ``$CRMBOT_SHARED_DATA``) and are skipped when it is missing."""

from __future__ import annotations

import os
import warnings
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy.special import hyp2f1

from analytics.bgnbd import (
    BGNBDParams,
    expected_purchases_new_customer,
    fit_bgnbd,
    log_likelihood,
)
from analytics.clv import (
    GammaGammaParams,
    customer_lifetime_value,
    expected_average_value,
    expected_purchases,
    fit_gamma_gamma,
    holdout_check,
    p_alive,
    predict_customers,
    summary_from_transactions,
)

SHARED_DATA = Path(
    os.environ.get("CRMBOT_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)
CDNOW = SHARED_DATA / "cdnow"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
CDNOW_PARAMS = BGNBDParams(0.2426, 4.4136, 0.7929, 2.4258, log_likelihood=0.0, n_customers=0)


def _cdnow_file(name: str) -> Path:
    path = CDNOW / name
    if not path.exists():
        pytest.skip(f"CDNOW data not found at {path}; set CRMBOT_SHARED_DATA to the data dir")
    return path


@pytest.fixture(scope="module")
def cdnow_summary_csv() -> dict[str, np.ndarray]:
    data = np.genfromtxt(_cdnow_file("cdnow_customers_summary.csv"), delimiter=",", names=True)
    return {name: data[name] for name in data.dtype.names or ()}


@pytest.fixture(scope="module")
def cdnow_sample():
    """The raw 1/10 sample as a calibration (39 weeks) + holdout (39 weeks) summary."""
    raw = np.loadtxt(_cdnow_file("CDNOW_sample.txt"), dtype=str)
    days = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in raw[:, 2]], dtype="datetime64[D]")
    return summary_from_transactions(
        raw[:, 1].astype(np.int64),
        days,
        calibration_end=date(1997, 9, 30),
        observation_end=date(1998, 6, 30),
        values=raw[:, 4].astype(float),
    )


# --- CDNOW validation ---------------------------------------------------------------------------


def test_bgnbd_on_the_cdnow_summary_matches_the_published_parameters_within_1_percent(
    cdnow_summary_csv,
):
    params = fit_bgnbd(
        cdnow_summary_csv["frequency"], cdnow_summary_csv["recency"], cdnow_summary_csv["T"]
    )
    for name, published in PUBLISHED_BGNBD.items():
        assert getattr(params, name) == pytest.approx(published, rel=0.01), name
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.1)  # the paper's value
    assert params.n_customers == 2357 and params.converged


def test_the_summary_built_from_raw_cdnow_transactions_equals_the_published_summary(
    cdnow_sample, cdnow_summary_csv
):
    assert cdnow_sample.customer_ids.tolist() == cdnow_summary_csv["ID"].astype(int).tolist()
    assert cdnow_sample.frequency.tolist() == cdnow_summary_csv["frequency"].astype(int).tolist()
    assert np.abs(cdnow_sample.recency - cdnow_summary_csv["recency"]).max() < 0.005
    assert np.abs(cdnow_sample.T - cdnow_summary_csv["T"]).max() < 0.005


def test_bgnbd_from_raw_cdnow_transactions_is_within_5_percent(cdnow_sample):
    params = fit_bgnbd(cdnow_sample.frequency, cdnow_sample.recency, cdnow_sample.T)
    for name, published in PUBLISHED_BGNBD.items():
        assert getattr(params, name) == pytest.approx(published, rel=0.05), name


def test_gamma_gamma_on_cdnow_matches_the_published_parameters(cdnow_sample):
    params = fit_gamma_gamma(cdnow_sample.frequency, cdnow_sample.monetary_value)
    assert params.n_customers == 946  # customers with repeat purchases in the calibration
    assert params.converged
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert getattr(params, name) == pytest.approx(published, rel=0.01), name


def test_the_holdout_forecast_on_cdnow(cdnow_sample):
    """Weeks 40–78: CDNOW customers bought 1,882 times (purchase days); the model, fitted on
    weeks 1–39 only, forecasts about 1,653 (−12 %). Per calibration frequency the forecast
    rises with the frequency as the actuals do."""
    params = fit_bgnbd(cdnow_sample.frequency, cdnow_sample.recency, cdnow_sample.T)
    check = holdout_check(params, cdnow_sample)
    assert check.customers == 2357 and check.actual_total == 1882
    assert check.predicted_total == pytest.approx(check.actual_total, rel=0.15)
    assert [b.label for b in check.buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    predicted = [b.predicted_mean for b in check.buckets]
    assert predicted == sorted(predicted)
    for bucket in check.buckets:
        assert bucket.predicted_mean == pytest.approx(bucket.actual_mean, abs=0.4), bucket.label
    assert check.mean_absolute_error < 1.0


# --- simulated customers with known parameters --------------------------------------------------


def simulate(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    seed: int,
    calibration: float = 39.0,
    holdout: float = 39.0,
    joining: float = 12.0,
):
    """BG/NBD customers: a first purchase at 0, then Poisson(λ) purchases, dropping out with
    probability p after each repeat purchase; they join during the first ``joining`` weeks.
    Returns (x, t_x, T, holdout purchases, alive at T)."""
    rng = np.random.default_rng(seed)
    rate, dropout = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    big_t = rng.uniform(calibration - joining, calibration, n)
    x, t_x = np.zeros(n, dtype=np.int64), np.zeros(n)
    later, alive = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    now, active = np.zeros(n), np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1 / rate[idx])
        in_cal = now[idx] <= big_t[idx]
        in_hold = ~in_cal & (now[idx] <= big_t[idx] + holdout)
        x[idx[in_cal]] += 1
        t_x[idx[in_cal]] = now[idx[in_cal]]
        later[idx[in_hold]] += 1
        bought = in_cal | in_hold
        dies = bought & (rng.random(idx.size) < dropout[idx])
        alive[idx[dies & in_cal]] = False
        active[idx[~bought | dies]] = False
    return x, t_x, big_t, later, alive


@pytest.fixture(scope="module")
def simulated():
    return simulate(20_000, 0.5, 4.0, 0.8, 2.5, seed=1)


def test_the_fit_recovers_known_parameters_from_simulated_customers(simulated):
    x, t_x, big_t, _, _ = simulated
    params = fit_bgnbd(x, t_x, big_t)
    for name, true in {"r": 0.5, "alpha": 4.0, "a": 0.8, "b": 2.5}.items():
        assert getattr(params, name) == pytest.approx(true, rel=0.15), name
    assert params.log_likelihood == pytest.approx(log_likelihood(params, x, t_x, big_t))


def test_expectations_and_p_alive_agree_with_what_simulated_customers_did(simulated):
    x, t_x, big_t, later, alive = simulated
    true = BGNBDParams(0.5, 4.0, 0.8, 2.5, log_likelihood=0.0, n_customers=0)
    assert expected_purchases(true, 39.0, x, t_x, big_t).sum() == pytest.approx(
        later.sum(), rel=0.03
    )
    assert p_alive(true, x, t_x, big_t).sum() == pytest.approx(alive.sum(), rel=0.03)


# --- small cases ---------------------------------------------------------------------------------


def test_recency_a_hair_above_t_from_sql_rounding_is_accepted():
    assert p_alive(CDNOW_PARAMS, [2], [10.0 + 1e-9], [10.0])[0] == pytest.approx(
        p_alive(CDNOW_PARAMS, [2], [10.0], [10.0])[0]
    )


def test_a_customer_without_repeat_purchases_is_alive_for_sure():
    assert p_alive(CDNOW_PARAMS, [0, 0], [0.0, 0.0], [5.0, 300.0]).tolist() == [1.0, 1.0]


def test_p_alive_falls_the_longer_a_repeat_buyer_stays_away():
    alive = p_alive(CDNOW_PARAMS, np.full(4, 3), np.full(4, 10.0), [10.0, 20.0, 30.0, 60.0])
    assert alive[0] > alive[1] > alive[2] > alive[3] > 0
    assert alive[0] < 1.0


def test_expected_purchases_grow_with_frequency_and_horizon_and_start_at_zero():
    frequency = np.arange(0, 30)
    recency = np.where(frequency > 0, 30.0, 0.0)
    expected = expected_purchases(CDNOW_PARAMS, 10.0, frequency, recency, np.full(30, 30.0))
    assert np.all(np.diff(expected) > 0)
    assert expected_purchases(CDNOW_PARAMS, 0.0, [5], [20.0], [30.0])[0] == pytest.approx(0.0)
    horizons = [expected_purchases(CDNOW_PARAMS, t, [2], [15.0], [30.0])[0] for t in (1, 5, 50)]
    assert horizons == sorted(horizons)


def test_the_transformed_expectation_equals_the_paper_formula():
    r, alpha, a, b = 0.2426, 4.4136, 0.7929, 2.4258
    x = np.array([0.0, 1, 2, 5, 10])
    t_x, big_t, t = np.array([0.0, 5, 20, 30, 35]), np.full(5, 38.0), 39.0
    z = t / (alpha + big_t + t)
    power = ((alpha + big_t) / (alpha + big_t + t)) ** (r + x)
    bracket = 1 - power * hyp2f1(r + x, b + x, a + b + x - 1, z)
    odds = (x > 0) * a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    paper = (a + b + x - 1) / (a - 1) * bracket / (1 + odds)
    ours = expected_purchases(CDNOW_PARAMS, t, x, t_x, big_t)
    assert np.allclose(ours, paper, rtol=1e-9)


def test_a_brand_new_customer_expects_the_unconditional_number_of_purchases():
    new = expected_purchases(CDNOW_PARAMS, 52.0, [0], [0.0], [0.0])[0]
    assert new == pytest.approx(expected_purchases_new_customer(CDNOW_PARAMS, 52.0))


def test_a_equal_to_one_is_handled():
    params = BGNBDParams(0.5, 4.0, 1.0, 2.0, log_likelihood=0.0, n_customers=0)
    nearby = BGNBDParams(0.5, 4.0, 1.001, 2.0, log_likelihood=0.0, n_customers=0)
    at_one = expected_purchases(params, 10.0, [2], [5.0], [10.0])[0]
    assert np.isfinite(at_one)
    assert at_one == pytest.approx(
        expected_purchases(nearby, 10.0, [2], [5.0], [10.0])[0], rel=1e-3
    )


def test_huge_a_and_b_fall_back_to_the_fixed_dropout_limit():
    """Where ₂F₁ overflows (a, b in the thousands) the forecast stays finite and continuous."""
    frequency, recency, T = [0, 1, 5, 20], [0.0, 30.0, 30.0, 30.0], [40.0] * 4
    huge = BGNBDParams(0.3, 4.4, 6760.0, 93240.0, log_likelihood=0.0, n_customers=0)
    large = BGNBDParams(0.3, 4.4, 676.0, 9324.0, log_likelihood=0.0, n_customers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fallback = expected_purchases(huge, 13.0, frequency, recency, T)
    exact = expected_purchases(large, 13.0, frequency, recency, T)
    assert np.all(np.isfinite(fallback))
    assert fallback == pytest.approx(exact, rel=0.01)


def test_fitting_in_days_gives_the_same_model_as_in_weeks(cdnow_summary_csv):
    weeks = fit_bgnbd(
        cdnow_summary_csv["frequency"], cdnow_summary_csv["recency"], cdnow_summary_csv["T"]
    )
    days = fit_bgnbd(
        cdnow_summary_csv["frequency"],
        cdnow_summary_csv["recency"] * 7,
        cdnow_summary_csv["T"] * 7,
        freq_days=1.0,
    )
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-3)
    for name in ("r", "a", "b"):
        assert getattr(days, name) == pytest.approx(getattr(weeks, name), rel=1e-3)


@pytest.mark.parametrize(
    ("frequency", "recency", "T"),
    [
        ([0, 0, 0], [0, 0, 0], [5, 6, 7]),
        ([1], [1.0], [2.0]),
        ([1], [3.0], [2.0]),
        ([-1], [0], [1]),
    ],
)
def test_fits_without_enough_information_or_with_bad_rows_are_refused(frequency, recency, T):
    with pytest.raises(ValueError):
        fit_bgnbd(frequency, recency, T)


def test_a_fit_without_evidence_of_dropout_says_it_did_not_converge():
    """Four customers who all bought again just now: the parameters run to their bounds."""
    params = fit_bgnbd([1, 1, 1, 1], [10.0] * 4, [10.0] * 4)
    assert not params.converged


def test_summary_conventions_by_hand():
    ids = [7, 7, 7, 7, 3, 3, 9, 7]
    when = [
        "2024-01-01",
        "2024-01-01",
        "2024-01-15",
        "2024-02-12",
        "2024-01-29",
        "2024-03-04",
        "2024-03-01",
        "2024-03-20",
    ]
    values = [10.0, 5.0, 20.0, 40.0, 8.0, 12.0, 99.0, 1.0]
    summary = summary_from_transactions(
        ids,
        np.array(when, dtype="datetime64[D]"),
        values=values,
        calibration_end=date(2024, 2, 26),
        observation_end=datetime(2024, 3, 25, 18, 0),
    )
    assert summary.customer_ids.tolist() == [3, 7]  # 9 first bought after the calibration
    assert summary.frequency.tolist() == [0, 2]  # two purchases on 1 Jan are one
    assert summary.recency.tolist() == [0.0, 6.0]  # 1 Jan → 12 Feb: 6 weeks
    assert summary.T.tolist() == [4.0, 8.0]
    assert summary.monetary_value.tolist() == [0.0, 30.0]  # mean of the repeat purchases
    assert summary.holdout_frequency is not None
    assert summary.holdout_frequency.tolist() == [1, 1]
    assert summary.holdout_duration == 4.0
    in_days = summary_from_transactions(
        ids, np.array(when, dtype="datetime64[D]"), calibration_end="2024-02-26", freq_days=1
    )
    assert in_days.T.tolist() == [28.0, 56.0] and in_days.holdout_frequency is None
    empty = summary_from_transactions(
        [], np.array([], dtype="datetime64[D]"), calibration_end="2024-01-01"
    )
    assert len(empty) == 0


def test_gamma_gamma_refuses_spend_too_heavy_tailed_for_a_finite_mean():
    rng = np.random.default_rng(4)
    frequency = rng.integers(1, 4, 3000)
    heavy = (rng.pareto(0.5, 3000) + 1) * 10  # infinite-mean spend per customer
    with pytest.raises(ValueError, match="q ="):
        fit_gamma_gamma(frequency, heavy)


def test_a_gamma_gamma_fit_at_its_bounds_says_it_did_not_converge():
    rng = np.random.default_rng(4)
    spend = (rng.pareto(0.8, 3000) + 1) * 10
    assert not fit_gamma_gamma(rng.integers(1, 4, 3000), spend).converged


def test_gamma_gamma_shrinks_each_customer_towards_the_population_mean():
    params = GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=0.0, n_customers=0)
    population = params.p * params.v / (params.q - 1)
    values = expected_average_value(params, [0, 1, 10, 100], [0.0, 100.0, 100.0, 100.0])
    assert values[0] == pytest.approx(population)
    assert population < values[1] < values[2] < values[3] < 100.0
    with pytest.raises(ValueError):
        expected_average_value(GammaGammaParams(1, 0.9, 1, 0, 0), [1], [10.0])


def test_clv_is_expected_purchases_times_expected_value_without_discounting():
    gg = GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=0.0, n_customers=0)
    args = (CDNOW_PARAMS, gg, [0, 2, 8], [0.0, 20.0, 35.0], [38.0, 38.0, 38.0], [0.0, 30, 50])
    value = predict_customers(*args, horizon_days=91.0)
    weeks = expected_purchases(CDNOW_PARAMS, 13.0, *args[2:5])
    assert np.allclose(value.expected_purchases, weeks)
    assert np.allclose(value.clv, weeks * value.expected_average_value)
    assert np.allclose(value.churn_risk, 1 - value.p_alive)
    discounted = customer_lifetime_value(*args, horizon_days=91.0, annual_discount_rate=0.2)
    assert np.all(discounted < value.clv) and np.all(discounted > 0.9 * value.clv)
    longer = customer_lifetime_value(*args, horizon_days=365.0)
    assert np.all(longer > value.clv)
    assert np.all(customer_lifetime_value(*args, horizon_days=0.0) == 0.0)
