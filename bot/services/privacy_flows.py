"""The customer's own privacy requests: a copy of their data (`/mydata`, or "send me my
data") and erasure (`/forget`, or "delete my data"), which asks for a confirmation first.

The erasure itself runs on the confirmation button, outside the usual message path
(:func:`forget_pressed`): storing the press or the answer as interactions would link the
erased customer to their chat again.
"""

from __future__ import annotations

from datetime import datetime

from bot.services.chat import Chat
from bot.services.context import Services
from bot.services.erasure import (
    customer_data_json,
    export_customer_data,
    export_filename,
    forget_customer,
)
from bot.services.messages import Button, Reply, Sender
from bot.services.pending import Asked, current
from db import queries
from db.engine import session_scope

EXPORT_TEXT = (
    "Here is everything we store about you, as a JSON file: your profile, messages, "
    "orders, ratings, offers and consents."
)
FORGET_QUESTION = (
    "This deletes your personal data: your name and username, what you wrote to me, your "
    "comments and consents. Orders and ratings stay only as anonymous numbers. It can't be "
    "undone. Delete your data?"
)
FORGET_BUTTONS = [[Button("Yes, delete my data", "fgt|yes"), Button("No, keep it", "fgt|no")]]
FORGOTTEN_TEXT = (
    "Done: your personal data is deleted. If you write again, I'll treat you as a new customer."
)
KEPT_TEXT = "OK, nothing was deleted."
USE_BUTTONS = "Please tap “Yes, delete my data” or “No, keep it” above to confirm."


def my_data(chat: Chat) -> list[Reply]:
    """The export as a JSON file in the chat (audited as ``data.exported``)."""
    assert chat.customer.id is not None
    data = export_customer_data(chat.session, chat.customer.id, now=chat.now)
    reply = chat.reply(EXPORT_TEXT)
    reply.document = customer_data_json(data)
    reply.filename = export_filename(chat.now)
    return [reply]


def ask_forget(chat: Chat) -> list[Reply]:
    chat.ask(Asked.FORGET)
    return [chat.reply(FORGET_QUESTION, FORGET_BUTTONS)]


def typed_answer(chat: Chat) -> list[Reply]:
    """A typed yes or no to the erasure question: erasure needs the button, and the
    question stays open for it."""
    chat.ask(Asked.FORGET)
    return [chat.reply(USE_BUTTONS, FORGET_BUTTONS)]


def forget_pressed(
    services: Services, sender: Sender, *, yes: bool, now: datetime
) -> tuple[str | None, list[Reply]]:
    """The confirmation button: erase the presser (only ever the presser) if they were
    asked and said yes. Nothing about the press is stored."""
    with session_scope(services.session_factory) as session:
        customer = queries.get_customer_by_telegram_id(
            session=session, telegram_user_id=sender.user_id
        )
        if customer is None or customer.id is None:
            return None, []
        waiting = current(customer, now=now)
        if waiting is None or waiting.kind != Asked.FORGET:
            return "This button is no longer active.", []
        customer.pending = None
        customer.pending_until = None
        session.add(customer)
        if not yes:
            return None, [Reply(sender.chat_id, KEPT_TEXT)]
        forget_customer(session, customer.id, now=now, actor="customer")
    return None, [Reply(sender.chat_id, FORGOTTEN_TEXT)]
