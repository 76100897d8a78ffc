"""The one entry point every channel calls: a neutral message in, replies out."""

from __future__ import annotations

import re
from datetime import datetime

from bot.services import staff
from bot.services.commands import COMMANDS, CommandCall, as_customer
from bot.services.context import Services
from bot.services.conversation import handle_customer_message
from bot.services.messages import IncomingMessage, Reply
from bot.services.staff_questions import HELP_TEXT, route
from db.clock import utcnow
from db.engine import session_scope
from db.models import InteractionKind

UNKNOWN_COMMAND = "Sorry, I don't know that command. Send /help to see what I can do."


def handle_message(
    services: Services,
    message: IncomingMessage,
    *,
    now: datetime | None = None,
    enqueue: bool = False,
) -> list[Reply]:
    """Route a message: a command to its handler, a customer's text to the conversation.

    A staff command from someone who is not staff gets exactly the answer an unknown
    command gets, so the refusal reveals nothing. ``enqueue``: a customer's message is
    answered with its replies put in the outbox in the same transaction (see
    :func:`bot.services.conversation.handle_customer_message`).
    """
    now = now or utcnow()
    is_staff = services.is_staff(message.sender.user_id)
    parsed = message.command
    if parsed is not None:
        name, args = parsed
        command = COMMANDS.get(name)
        is_admin = services.is_admin(message.sender.user_id)
        if (
            command is None
            or (command.staff_only and not is_staff)
            or (command.admin_only and not is_admin)
        ):
            if is_staff:
                return [Reply(message.sender.chat_id, UNKNOWN_COMMAND)]
            call = CommandCall(services, message, args, now)
            return as_customer(call, lambda _session, _stored: UNKNOWN_COMMAND)
        return command.handler(CommandCall(services, message, args, now))
    if is_staff:  # staff are not customers; their edits need no answer either
        if message.kind == InteractionKind.EDITED:
            return []
        return staff_text(services, message, now=now)
    return handle_customer_message(services, message, now=now, enqueue=enqueue)


def staff_question(services: Services, message: IncomingMessage, *, now: datetime) -> list[Reply]:
    """A question in plain words ("how many champions do we have") runs the command it
    means, with the same permission checks and audit; anything else gets examples."""
    found = route(message.text)
    command = COMMANDS.get(found.command) if found is not None else None
    if found is None or command is None:
        return [Reply(message.sender.chat_id, HELP_TEXT)]
    if command.admin_only and not services.is_admin(message.sender.user_id):
        return [Reply(message.sender.chat_id, HELP_TEXT)]
    return command.handler(CommandCall(services, message, found.args, now))


# The first line of a handoff card or of a forwarded customer message names the conversation.
CARD_HEAD = re.compile(r"^(?:🙋 Handoff |💬 )#(\d+)\b")


def staff_text(services: Services, message: IncomingMessage, *, now: datetime) -> list[Reply]:
    """Plain text from staff: a reply to a handoff card goes to that customer."""
    chat_id = message.sender.chat_id
    head = CARD_HEAD.match(message.reply_to_text or "")
    if head is None:
        return staff_question(services, message, now=now)
    if not message.text.strip():
        return [Reply(chat_id, "Only text can be passed on to the customer.")]
    conversation_id = int(head.group(1))
    try:
        with session_scope(services.session_factory) as session:
            to_customer = staff.reply_to_customer(
                session,
                conversation_id=conversation_id,
                text=message.text,
                staff_user_id=message.sender.user_id,
                now=now,
            )
    except staff.StaffActionError as exc:
        return [Reply(chat_id, str(exc))]
    return [to_customer, Reply(chat_id, f"✅ Sent to #{conversation_id}.")]
