"""The python-telegram-bot ``Application``: handlers that parse an update, call one service
and send its replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlmodel import Session
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    Update,
)
from telegram.error import NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    ContextTypes,
    ExtBot,
    Job,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.services.assistant import handle_message
from bot.services.buttons import handle_callback
from bot.services.commands import COMMANDS
from bot.services.context import Services
from bot.services.messages import IncomingCallback, Reply, Sender
from bot.settings import Settings
from bot.telegram.chat_order import ChatOrderProcessor
from bot.telegram.convert import to_incoming, update_kind
from bot.telegram.delivery import RESEND_INTERVAL_SECONDS, deliver, resend_due
from bot.telegram.scheduling import schedule_jobs
from db import queries
from db.group_commit import while_unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# Updates of different chats handled at the same time (a chat's own stay in order).
CONCURRENT_UPDATES = 32
# Connections to the Bot API. Few on purpose: httpcore's pool does work per connection on
# every request (about 15 % less CPU per message with 8 than with 40, benchmarks/load.py), and
# 8 connections still carry 80 calls/s at a 100 ms round trip, far above Telegram's limit
# of 30 messages/s per bot. A call that finds them all busy waits for one, up to
# POOL_WAIT_SECONDS (PTB's default of 1 s would fail replies of a busy moment needlessly).
BOT_API_CONNECTIONS = 8
POOL_WAIT_SECONDS = 30.0

GROUP_HINT = "I help customers in private chats. Please message me directly."


class CrmContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Callback context with typed access to the services."""

    @property
    def services(self) -> Services:
        return self.application.bot_data["services"]  # type: ignore[no-any-return]


# --- every update: stored raw first, redeliveries stopped --------------------------------


async def record_update(services: Services, update: Update) -> bool:
    """Store the raw update; False if it was stored before (a redelivery).

    While the database is unreachable (PostgreSQL restarting, say) this waits and tries
    again, for up to :data:`~db.group_commit.DB_WAIT_SECONDS`: the update is held, not lost.
    Updates arriving together are stored in one transaction
    (:class:`db.group_commit.GroupCommit`)."""
    kind, payload = update_kind(update), update.to_dict()

    def write(session: Session) -> bool:
        return queries.record_inbound_update(
            session=session, update_id=update.update_id, kind=kind, payload=payload
        )

    return await services.writes.run_waiting(write, what=f"update {update.update_id}")


async def mark_update(services: Services, update_id: int, error: str | None = None) -> None:
    """Record that the update was handled (with the error's name if it failed)."""
    await services.writes.run_waiting(
        lambda session: queries.mark_update_processed(
            session=session, update_id=update_id, error=error
        ),
        what=f"update {update_id}",
    )


async def store_update(update: Update, context: CrmContext) -> None:
    if not await record_update(context.services, update):
        log.info("update %s was delivered before; skipped", update.update_id)
        raise ApplicationHandlerStop


async def mark_processed(update: Update, context: CrmContext) -> None:
    await mark_update(context.services, update.update_id)


# --- handlers ----------------------------------------------------------------------------


