"""Scheduled jobs: plain functions ``(services, scheduled_for) -> JobReport``, recorded in
``job_runs`` so that each scheduled run happens once, even across restarts.

A run is claimed (a unique row per job and scheduled moment), executed, its messages are
delivered by the caller, and then it is marked finished. If the process dies in between,
the run stays "running"; after a while it counts as stale and is run again once. The
window in which a digest could then be sent twice is the moment between Telegram
accepting it and the run being marked, a few milliseconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.services.context import Services
from bot.services.messages import Reply
from bot.services.schedule import Schedule
from db import queries
from db.clock import utcnow
from db.engine import read_scope, session_scope
from db.models import JobStatus

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    """What a run did: counts for the record, and messages for staff."""

    counts: dict[str, float | int | str] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)


@dataclass(frozen=True)
class JobSpec:
    name: str
    description: str
    run: Callable[[Services, datetime], JobReport]


@dataclass(frozen=True)
class JobOutcome:
    name: str
    scheduled_for: datetime
    status: str  # "skipped" (ran before), "succeeded" or "failed"
    report: JobReport | None = None
    error: str | None = None
    seconds: float = 0.0


def _refresh(services: Services, scheduled_for: datetime) -> JobReport:
    from bot.services.refresh import run_refresh

    result = run_refresh(services, as_of=scheduled_for)
    return JobReport(counts=result.counts())


def _digest(period: str) -> Callable[[Services, datetime], JobReport]:
    def run(services: Services, scheduled_for: datetime) -> JobReport:
        from bot.services.digest import build_digest, digest_replies

        with read_scope(services.session_factory) as session:
            digest = build_digest(services, session, period=period, until=scheduled_for)
        replies = digest_replies(digest, services.staff_destinations())
        return JobReport(counts=digest.counts(), replies=replies)

    return run


def _backup(services: Services, scheduled_for: datetime) -> JobReport:
    from db import backup

    if services.backup_dir is None or not services.database_url:
        raise RuntimeError("no backup folder or database URL configured")
    name = backup.scheduled_name(services.database_url, scheduled_for)
    result = backup.backup(services.database_url, services.backup_dir / name)
    pruned = backup.prune(services.backup_dir, keep=services.backup_keep)
    return JobReport(
        counts={"file": result.path.name, "bytes": result.bytes, "pruned": len(pruned)}
    )


def _retention(services: Services, scheduled_for: datetime) -> JobReport:
    from bot.services.retention import mask_old_texts

    with session_scope(services.session_factory) as session:
        result = mask_old_texts(session, months=services.retention_months, now=scheduled_for)
    return JobReport(counts=result.counts())


def _offers(services: Services, scheduled_for: datetime) -> JobReport:
    """Plan today's proactive offers; the bot's sender sends them, paced (an outbox)."""
    from bot.services.offers import run_campaigns

    with session_scope(services.session_factory) as session:
        run = run_campaigns(
            session,
            scheduled_for,
            catalogue=services.offer_catalogue,
            cap=services.offer_cap,
            tz=services.tz,
            shop_name=services.shop_name,
        )
    return JobReport(counts=dict(run.counts()))


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in [
        JobSpec(
            "analytics_refresh", "RFM, segments, clusters, satisfaction, churn risk, CLV", _refresh
        ),
        JobSpec("daily_digest", "yesterday's digest to the staff chat", _digest("day")),
        JobSpec("weekly_digest", "last week's digest to the staff chat", _digest("week")),
        JobSpec("nightly_backup", "a consistent database backup, oldest pruned", _backup),
        JobSpec("retention", "mask message texts older than the retention period", _retention),
        JobSpec("offer_campaigns", "plan personalized offers (sent by the running bot)", _offers),
    ]
}


def claim(services: Services, name: str, *, scheduled_for: datetime, now: datetime) -> int | None:
    """Claim a run; the id of the job_runs row, or None if it was done before."""
    with session_scope(services.session_factory) as session:
        run = queries.claim_job_run(
            session=session, job=name, scheduled_for=scheduled_for, now=now
        )
        return run.id if run is not None else None


def finish(
    services: Services, run_id: int, *, report: JobReport | None, error: str | None, seconds: float
) -> None:
    detail = {"seconds": round(seconds, 3), **(report.counts if report else {})}
    if error:
        detail["error"] = error
    with session_scope(services.session_factory) as session:
        queries.finish_job_run(
            session=session,
            run_id=run_id,
            status=JobStatus.FAILED if error else JobStatus.SUCCEEDED,
            detail=json.dumps(detail, default=str),
            now=utcnow(),
        )


def execute(services: Services, name: str, *, scheduled_for: datetime) -> JobReport:
    return JOBS[name].run(services, scheduled_for)


def run_job(
    services: Services,
    name: str,
    *,
    scheduled_for: datetime,
    deliver: Callable[[list[Reply]], None] | None = None,
    now: datetime | None = None,
) -> JobOutcome:
    """Claim, execute, deliver and record one run (the synchronous path, e.g. the CLI)."""
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}; known: {', '.join(JOBS)}")
    run_id = claim(services, name, scheduled_for=scheduled_for, now=now or utcnow())
    if run_id is None:
        return JobOutcome(name, scheduled_for, "skipped")
    started = time.perf_counter()
    try:
        report = execute(services, name, scheduled_for=scheduled_for)
        if deliver is not None and report.replies:
            deliver(report.replies)
    except Exception as exc:  # recorded, and the scheduler keeps going
        log.exception("job %s for %s failed", name, scheduled_for.isoformat())
        error = f"{type(exc).__name__}: {exc}"
        finish(services, run_id, report=None, error=error, seconds=time.perf_counter() - started)
        return JobOutcome(name, scheduled_for, "failed", error=error)
    seconds = time.perf_counter() - started
    finish(services, run_id, report=report, error=None, seconds=seconds)
    return JobOutcome(name, scheduled_for, "succeeded", report=report, seconds=seconds)


def missed_runs(
    schedules: dict[str, Schedule], *, services: Services, now: datetime, grace: timedelta
) -> list[tuple[str, datetime]]:
    """Scheduled moments within ``grace`` before ``now`` that have no finished run yet."""
    due = []
    with session_scope(services.session_factory) as session:
        for name, schedule in schedules.items():
            moment = schedule.last_due(now, services.tz)
            if now - moment > grace:
                continue
            if not queries.job_run_done(session=session, job=name, scheduled_for=moment):
                due.append((name, moment))
    return due
