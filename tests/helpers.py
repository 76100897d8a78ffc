"""Small builders shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from bot.fake_telegram.bot_process import ROOT
from bot.services.assistant import handle_message
from bot.services.context import Services
from bot.services.messages import IncomingMessage, Reply, Sender
from db.clock import utcnow
from db.engine import session_scope
from db.models import Customer, Interaction, Order, OrderStatus

_update_ids = iter(range(10_000, 10_000_000))


def sender(user_id: int = 501, first_name: str = "Ada") -> Sender:
    return Sender(
        user_id=user_id,
        chat_id=user_id,
        first_name=first_name,
        last_name="Lovelace",
        username=f"user{user_id}",
        language_code="en",
    )


def message_update(
    update_id: int, chat: int, text: str = "hi", *, first_name: str = "A"
) -> dict[str, Any]:
    """A Bot API update with a text message in a private chat, as Telegram sends it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": first_name},
            "text": text,
        },
    }


def say(
    services: Services,
    text: str,
    *,
    user_id: int = 501,
    kind: str = "text",
    update_id: int | None = None,
    attachment: dict | None = None,
    now: datetime | None = None,
    message_id: int | None = None,
) -> list[Reply]:
    message = IncomingMessage(
        sender=sender(user_id),
        text=text,
        kind=kind,
        attachment=attachment,
        update_id=update_id if update_id is not None else next(_update_ids),
        message_id=message_id if message_id is not None else next(_update_ids),
    )
    return handle_message(services, message, now=now)


def texts_to(replies: list[Reply], chat_id: int) -> list[str]:
    return [r.text for r in replies if r.chat_id == chat_id]


def add_order(
    services: Services,
    *,
    user_id: int | None,
    external_id: str,
    status: str = OrderStatus.SHIPPED,
    days_ago: int = 2,
    total: str = "59.90",
) -> None:
    """An order for the customer with this Telegram id (created if needed)."""
    with session_scope(services.session_factory) as session:
        customer = None
        if user_id is not None:
            customer = session.exec(
                select(Customer).where(Customer.telegram_user_id == user_id)
            ).first()
        if customer is None:
            customer = Customer(
                telegram_user_id=user_id, telegram_chat_id=user_id, first_name="Ada"
            )
            session.add(customer)
            session.flush()
        ordered = utcnow() - timedelta(days=days_ago)
        session.add(
            Order(
                external_id=external_id,
                customer_id=customer.id,
                status=status,
                ordered_at=ordered,
                total=Decimal(total),
                shipped_at=ordered + timedelta(days=1) if status != OrderStatus.PLACED else None,
            )
        )


def interactions(session: Session) -> list[Interaction]:
    return list(session.exec(select(Interaction).order_by(Interaction.id)).all())


def crmbot(
    *args: str, env: dict[str, str], stdin: str = "", timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        input=stdin,
        text=True,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def press(
    services: Services,
    data: str,
    *,
    user_id: int = 501,
    message_id: int | None = None,
    now: datetime | None = None,
) -> tuple[str | None, list[Reply]]:
    """Press an inline button with this callback data, as this user."""
    from bot.services.buttons import handle_callback
    from bot.services.messages import IncomingCallback

    callback = IncomingCallback(
        sender=sender(user_id), data=data, message_id=message_id, update_id=next(_update_ids)
    )
    return handle_callback(services, callback, now=now)


def button_data(replies: list[Reply], chat_id: int) -> list[str]:
    """The callback data of every button sent to this chat."""
    return [b.data for r in replies if r.chat_id == chat_id for row in r.buttons for b in row]


def wait_text(fake, chat_id: int, needle: str, timeout: float = 20) -> dict:
    """Wait until the bot sent ``chat_id`` a message containing ``needle``; the latest one."""

    def has(messages: list[dict]) -> bool:
        return any(needle in m.get("text", "") for m in messages)

    messages = fake.wait_for(has, chat_id=chat_id, timeout=timeout)
    return [m for m in messages if needle in m.get("text", "")][-1]
