"""`crmbot analytics`, `crmbot jobs` and `crmbot digest`: the scheduled work, by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import console, fail, get_settings

analytics_app = typer.Typer(
    help="Analytics: refresh scores and segments, fit CLV models.", no_args_is_help=True
)
jobs_app = typer.Typer(
    help="Scheduled jobs: list them and their runs, run one now.", no_args_is_help=True
)


def _services():  # type: ignore[no-untyped-def]
    from bot.wiring import build_services

    return build_services(get_settings())


def _as_of(value: str | None, services) -> datetime:  # type: ignore[no-untyped-def]
    """A date means the end of that day (local time); no value means now."""
    if value is None:
        return datetime.now(UTC)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise fail(f"--as-of must be a date like 2026-11-30, not {value!r}") from None
    return datetime.combine(day, time(23, 59, 59), services.tz).astimezone(UTC)


@analytics_app.command("run")
def analytics_run(
    as_of: Annotated[
        str | None, typer.Option(help="Date to compute as of (YYYY-MM-DD); default: now.")
    ] = None,
) -> None:
    """Recompute RFM, segments, clusters, satisfaction, churn risk and CLV, and store a
    snapshot."""
    from bot.services.refresh import run_refresh

    services = _services()
    moment = _as_of(as_of, services)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("refresh", total=None)

        def step(name: str, done: int, total: int) -> None:
            progress.update(task, description=name, completed=done, total=total)

        result = run_refresh(services, as_of=moment, progress=step)
    table = Table(title=f"Analytics refresh as of {moment:%Y-%m-%d %H:%M} UTC")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.counts().items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    if result.segments:
        seg = Table(title="Segments")
        seg.add_column("segment")
        seg.add_column("customers", justify="right")
        for name, n in result.segments.items():
            seg.add_row(name, f"{n:,}")
        console.print(seg)


@analytics_app.command("clv")
def analytics_clv(
    calibration_end: Annotated[
        str, typer.Option(help="Last day of the calibration period (YYYY-MM-DD).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Fit BG/NBD and Gamma-Gamma on the customers in the database and print the parameters."""
    from bot.services.refresh import fit_clv_models

    services = _services()
    try:
        day = date.fromisoformat(calibration_end)
    except ValueError:
        raise fail(
            f"--calibration-end must be a date like 1997-09-30, not {calibration_end!r}"
        ) from None
    fitted = fit_clv_models(services, calibration_end=day)
    if fitted is None:
        raise fail("not enough purchase history before that date to fit the models", code=1)
    if as_json:
        typer.echo(json.dumps(fitted.as_dict()))
        return
    table = Table(title=f"CLV models, calibration up to {day}")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for key, value in fitted.as_dict().items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


@jobs_app.command("list")
def jobs_list() -> None:
    """The scheduled jobs, when they run next, and the latest runs."""
    from bot.services.jobs import JOBS
    from db import queries
    from db.engine import session_scope

    services = _services()
    now = datetime.now(UTC)
    table = Table(title=f"Scheduled jobs ({services.tz.key})")
    for column in ("job", "what", "schedule", "next run"):
        table.add_column(column)
    for name, spec in JOBS.items():
        schedule = services.schedules[name]
        table.add_row(
            name,
            spec.description,
            schedule.describe(),
            f"{schedule.next_due(now, services.tz).astimezone(services.tz):%a %d %b %H:%M}",
        )
    console.print(table)
    runs = Table(title="Latest runs")
    for column in ("job", "scheduled for", "status", "started", "finished", "detail"):
        runs.add_column(column)
    with session_scope(services.session_factory) as session:
        for run in queries.recent_job_runs(session=session, limit=15):
            runs.add_row(
                run.job,
                f"{run.scheduled_for:%Y-%m-%d %H:%M}",
                run.status,
                f"{run.started_at:%Y-%m-%d %H:%M:%S}",
                f"{run.finished_at:%H:%M:%S}" if run.finished_at else "",
                (run.detail or "")[:80],
            )
    console.print(runs)


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="The job to run (see `crmbot jobs list`).")],
) -> None:
    """Run a job now (recorded like a scheduled run; digests are written to the console)."""
    from bot.services.jobs import JOBS, run_job
    from bot.services.messages import Reply

    if name not in JOBS:
        raise fail(f"unknown job {name!r}; known: {', '.join(JOBS)}")
    services = _services()

    def show(replies: list[Reply]) -> None:  # one copy of what staff would receive
        if replies:
            console.print(replies[0].text, markup=False)

    outcome = run_job(
        services, name, scheduled_for=datetime.now(UTC).replace(microsecond=0), deliver=show
    )
    if outcome.status == "failed":
        raise fail(f"{name} failed: {outcome.error}", code=1)
    counts = outcome.report.counts if outcome.report else {}
    console.print(
        f"{name}: {outcome.status} in {outcome.seconds:.1f} s " + json.dumps(counts, default=str)
    )


def digest_command(
    period: Annotated[
        str,
        typer.Option(
            help="day, week, month (the last complete one), or today, thisweek, thismonth "
            "(so far)."
        ),
    ] = "day",
    out: Annotated[Path, typer.Option(help="Folder for digest.txt and digest.png.")] = Path("."),
) -> None:
    """Write the latest digest (text and chart) to a folder."""
    from bot.services.digest import DIGEST_PERIODS, build_digest
    from db.engine import session_scope

    if period not in DIGEST_PERIODS:
        raise fail(f"--period must be one of {', '.join(DIGEST_PERIODS)}, not {period!r}")
    services = _services()
    with session_scope(services.session_factory) as session:
        digest = build_digest(services, session, period=period, until=datetime.now(UTC))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"digest-{period}.txt").write_text(digest.text + "\n", encoding="utf-8")
    (out / f"digest-{period}.png").write_bytes(digest.chart_png)
    console.print(digest.text, markup=False)
    console.print(f"\nSaved {out / f'digest-{period}.txt'} and {out / f'digest-{period}.png'}")
