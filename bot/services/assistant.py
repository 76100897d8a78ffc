"""The one entry point every channel calls: a neutral message in, replies out."""

from __future__ import annotations

from datetime import datetime

from analytics.segments import ALL_SEGMENTS
from bot.services.commands import COMMANDS, CommandCall, as_customer, audited_segment_page
from bot.services.context import Services
from bot.services.conversation import handle_customer_message
from bot.services.messages import IncomingCallback, IncomingMessage, Reply
from db.clock import utcnow
from db.engine import session_scope
from db.models import InteractionKind

UNKNOWN_COMMAND = "Sorry, I don't know that command. Send /help to see what I can do."
STAFF_TEXT = (
    "You're on the staff list, so I don't treat your messages as a customer's. "
    "Send /help for the staff commands."
)


def handle_message(
    services: Services, message: IncomingMessage, *, now: datetime | None = None
) -> list[Reply]:
    """Route a message: a command to its handler, a customer's text to the conversation.

    A staff command from someone who is not staff gets exactly the answer an unknown
    command gets, so the refusal reveals nothing.
    """
    now = now or utcnow()
    is_staff = services.is_staff(message.sender.user_id)
    parsed = message.command
    if parsed is not None:
        name, args = parsed
        command = COMMANDS.get(name)
        is_admin = message.sender.user_id in services.admin_ids
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
        edited = message.kind == InteractionKind.EDITED
        return [] if edited else [Reply(message.sender.chat_id, STAFF_TEXT)]
    return handle_customer_message(services, message, now=now)


STALE_BUTTON = "This button is no longer active."


def handle_callback(
    services: Services, callback: IncomingCallback
) -> tuple[str | None, list[Reply]]:
    """A button press: a short notice for the button, and replies (edits) for the chat.

    Staff buttons are authorised on every press, like staff commands.
    """
    kind, _, rest = callback.data.partition("|")
    chat_id = callback.sender.chat_id
    if kind == "seg" and services.is_staff(callback.sender.user_id):
        name, _, page = rest.rpartition("|")
        if name in ALL_SEGMENTS and page.isdigit():
            with session_scope(services.session_factory) as session:
                text, buttons = audited_segment_page(
                    session, name, int(page), staff_user_id=callback.sender.user_id, now=utcnow()
                )
            return None, [
                Reply(chat_id, text, buttons=buttons, edit_message_id=callback.message_id)
            ]
    return STALE_BUTTON, []