async def _waiting(update: Update, handle: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``handle(*args, **kwargs)`` in a worker thread; while the database is unreachable the
    update waits and is handled again (see :func:`~db.group_commit.while_unavailable`)."""
    return await while_unavailable(
        lambda: asyncio.to_thread(handle, *args, **kwargs), what=f"update {update.update_id}"
    )


async def send_replies(context: CrmContext, replies: list[Reply]) -> None:
    """Send replies in order through the outbox (stored first, retried, marked once)."""
    await deliver(context.bot, context.services, replies)


async def resend_outbox(context: CrmContext) -> None:
    """Every few seconds: replies still pending (failed rounds, or left by a restart)."""
    sent = await resend_due(context.bot, context.services)
    if sent:
        log.info("outbox: %s pending replies sent", sent)


async def on_message(update: Update, context: CrmContext) -> None:
    """Text, commands, media, captions and edits in a private chat."""
    message = to_incoming(update)
    if message is None:
        return
    slow = message.command is not None and context.services.is_staff(message.sender.user_id)
    if slow and update.effective_chat is not None:  # staff reports can take a second or two
        try:  # only a courtesy: a blocked chat or a hiccup must not stop the answer
            await context.bot.send_chat_action(update.effective_chat.id, "typing")
        except TelegramError as exc:
            log.info("no typing indicator for chat %s: %s", update.effective_chat.id, exc)
    # Answered with its replies put in the outbox in one transaction; if the database goes
    # away meanwhile, the update waits and is handled again: answered, or its stored replies
    # resumed (see handle_customer_message).
    replies = await _waiting(update, handle_message, context.services, message, enqueue=True)
    await send_replies(context, replies)


async def on_group_message(update: Update, context: CrmContext) -> None:
    """Groups: staff commands work (e.g. in the staff chat); everything else stays quiet,
    except a command, which gets a hint to write privately."""
    message = to_incoming(update)
    if message is None or message.kind == "edited":
        return
    if message.command is None and message.reply_to_text is None:
        return  # staff chat talk; a reply to a card is an answer to the customer
    if context.services.is_staff(message.sender.user_id):  # waits out an outage, as above
        replies = await _waiting(update, handle_message, context.services, message)
        await send_replies(context, replies)
    elif update.effective_message is not None and message.command is not None:
        await update.effective_message.reply_text(GROUP_HINT)


async def on_callback(update: Update, context: CrmContext) -> None:
    """A button press: authorised and handled by the core; the button gets its answer."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    chat_id = query.message.chat.id if query.message is not None else user.id
    callback = IncomingCallback(
        sender=Sender(
            user_id=user.id,
            chat_id=chat_id,
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
        ),
        data=query.data or "",
        message_id=query.message.message_id if query.message is not None else None,
        update_id=update.update_id,
    )
    # As for messages: a press caught by an unreachable database waits and is handled again.
    notice, replies = await _waiting(
        update, handle_callback, context.services, callback, enqueue=True
    )
    await query.answer(notice)
    await send_replies(context, replies)


async def on_error(update: object, context: CrmContext) -> None:
    """Log the error (no message text), mark the update, and keep the bot running."""
    update_id = update.update_id if isinstance(update, Update) else None
    if update_id is None and isinstance(context.error, NetworkError):
        # polling met a timeout or a 5xx: python-telegram-bot tries again by itself
        log.warning("Telegram not reachable for now (%s); retrying", context.error)
        return
    log.error(
        "error while handling update %s: %s",
        update_id,
        type(context.error).__name__,
        exc_info=context.error,
    )
    if update_id is not None:
        try:
            await mark_update(context.services, update_id, type(context.error).__name__)
        except Exception:
            log.warning("could not mark update %s as failed", update_id)


# --- commands menu -----------------------------------------------------------------------


async def register_commands(application: Application) -> None:  # type: ignore[type-arg]
    """Publish the command menus: customer commands for everyone, all commands for staff."""
    services: Services = application.bot_data["services"]
    customer = [BotCommand(c.name, c.description) for c in COMMANDS.values() if not c.staff_only]
    staff = [BotCommand(c.name, c.description) for c in COMMANDS.values() if not c.admin_only]
    admin = [BotCommand(c.name, c.description) for c in COMMANDS.values()]
    await application.bot.set_my_commands(customer, scope=BotCommandScopeDefault())
    for user_id in services.all_staff():
        menu = admin if services.is_admin(user_id) else staff
        try:
            await application.bot.set_my_commands(menu, scope=BotCommandScopeChat(user_id))
        except TelegramError as exc:  # staff who never opened the bot have no chat yet
            log.warning("no staff command menu for user %s: %s", user_id, exc.message)


def build_application(
    settings: Settings, services: Services, *, worker: bool = False
) -> Application:  # type: ignore[type-arg]
    """The bot's Application. ``worker=True`` builds it for a `crmbot serve` worker: no
    updater (updates come from the ASGI app, :mod:`bot.telegram.asgi`, which also stores
    them first and marks them processed: see :mod:`bot.telegram.ordering`), and no jobs
    (only the worker that leads the scheduler adds them, :func:`add_jobs`)."""
    builder = (
        ApplicationBuilder()
        .token(settings.token())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        .context_types(ContextTypes(context=CrmContext))
        .connection_pool_size(BOT_API_CONNECTIONS)
        .pool_timeout(POOL_WAIT_SECONDS)
        # Replies are not held back by a fixed overall rate: a 429 from Telegram pauses every
        # request for its retry_after (and the outbox retries). Proactive offers are paced by
        # their own sender (1/s per chat, 25/s overall); groups keep PTB's per-group limit.
        .rate_limiter(AIORateLimiter(overall_max_rate=0, max_retries=3))
    )
    if worker:  # a worker's updates come over HTTP, in chat order (bot.telegram.ordering)
        builder = builder.updater(None)
    else:  # the worker leading the scheduler publishes the menus
        builder = builder.post_init(register_commands).concurrent_updates(
            ChatOrderProcessor(CONCURRENT_UPDATES)
        )
    application = builder.build()
    application.bot_data["services"] = services
    private = filters.ChatType.PRIVATE
    application.add_handler(MessageHandler(private, on_message), group=0)
    application.add_handler(MessageHandler(filters.ChatType.GROUPS, on_group_message), group=0)
    application.add_handler(CallbackQueryHandler(on_callback), group=0)
    application.add_error_handler(on_error)
    if not worker:  # a worker stores and marks updates itself, in chat order
        application.add_handler(TypeHandler(Update, store_update), group=-1)
        application.add_handler(TypeHandler(Update, mark_processed), group=1)
        add_jobs(application, settings, services)
    return application


def add_jobs(
    application: Application,  # type: ignore[type-arg]
    settings: Settings,
    services: Services,
) -> list[Job[Any]]:
    """Schedule every job (the schedule, catch-up, reminders, queued offers, the outbox
    resend loop); returns them, so that a worker losing the scheduler lead can remove them."""
    grace = timedelta(hours=settings.misfire_grace_hours)
    jobs = schedule_jobs(application, services, grace=grace)
    assert application.job_queue is not None
    jobs.append(
        application.job_queue.run_repeating(
            resend_outbox, interval=RESEND_INTERVAL_SECONDS, first=1, name="outbox"
        )
    )
    return jobs
