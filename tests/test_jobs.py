"""Scheduled jobs run once per scheduled moment, are recorded, retried when they failed,
and missed runs are caught up once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlmodel import select

from bot.services import jobs
from bot.services.jobs import JobReport, JobSpec, run_job
from bot.services.schedule import Schedule
from db.engine import session_scope
from db.models import JobRun


@pytest.fixture
def counting_job(monkeypatch):
    calls = []

    def run(services, scheduled_for):
        calls.append(scheduled_for)
        if getattr(run, "fail", False):
            raise RuntimeError("boom")
        return JobReport(counts={"rows": 3})

    monkeypatch.setitem(jobs.JOBS, "test_job", JobSpec("test_job", "a test job", run))
    return run, calls


def runs(services):
    with session_scope(services.session_factory) as session:
        return list(session.exec(select(JobRun)).all())


def test_a_scheduled_moment_runs_once(services, counting_job):
    _, calls = counting_job
    moment = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    first = run_job(services, "test_job", scheduled_for=moment)
    second = run_job(services, "test_job", scheduled_for=moment)
    assert (first.status, second.status) == ("succeeded", "skipped")
    assert calls == [moment]
    (row,) = runs(services)
    assert row.status == "succeeded" and row.finished_at is not None
    assert json.loads(row.detail)["rows"] == 3


def test_a_failed_run_is_recorded_and_retried(services, counting_job):
    run, calls = counting_job
    moment = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    run.fail = True
    outcome = run_job(services, "test_job", scheduled_for=moment)
    assert outcome.status == "failed" and "boom" in outcome.error
    assert "boom" in runs(services)[0].detail
    run.fail = False
    assert run_job(services, "test_job", scheduled_for=moment).status == "succeeded"
    assert len(calls) == 2 and len(runs(services)) == 1


def test_a_run_left_running_by_a_dead_process_is_retried_when_stale(services, counting_job):
    _, calls = counting_job
    moment = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    now = datetime(2026, 11, 29, 8, 1, tzinfo=UTC)
    assert jobs.claim(services, "test_job", scheduled_for=moment, now=now) is not None
    # the process dies here; a restart soon after must not run it again ...
    soon = now + timedelta(minutes=5)
    assert run_job(services, "test_job", scheduled_for=moment, now=soon).status == "skipped"
    # ... but once the claim is stale, it runs once more
    later = now + timedelta(minutes=30)
    assert run_job(services, "test_job", scheduled_for=moment, now=later).status == "succeeded"
    assert calls == [moment]


def test_missed_runs_within_grace_are_found_once(services, counting_job):
    schedules = {"test_job": Schedule(time(8, 0))}
    now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    missed = jobs.missed_runs(schedules, services=services, now=now, grace=timedelta(hours=2))
    assert missed == [("test_job", datetime(2026, 11, 29, 8, 0, tzinfo=UTC))]
    run_job(services, "test_job", scheduled_for=missed[0][1])
    assert jobs.missed_runs(schedules, services=services, now=now, grace=timedelta(hours=2)) == []
    too_late = now + timedelta(hours=3)
    assert (
        jobs.missed_runs(schedules, services=services, now=too_late, grace=timedelta(hours=2))
        == []
    )


def test_unknown_job_is_an_error(services):
    with pytest.raises(KeyError, match="unknown job"):
        run_job(services, "nope", scheduled_for=datetime.now(UTC))
