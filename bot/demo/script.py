"""The scripted part of the demo: customers and staff talking to the assistant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from rich.console import Console
from sqlmodel import Session, col, select

from bot.console import chat_turn, press_turn
from bot.services.assistant import handle_message
from bot.services.context import Services
from bot.services.messages import Button, IncomingMessage, Reply, Sender
from db.clock import utcnow
from db.engine import session_scope
from db.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Interaction,
    InteractionKind,
    Order,
    OrderStatus,
)

DEMO_STAFF_ID = 1000
DEMO_STAFF = Sender(user_id=DEMO_STAFF_ID, chat_id=DEMO_STAFF_ID, first_name="Jordan")
FIRST_DEMO_USER = 900001


PRESS = "press"


@dataclass(frozen=True)
class Step:
    """One message in the script: ``who`` is a customer index, or "staff". With
    ``kind=PRESS``, ``text`` is the label of a button the bot sent them last."""

    who: int | str
    text: str | Callable[[Session], str]
    kind: str = InteractionKind.TEXT


def _latest_order_of(index: int) -> Callable[[Session], str]:
    def text(session: Session) -> str:
        order = session.exec(
            select(Order)
            .join(Customer, col(Customer.id) == Order.customer_id)
            .where(Customer.telegram_user_id == FIRST_DEMO_USER + index)
            .order_by(col(Order.ordered_at).desc())
        ).first()
        return order.external_id if order else "100001"

    return text


def _customer_of(index: int) -> Callable[[Session], str]:
    def text(session: Session) -> str:
        customer = session.exec(
            select(Customer).where(Customer.telegram_user_id == FIRST_DEMO_USER + index)
        ).first()
        return f"#{customer.id}" if customer else "#1"

    return text


def _someone_elses_order(session: Session) -> str:
    order = session.exec(
        select(Order)
        .join(Customer, col(Customer.id) == Order.customer_id)
        .where(col(Customer.telegram_user_id).is_(None))
        .order_by(col(Order.id))
    ).first()
    return order.external_id if order else "100002"


def _handed_over(index: int) -> Callable[[Session], tuple[int, str]]:
    """The conversation of demo customer ``index`` that waits for a human, and the name."""

    def find(session: Session) -> tuple[int, str]:
        row = session.exec(
            select(Conversation, Customer)
            .join(Customer, col(Customer.id) == Conversation.customer_id)
            .where(
                Customer.telegram_user_id == FIRST_DEMO_USER + index,
                Conversation.status == ConversationStatus.WAITING_HUMAN,
            )
        ).first()
        if row is None:
            return 0, "there"
        conversation, customer = row
        return conversation.id or 0, customer.first_name or "there"

    return find


def _staff_reply(session: Session) -> str:
    conversation_id, name = _handed_over(6)(session)
    return (
        f"/reply {conversation_id} Hi {name}, I'm Jordan from support. I've expedited your "
        "parcel: it arrives tomorrow, and the shipping is on us."
    )


def _fresh_order(index: int) -> Callable[[Session], str]:
    """An order demo customer ``index`` placed an hour ago (not shipped: it can be cancelled)."""

    def text(session: Session) -> str:
        customer = session.exec(
            select(Customer).where(Customer.telegram_user_id == FIRST_DEMO_USER + index)
        ).one()
        number = f"NW-{900000 + index}"
        if session.exec(select(Order).where(Order.external_id == number)).first() is None:
            session.add(
                Order(
                    external_id=number,
                    customer_id=customer.id or 0,
                    status=OrderStatus.PLACED,
                    ordered_at=utcnow() - timedelta(hours=1),
                    total=Decimal("64.90"),
                )
            )
        return f"I ordered by mistake, please cancel order {number}"

    return text


SCRIPT: list[Step] = [
    Step(0, "/start"),
    Step(0, "Yes, please", kind=PRESS),
    Step(0, "where is my order?"),
    Step(1, lambda s: f"has order #{_latest_order_of(1)(s)} shipped yet??"),
    Step(2, lambda s: f"whats the status of order {_someone_elses_order(s)}"),
    Step(3, _fresh_order(3)),
    Step(3, "Yes, cancel it", kind=PRESS),
    Step(4, "how long does delivery usually take?"),
    Step(5, "which payment methods can I use"),
    Step(6, "third time my package is late. I want to make a complaint"),
    Step("staff", "✋ Take", kind=PRESS),
    Step(6, "hello?? anyone there"),
    Step("staff", _staff_reply),
    Step("staff", "✅ Resolve", kind=PRESS),
    Step(6, "5 😍", kind=PRESS),
    Step(6, "Jordan sorted it out quickly, thank you"),
    Step(6, "9", kind=PRESS),
    Step(7, "😀", kind=InteractionKind.STICKER),
    Step(8, "pls stop sending me promo messages"),
    Step(9, "what's the weather like in Paris tomorrow?"),
    Step(10, "/stats"),
    Step(10, "/frobnicate"),
    Step(0, "any discounts for me at the moment?"),
    Step(11, "thanks a lot, you were super helpful! bye"),
    Step(11, "/mydata"),
    Step(11, "/forget"),
    Step(11, "Yes, delete my data", kind=PRESS),
]

# After the offer run: staff look at the results, in commands and in plain words.
STAFF_SCRIPT: list[Step] = [
    Step("staff", "/offers"),
    Step("staff", "how many champions do we have?"),
    Step("staff", "/segments"),
    Step("staff", "who is at risk?"),
    Step("staff", lambda s: f"/customer {_customer_of(6)(s)}"),
    Step("staff", "/stats"),
]


def link_demo_customers(session: Session, count: int = 12) -> list[Sender]:
    """Give the first ``count`` shop customers a Telegram identity, as if they pressed Start."""
    senders = []
    customers = session.exec(select(Customer).order_by(col(Customer.id)).limit(count)).all()
    for index, customer in enumerate(customers):
        customer.telegram_user_id = FIRST_DEMO_USER + index
        customer.telegram_chat_id = FIRST_DEMO_USER + index
        session.add(customer)
        senders.append(
            Sender(
                user_id=FIRST_DEMO_USER + index,
                chat_id=FIRST_DEMO_USER + index,
                first_name=customer.first_name,
                last_name=customer.last_name,
            )
        )
    session.flush()
    return senders


def _annotation(services: Services, sender: Sender) -> str:
    with session_scope(services.session_factory) as session:
        row = session.exec(
            select(Interaction)
            .join(Customer, col(Customer.id) == Interaction.customer_id)
            .where(Customer.telegram_user_id == sender.user_id, Interaction.direction == "in")
            .order_by(col(Interaction.id).desc())
        ).first()
    if row is None or row.intent is None:
        return ""
    entities = ", ".join(f"{e['label']}={e['value'] or e['text']}" for e in row.entities or [])
    return (
        f"intent {row.intent} ({row.intent_confidence:.2f}), {row.sentiment} "
        f"({row.sentiment_score:+.2f})" + (f", {entities}" if entities else "")
    )


def play_script(
    services: Services, senders: list[Sender], console: Console, script: list[Step] = SCRIPT
) -> int:
    """Play a script, printing the transcript; returns the number of messages."""
    buttons: dict[int, list[Button]] = {}
    for step in script:
        sender = DEMO_STAFF if step.who == "staff" else senders[int(step.who)]
        with session_scope(services.session_factory) as session:
            text = step.text(session) if callable(step.text) else step.text
        label = (
            f"staff {DEMO_STAFF.first_name}"
            if step.who == "staff"
            else f"{sender.first_name} {sender.last_name}"
        )
        console.print(f"\n[bold cyan]{label}:[/] ", end="")
        console.print(
            text if step.kind == InteractionKind.TEXT else f"[{step.kind} {text}]",
            markup=False,
            highlight=False,
        )
        if step.kind == PRESS:
            (button,) = [b for b in buttons.get(sender.chat_id, []) if b.label == text]
            replies = press_turn(services, sender, button)
        elif step.kind == InteractionKind.TEXT:
            replies = chat_turn(services, sender, text)
        else:
            replies = handle_message(
                services,
                IncomingMessage(
                    sender=sender,
                    text="",
                    channel="console",
                    kind=step.kind,
                    attachment={"emoji": text},
                ),
            )
        note = _annotation(services, sender) if step.who != "staff" else ""
        if note and step.kind == InteractionKind.TEXT and not text.startswith("/"):
            console.print(f"  [dim]↳ {note}[/]")
        _print(console, sender, replies, senders)
        for reply in replies:
            if reply.buttons:
                buttons[reply.chat_id] = [b for row in reply.buttons for b in row]
    return len(script)


def _print(console: Console, sender: Sender, replies: list[Reply], senders: list[Sender]) -> None:
    names = {s.chat_id: s.first_name for s in senders}
    for reply in replies:
        if reply.chat_id == sender.chat_id:
            who = "bot"
        elif reply.chat_id == DEMO_STAFF_ID:
            who = "bot → staff"
        else:
            who = f"bot → {names.get(reply.chat_id, reply.chat_id)}"
        console.print(f"[bold green]{who}:[/] ", end="")
        console.print(reply.text, markup=False, highlight=False)
        if reply.document is not None:
            console.print(f"   📎 {reply.filename} ({len(reply.document):,} bytes)", markup=False)
        for row in reply.buttons:
            console.print("   " + "   ".join(f"[{b.label}]" for b in row), markup=False)
