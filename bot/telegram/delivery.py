"""Sending replies to Telegram through the outbox (:mod:`bot.services.outbox`).

Every reply is stored first, then sent step by step (a photo, each part of a long text, a
file, or an edit). A step that meets a flood limit (429) waits ``retry_after`` and tries
again; a 5xx answer or a timeout is tried again after a short pause; after a few tries the
reply stays in the outbox and :func:`resend_due` (every few seconds, and after a restart)
takes it up again. A chat that blocked the bot, or a request Telegram refuses, is marked
failed at once. Texts go out as plain text (no parse mode), so Markdown or HTML a customer
wrote is shown as written, never interpreted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlmodel import Session
from telegram import InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.services import outbox
from bot.services.context import Services
from bot.services.messages import Reply, split_text
from bot.telegram.convert import keyboard
from db.clock import utcnow

if TYPE_CHECKING:
    from telegram import Bot

log = logging.getLogger(__name__)
T = TypeVar("T")

# Tries of one step before the reply goes back to the outbox for a later round.
TRIES = 4
PAUSES = (0.5, 1.0, 2.0)
RESEND_INTERVAL_SECONDS = 5

Step = Callable[[], Awaitable[Any]]


class Permanent(Exception):
    """Telegram refused for good (blocked, or a bad request): no point in retrying."""


def steps(bot: Bot, reply: Reply) -> list[Step]:
    """The Bot API calls that make up one reply, in order."""
    calls: list[Step] = []
    if reply.photo is not None:
        photo = reply.photo
        calls.append(lambda: bot.send_photo(reply.chat_id, photo=photo, caption=reply.caption))
    if reply.edit_message_id is not None:
        message_id = reply.edit_message_id

        async def edit() -> Any:
            try:
                return await bot.edit_message_text(
                    split_text(reply.text)[0],
                    chat_id=reply.chat_id,
                    message_id=message_id,
                    reply_markup=keyboard(reply.buttons),
                )
            except BadRequest as exc:  # "message is not modified": pressed twice
                log.info("edit of message %s skipped: %s", message_id, exc.message)
                return None

        return [*calls, edit]
    parts = split_text(reply.text) if reply.text else []
    for index, part in enumerate(parts):
        markup = keyboard(reply.buttons) if index == len(parts) - 1 else None
        calls.append(_send_text(bot, reply.chat_id, part, markup))
    if reply.document is not None:
        document = InputFile(reply.document, filename=reply.filename or "data.json")
        calls.append(lambda: bot.send_document(reply.chat_id, document=document))
    return calls


def _send_text(bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> Step:
    return lambda: bot.send_message(chat_id, text, reply_markup=markup)


async def _attempt(step: Step) -> Any:
    """One step with its quick retries; raises the last error if they all fail."""
    for attempt in range(TRIES):
        try:
            return await step()
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
            if attempt == TRIES - 1:
                raise
            await asyncio.sleep(seconds)
        except (Forbidden, BadRequest) as exc:
            raise Permanent(str(exc)) from exc
        except (TimedOut, NetworkError):
            if attempt == TRIES - 1:
                raise
            await asyncio.sleep(PAUSES[min(attempt, len(PAUSES) - 1)])
    raise AssertionError("unreachable")


async def send_outgoing(bot: Bot, services: Services, item: outbox.Outgoing) -> bool:
    """Send one stored reply from where it stopped; True once it is all sent."""
    calls = steps(bot, item.reply)
    done = item.steps_done
    first_message_id: int | None = None
    try:
        for index in range(done, len(calls)):
            result = await _attempt(calls[index])
            done = index + 1
            if index == 0:
                first_message_id = getattr(result, "message_id", None)
            if done < len(calls):
                await _report(services, outbox.progress, item, steps_done=done)
    except Permanent as exc:
        log.warning("reply %s to chat %s refused: %s", item.outbox_id, item.reply.chat_id, exc)
        await _report(services, outbox.failed, item, error=str(exc))
        return False
    except (TimedOut, NetworkError, RetryAfter) as exc:
        log.warning(
            "reply %s to chat %s not sent yet: %s", item.outbox_id, item.reply.chat_id, exc
        )
        error = f"{type(exc).__name__}: {exc}"
        await _write(
            services,
            lambda session: outbox.retry_later(session, item.outbox_id, error=error, now=utcnow()),
        )
        return False
    await _report(
        services,
        outbox.sent,
        item,
        now=utcnow(),
        interaction_id=item.reply.interaction_id,
        message_id=first_message_id,
    )
    return True


async def deliver(bot: Bot, services: Services, replies: list[Reply]) -> None:
    """Store the replies in the outbox (those not stored with their answer already), then
    send them in order."""
    if not replies:
        return
    if all(reply.leased for reply in replies):  # stored with the answer: send them as they are
        items = [outbox.Outgoing(reply.outbox_id or 0, reply) for reply in replies]
    else:
        items = await _write(services, lambda session: _stored(session, replies))
    for item in items:
        await send_outgoing(bot, services, item)


def _stored(session: Session, replies: list[Reply]) -> list[outbox.Outgoing]:
    """The replies as outbox rows, in order: new ones stored, those stored before taken (a
    stored reply sent meanwhile by the resend loop is left out); leased ones as they are."""
    now = utcnow()
    new = [reply for reply in replies if reply.outbox_id is None]
    fresh = {item.outbox_id: item for item in outbox.enqueue(session, new, now=now)}
    fresh.update(
        (r.outbox_id, outbox.Outgoing(r.outbox_id, r))
        for r in replies
        if r.leased and r.outbox_id and r.outbox_id not in fresh
    )
    earlier = [r.outbox_id for r in replies if r.outbox_id and r.outbox_id not in fresh]
    taken = {item.outbox_id: item for item in outbox.take(session, earlier, now=now)}
    found = (fresh.get(r.outbox_id or 0) or taken.get(r.outbox_id or 0) for r in replies)
    return [item for item in found if item is not None]


async def _write(services: Services, write: Callable[[Session], T]) -> T:
    """A bookkeeping write, batched with others and waiting while the database is away."""
    return await services.writes.run_waiting(write, what="the outbox")


async def resend_due(bot: Bot, services: Services) -> int:
    """Send what is still pending in the outbox (failed rounds, or left by a restart)."""
    items = await _write(services, lambda session: outbox.due(session, now=utcnow()))
    sent = 0
    for item in items:
        sent += await send_outgoing(bot, services, item)
    return sent


async def _report(
    services: Services, action: Callable[..., None], item: outbox.Outgoing, **kw: Any
) -> None:
    await _write(services, lambda session: action(session, item.outbox_id, **kw))
