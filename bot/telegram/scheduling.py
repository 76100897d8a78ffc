"""Scheduled jobs on python-telegram-bot's JobQueue (APScheduler 3 underneath).

JobQueue keeps no jobs across restarts; what makes the schedule restart-safe is the
``job_runs`` table (see :mod:`bot.services.jobs`): each run is claimed once, and at start
every run missed within the grace time is caught up once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram.error import Forbidden, TelegramError
from telegram.ext import Application, Job

from bot.services import jobs, surveys
from bot.services.context import Services
from bot.services.messages import Reply
from bot.services.offers import OfferSend, send_planned
from bot.services.offers.campaign import queued_sends
from db.clock import utcnow
from db.engine import session_scope

if TYPE_CHECKING:
    from bot.telegram.app import CrmContext

log = logging.getLogger(__name__)
CATCH_UP_DELAY_SECONDS = 5
REMINDER_INTERVAL_SECONDS = 60
OFFER_INTERVAL_SECONDS = 30
# A planned offer not sent within a day is stale (its moment has passed): left unsent.
OFFER_MAX_AGE = timedelta(days=1)


async def run_scheduled(context: CrmContext, name: str, scheduled_for: Any) -> None:
    """Claim, execute, send and record one run; the bot keeps going if it fails."""
    services = context.services
    run_id = await asyncio.to_thread(
        jobs.claim, services, name, scheduled_for=scheduled_for, now=utcnow()
    )
    if run_id is None:
        log.info("job %s for %s ran before; skipped", name, scheduled_for.isoformat())
        return
    started = time.perf_counter()
    try:
        report = await asyncio.to_thread(jobs.execute, services, name, scheduled_for=scheduled_for)
        from bot.telegram.app import send_replies

        await send_replies(context, report.replies)
    except Exception as exc:
        log.exception("job %s for %s failed", name, scheduled_for.isoformat())
        await asyncio.to_thread(
            jobs.finish,
            services,
            run_id,
            report=None,
            error=f"{type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - started,
        )
        return
    await asyncio.to_thread(
        jobs.finish,
        services,
        run_id,
        report=report,
        error=None,
        seconds=time.perf_counter() - started,
    )
    log.info("job %s for %s done", name, scheduled_for.isoformat())


async def on_schedule(context: CrmContext) -> None:
    assert context.job is not None
    name = str(context.job.data)
    scheduled_for = context.services.schedules[name].last_due(utcnow(), context.services.tz)
    await run_scheduled(context, name, scheduled_for)


def catch_up(grace: timedelta) -> Any:
    async def run(context: CrmContext) -> None:
        missed = await asyncio.to_thread(
            jobs.missed_runs,
            context.services.schedules,
            services=context.services,
            now=utcnow(),
            grace=grace,
        )
        for name, scheduled_for in missed:
            log.info("catching up %s for %s", name, scheduled_for.isoformat())
            await run_scheduled(context, name, scheduled_for)

    return run


async def send_survey_reminders(context: CrmContext) -> None:
    """Every minute: one reminder for each CSAT question left unanswered too long."""
    replies = await asyncio.to_thread(surveys.reminders_due, context.services, now=utcnow())
    if replies:
        from bot.telegram.app import send_replies

        await send_replies(context, replies)


async def send_queued_offers(context: CrmContext) -> None:
    """Every half minute: send planned, unsent offers (the outbox), paced to Telegram's
    limits; each is checked just before and marked sent just after."""
    services = context.services
    sends = await asyncio.to_thread(_queued_offers, services)
    if not sends:
        return

    async def send_message(reply: Reply) -> bool:
        try:
            await context.bot.send_message(reply.chat_id, reply.text)
        except Forbidden:
            log.info("chat %s blocked the bot; offer not sent", reply.chat_id)
            return False
        except TelegramError as exc:  # tried again on the next round
            log.warning("offer to chat %s not sent: %s", reply.chat_id, exc)
            return False
        return True

    sent = await send_planned(services.session_factory, sends, send_message)
    log.info("offers sent: %s of %s queued", sent, len(sends))


def _queued_offers(services: Services) -> list[OfferSend]:
    with session_scope(services.session_factory) as session:
        return queued_sends(session, utcnow(), max_age=OFFER_MAX_AGE)


def schedule_jobs(
    application: Application,  # type: ignore[type-arg]
    services: Services,
    *,
    grace: timedelta,
) -> list[Job[Any]]:
    """Register every job at its local time, and one catch-up shortly after start; returns
    the jobs (a `crmbot serve` worker that loses the scheduler lead removes them)."""
    queue = application.job_queue
    if queue is None:
        raise RuntimeError("python-telegram-bot was installed without the job-queue extra")
    jobs: list[Job[Any]] = []
    for name, schedule in services.schedules.items():
        at = schedule.at.replace(tzinfo=services.tz)
        # PTB counts days 0-6 from Sunday; Schedule counts from Monday.
        days = (0, 1, 2, 3, 4, 5, 6) if schedule.weekday is None else ((schedule.weekday + 1) % 7,)
        jobs.append(
            queue.run_daily(
                on_schedule,
                time=at,
                days=days,
                name=name,
                data=name,
                job_kwargs={"misfire_grace_time": int(grace.total_seconds()) or None},
            )
        )
        log.info("scheduled %s %s (%s)", name, schedule.describe(), services.tz.key)
    jobs.append(queue.run_once(catch_up(grace), when=CATCH_UP_DELAY_SECONDS, name="catch_up"))
    jobs.append(
        queue.run_repeating(
            send_survey_reminders,
            interval=REMINDER_INTERVAL_SECONDS,
            first=REMINDER_INTERVAL_SECONDS,
        )
    )
    jobs.append(
        queue.run_repeating(
            send_queued_offers, interval=OFFER_INTERVAL_SECONDS, first=CATCH_UP_DELAY_SECONDS * 2
        )
    )
    return jobs
