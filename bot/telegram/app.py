"""The python-telegram-bot ``Application``: handlers that parse an update, call one service
and send its replies."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InputFile,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.services.assistant import handle_message
from bot.services.buttons import handle_callback
from bot.services.commands import COMMANDS
from bot.services.context import Services
from bot.services.messages import IncomingCallback, Reply, Sender, split_text
from bot.settings import Settings
from bot.telegram.convert import keyboard, to_incoming, update_kind
from bot.telegram.scheduling import schedule_jobs
from db import queries
from db.engine import session_scope

log = logging.getLogger(__name__)

GROUP_HINT = "I help customers in private chats. Please message me directly."


class CrmContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Callback context with typed access to the services."""

    @property
    def services(self) -> Services:
        return self.application.bot_data["services"]  # type: ignore[no-any-return]


# --- every update: stored raw first, redeliveries stopped --------------------------------


def _store_update(services: Services, update: Update) -> bool:
    with session_scope(services.session_factory) as session:
        return queries.record_inbound_update(
            session=session,
            update_id=update.update_id,
            kind=update_kind(update),
            payload=update.to_dict(),
        )


def _mark_processed(services: Services, update_id: int, error: str | None = None) -> None:
    with session_scope(services.session_factory) as session:
        queries.mark_update_processed(session=session, update_id=update_id, error=error)


async def store_update(update: Update, context: CrmContext) -> None:
    if not await asyncio.to_thread(_store_update, context.services, update):
        log.info("update %s was delivered before; skipped", update.update_id)
        raise ApplicationHandlerStop


async def mark_processed(update: Update, context: CrmContext) -> None:
    await asyncio.to_thread(_mark_processed, context.services, update.update_id)


# --- handlers ----------------------------------------------------------------------------


async def send_replies(context: CrmContext, replies: list[Reply]) -> None:
    """Send replies in order, splitting long ones; remember the Telegram message ids."""
    for reply in replies:
        if reply.photo is not None:
            try:
                await context.bot.send_photo(
                    reply.chat_id, photo=reply.photo, caption=reply.caption
                )
            except Forbidden:
                log.warning("chat %s blocked the bot or never started it", reply.chat_id)
                continue
        if reply.edit_message_id is not None:
            await _edit(context, reply)
            continue
        if reply.document is not None:
            await _send_with_document(context, reply)
            continue
        parts = split_text(reply.text)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                sent = await context.bot.send_message(
                    reply.chat_id, part, reply_markup=keyboard(reply.buttons) if last else None
                )
            except Forbidden:
                log.warning("chat %s blocked the bot or never started it", reply.chat_id)
                break
            if reply.interaction_id is not None and index == 0:
                await asyncio.to_thread(
                    _record_message_id, context.services, reply.interaction_id, sent.message_id
                )


async def _send_with_document(context: CrmContext, reply: Reply) -> None:
    """The text, then the file (e.g. /mydata's JSON)."""
    assert reply.document is not None
    try:
        await context.bot.send_message(reply.chat_id, split_text(reply.text)[0])
        await context.bot.send_document(
            reply.chat_id,
            document=InputFile(reply.document, filename=reply.filename or "data.json"),
        )
    except Forbidden:
        log.warning("chat %s blocked the bot or never started it", reply.chat_id)


async def _edit(context: CrmContext, reply: Reply) -> None:
    try:
        await context.bot.edit_message_text(
            split_text(reply.text)[0],
            chat_id=reply.chat_id,
            message_id=reply.edit_message_id,
            reply_markup=keyboard(reply.buttons),
        )
    except BadRequest as exc:  # "message is not modified" when a page is pressed twice
        log.info("edit of message %s skipped: %s", reply.edit_message_id, exc.message)


def _record_message_id(services: Services, interaction_id: int, message_id: int) -> None:
    with session_scope(services.session_factory) as session:
        queries.set_interaction_message_id(
            session=session, interaction_id=interaction_id, telegram_message_id=message_id
        )


async def on_message(update: Update, context: CrmContext) -> None:
    """Text, commands, media, captions and edits in a private chat."""
    message = to_incoming(update)
    if message is None:
        return
    if update.effective_chat is not None and message.kind != "edited":
        await context.bot.send_chat_action(update.effective_chat.id, "typing")
    replies = await asyncio.to_thread(handle_message, context.services, message)
    await send_replies(context, replies)


async def on_group_message(update: Update, context: CrmContext) -> None:
    """Groups: staff commands work (e.g. in the staff chat); everything else stays quiet,
    except a command, which gets a hint to write privately."""
    message = to_incoming(update)
    if message is None or message.kind == "edited":
        return
    if message.command is None and message.reply_to_text is None:
        return  # staff chat talk; a reply to a card is an answer to the customer
    if context.services.is_staff(message.sender.user_id):
        replies = await asyncio.to_thread(handle_message, context.services, message)
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
    notice, replies = await asyncio.to_thread(handle_callback, context.services, callback)
    await query.answer(notice)
    await send_replies(context, replies)


async def on_error(update: object, context: CrmContext) -> None:
    """Log the error (no message text), mark the update, and keep the bot running."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error(
        "error while handling update %s: %s",
        update_id,
        type(context.error).__name__,
        exc_info=context.error,
    )
    if update_id is not None:
        try:
            await asyncio.to_thread(
                _mark_processed, context.services, update_id, type(context.error).__name__
            )
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


def build_application(settings: Settings, services: Services) -> Application:  # type: ignore[type-arg]
    application = (
        ApplicationBuilder()
        .token(settings.token())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        .context_types(ContextTypes(context=CrmContext))
        .rate_limiter(AIORateLimiter(max_retries=3))
        .post_init(register_commands)
        .build()
    )
    application.bot_data["services"] = services
    private = filters.ChatType.PRIVATE
    application.add_handler(TypeHandler(Update, store_update), group=-1)
    application.add_handler(MessageHandler(private, on_message), group=0)
    application.add_handler(MessageHandler(filters.ChatType.GROUPS, on_group_message), group=0)
    application.add_handler(CallbackQueryHandler(on_callback), group=0)
    application.add_handler(TypeHandler(Update, mark_processed), group=1)
    application.add_error_handler(on_error)
    schedule_jobs(application, services, grace=timedelta(hours=settings.misfire_grace_hours))
    return application
