"""Slash commands, for customers and for staff, in one table.

Adding a staff command: write its handler here (or a service function it calls), add it to
:data:`COMMANDS`, and add a test that sends it as a Telegram user would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from analytics.segments import ALL_SEGMENTS
from bot.services import customers, staff
from bot.services.context import Services
from bot.services.conversation import Stored, handle_customer_message
from bot.services.digest import PERIODS, build_digest, digest_replies
from bot.services.flows import set_marketing_consent
from bot.services.messages import IncomingMessage, Reply
from db.engine import session_scope
from db.models import Customer, InteractionKind


@dataclass(frozen=True)
class CommandCall:
    services: Services
    message: IncomingMessage
    args: str
    now: datetime

    @property
    def chat_id(self) -> int:
        return self.message.sender.chat_id


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    staff_only: bool
    handler: Callable[[CommandCall], list[Reply]]
    usage: str = ""


# --- customer commands -------------------------------------------------------------------


def as_customer(call: CommandCall, answer: Callable[[Session, Stored], str]) -> list[Reply]:
    """Run a customer command: the command is stored as an interaction, so is the answer."""
    return handle_customer_message(
        call.services,
        replace(call.message, kind=InteractionKind.COMMAND),
        now=call.now,
        respond=lambda session, stored: [Reply(call.chat_id, answer(session, stored))],
    )


def start(call: CommandCall) -> list[Reply]:
    def answer(session: Session, stored: Stored) -> str:
        name = stored.first_name or "there"
        return (
            f"Hi {name}! I'm the {call.services.shop_name} assistant. Ask me about your orders, "
            "delivery, refunds, payments or your account, in your own words.\n"
            "For example: “where is my order 10234?”\n\n/help shows what else I can do."
        )

    return as_customer(call, answer)


def help_command(call: CommandCall) -> list[Reply]:
    is_staff = call.services.is_staff(call.message.sender.user_id)
    lines = [
        "I answer questions about orders, delivery, refunds, payments and your account. "
        "Just write them in your own words; ask for a human any time.",
        "",
        *(
            f"/{c.name}{' ' + c.usage if c.usage else ''} — {c.description}"
            for c in COMMANDS.values()
            if not c.staff_only
        ),
    ]
    if is_staff:
        lines += ["", "Staff commands:"]
        lines += [
            f"/{c.name}{' ' + c.usage if c.usage else ''} — {c.description}"
            for c in COMMANDS.values()
            if c.staff_only
        ]
        return [Reply(call.chat_id, "\n".join(lines))]
    return as_customer(call, lambda _session, _stored: "\n".join(lines))


def stop(call: CommandCall) -> list[Reply]:
    def answer(session: Session, stored: Stored) -> str:
        customer = session.get(Customer, stored.customer_id)
        assert customer is not None
        set_marketing_consent(session, customer, consent=False, now=call.now)
        return (
            "Done: you won't get offers or promotions from me. Support answers are not affected."
        )

    return as_customer(call, answer)


# --- staff commands ----------------------------------------------------------------------


def stats(call: CommandCall) -> list[Reply]:
    with session_scope(call.services.session_factory) as session:
        report = staff.compute_stats(call.services, session, now=call.now)
    return [Reply(call.chat_id, staff.render_stats(report))]


def handoffs(call: CommandCall) -> list[Reply]:
    with session_scope(call.services.session_factory) as session:
        return [Reply(call.chat_id, staff.list_handoffs(session, now=call.now))]


def _conversation_id(call: CommandCall, usage: str) -> tuple[int, str]:
    head, _, rest = call.args.partition(" ")
    if not head.lstrip("#").isdigit():
        raise staff.StaffActionError(f"Usage: {usage}")
    return int(head.lstrip("#")), rest.strip()


def reply(call: CommandCall) -> list[Reply]:
    try:
        conversation_id, text = _conversation_id(call, "/reply ID text")
        if not text:
            raise staff.StaffActionError("Usage: /reply ID text")
        with session_scope(call.services.session_factory) as session:
            to_customer = staff.reply_to_customer(
                session,
                conversation_id=conversation_id,
                text=text,
                staff_user_id=call.message.sender.user_id,
                now=call.now,
            )
    except staff.StaffActionError as exc:
        return [Reply(call.chat_id, str(exc))]
    return [to_customer, Reply(call.chat_id, f"✅ Sent to #{conversation_id}.")]


def resolve(call: CommandCall) -> list[Reply]:
    try:
        conversation_id, _ = _conversation_id(call, "/resolve ID")
        with session_scope(call.services.session_factory) as session:
            to_customer = staff.resolve_conversation(
                session, conversation_id=conversation_id, now=call.now
            )
    except staff.StaffActionError as exc:
        return [Reply(call.chat_id, str(exc))]
    return [to_customer, Reply(call.chat_id, f"✅ #{conversation_id} resolved.")]


def segments(call: CommandCall) -> list[Reply]:
    with session_scope(call.services.session_factory) as session:
        return [Reply(call.chat_id, customers.segments_overview(session))]


def segment(call: CommandCall) -> list[Reply]:
    name = customers.resolve_segment(call.args)
    if name is None:
        known = ", ".join(ALL_SEGMENTS)
        return [Reply(call.chat_id, f"Usage: /segment NAME, one of: {known}")]
    with session_scope(call.services.session_factory) as session:
        text, buttons = customers.segment_page(session, name, 0)
    return [Reply(call.chat_id, text, buttons=buttons)]


def customer(call: CommandCall) -> list[Reply]:
    if not call.args:
        return [
            Reply(call.chat_id, "Usage: /customer ID (#id, external id, @username or Telegram id)")
        ]
    with session_scope(call.services.session_factory) as session:
        return [Reply(call.chat_id, customers.customer_profile(session, call.args))]


def atrisk(call: CommandCall) -> list[Reply]:
    with session_scope(call.services.session_factory) as session:
        return [Reply(call.chat_id, customers.at_risk(session))]


def digest(call: CommandCall) -> list[Reply]:
    period = call.args.strip().lower() or "day"
    if period not in PERIODS:
        return [Reply(call.chat_id, "Usage: /digest [day|week]")]
    with session_scope(call.services.session_factory) as session:
        built = build_digest(call.services, session, period=period, until=call.now)
    return digest_replies(built, [call.chat_id])


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("start", "start talking to the assistant", False, start),
        Command("help", "what I can do", False, help_command),
        Command("stop", "no more offers or promotions", False, stop),
        Command(
            "stats", "customers, conversations, messages, intent and sentiment mix", True, stats
        ),
        Command("handoffs", "conversations waiting for a human", True, handoffs),
        Command("reply", "answer a handed-over conversation", True, reply, usage="ID text"),
        Command("resolve", "close a conversation", True, resolve, usage="ID"),
        Command("segments", "customers per RFM segment, and the change", True, segments),
        Command(
            "segment", "a segment's customers, most valuable first", True, segment, usage="NAME"
        ),
        Command(
            "customer",
            "a customer's profile, scores, orders and messages",
            True,
            customer,
            usage="ID",
        ),
        Command("atrisk", "valuable customers drifting away", True, atrisk),
        Command("digest", "the satisfaction digest now", True, digest, usage="[day|week]"),
    ]
}
