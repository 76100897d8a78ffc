"""The analytics commands as an operator runs them, and the CLV check on raw CDNOW data
imported into the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from bot.services.clv import fit_clv_models
from db.imports import ImportOptions, import_orders
from tests.helpers import crmbot

SHARED = Path(os.environ.get("CRMBOT_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data"))
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture
def cdnow_sample() -> Path:
    path = SHARED / "cdnow" / "CDNOW_sample.txt"
    if not path.exists():
        pytest.skip(f"{path} not found (set CRMBOT_SHARED_DATA to the datasets folder)")
    return path


@pytest.mark.slow
def test_bgnbd_from_raw_cdnow_in_the_database_is_within_5_percent(services, cdnow_sample):
    report = import_orders(
        session_factory=services.session_factory,
        path=cdnow_sample,
        options=ImportOptions(format="cdnow"),
    )
    assert report.committed and report.customers_created == 2357
    fitted = fit_clv_models(services, calibration_end=date(1997, 9, 30))
    assert fitted is not None and fitted.customers == 2357
    for name, published in PUBLISHED.items():
        assert getattr(fitted.bgnbd, name) == pytest.approx(published, rel=0.05), name
    assert fitted.gamma_gamma is not None and fitted.gamma_gamma.q > 1


@pytest.mark.slow
def test_analytics_cli_run_clv_jobs_and_digest(cli_env, tmp_path, cdnow_sample):
    imported = crmbot("import", "orders", str(cdnow_sample), "--format", "cdnow", env=cli_env)
    assert imported.returncode == 0, imported.stderr
    clv = crmbot("analytics", "clv", "--calibration-end", "1997-09-30", "--json", env=cli_env)
    assert clv.returncode == 0, clv.stderr
    params = json.loads(clv.stdout)
    assert {"r", "alpha", "a", "b", "p", "q", "v"} <= set(params)
    assert params["r"] == pytest.approx(0.243, rel=0.05)

    run = crmbot("analytics", "run", "--as-of", "1998-06-30", env=cli_env)
    assert run.returncode == 0, run.stderr
    assert "2357" in run.stdout.replace(",", "") and "Champions" in run.stdout

    listing = crmbot("jobs", "list", env=cli_env)
    assert "daily_digest" in listing.stdout and "weekly_digest" in listing.stdout
    job = crmbot("jobs", "run", "daily_digest", env=cli_env)
    assert job.returncode == 0 and "succeeded" in job.stdout
    assert "job_runs" not in job.stderr
    again = crmbot("jobs", "list", env=cli_env)
    assert "succeeded" in again.stdout

    out = tmp_path / "digest"
    digest = crmbot("digest", "--period", "week", "--out", str(out), env=cli_env)
    assert digest.returncode == 0, digest.stderr
    assert (out / "digest-week.png").read_bytes().startswith(b"\x89PNG")
    assert "Weekly digest" in (out / "digest-week.txt").read_text()


def test_bad_dates_are_explained(cli_env):
    result = crmbot("analytics", "run", "--as-of", "yesterday", env=cli_env)
    assert result.returncode == 2 and "--as-of must be a date" in result.stderr
    result = crmbot("jobs", "run", "nope", env=cli_env)
    assert result.returncode == 2 and "unknown job" in result.stderr
