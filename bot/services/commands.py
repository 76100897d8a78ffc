"""Slash commands, for customers and for staff, in one table.

Adding a staff command: write its handler here (or a service function it calls), add it to
:data:`COMMANDS`, and add a test that sends it as a Telegram user would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlmodel import Session

from analytics.segments import ALL_SEGMENTS
from bot.services import (
    audit,
    complaints,
    customers,
    offers,
    privacy,
    privacy_flows,
    staff,
    staff_directory,
)
from bot.services.chat import Chat
from bot.services.context import Services
from bot.services.conversation import Responder, Stored, handle_customer_message, stored_chat
from bot.services.digest import DIGEST_PERIODS, build_digest, digest_replies
from bot.services.flows import set_marketing_consent
from bot.services.messages import Button, IncomingMessage, Reply
from db import customer_queries as cq
from db.engine import read_scope, session_scope
from db.models import AuditAction, Customer, InteractionKind


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
    admin_only: bool = False


# --- customer commands -------------------------------------------------------------------


def _as_command(call: CommandCall, respond: Responder) -> list[Reply]:
    """A customer command goes the way of their messages: stored as an interaction, and so
    is the answer ``respond`` gives."""
    return handle_customer_message(
        call.services,
        replace(call.message, kind=InteractionKind.COMMAND),
        now=call.now,
        respond=respond,
    )


def as_customer(call: CommandCall, answer: Callable[[Session, Stored], str]) -> list[Reply]:
    """Run a customer command whose answer is one text."""
    return _as_command(
        call, lambda session, stored: [Reply(call.chat_id, answer(session, stored))]
    )


def _customer_chat(call: CommandCall, step: Callable[[Chat], list[Reply]]) -> list[Reply]:
    """Run a customer command as a step of their chat."""
    return _as_command(
        call,
        lambda session, stored: step(
            stored_chat(call.services, session, stored, chat_id=call.chat_id, now=call.now)
        ),
    )


CONSENT_QUESTION = (
    "Would you like personal offers and discount codes from us now and then? "
    "You can change your mind any time with /stop or /privacy."
)
CONSENT_BUTTONS = [[Button("Yes, please", "cons|yes"), Button("No, thanks", "cons|no")]]


def start(call: CommandCall) -> list[Reply]:
    """Greet; a customer never asked about offers is asked once, with two buttons."""

    def greet(chat: Chat) -> list[Reply]:
        name = chat.customer.first_name or "there"
        greeting = (
            f"Hi {name}! I'm the {call.services.shop_name} assistant. Ask me about your orders, "
            "delivery, refunds, payments or your account, in your own words.\n"
            "For example: “where is my order 10234?”\n\n/help shows what else I can do."
        )
        replies = [chat.reply(greeting)]
        if chat.customer.marketing_consent is None:
            replies.append(chat.reply(CONSENT_QUESTION, CONSENT_BUTTONS))
        return replies

    return _customer_chat(call, greet)


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
        is_admin = call.services.is_admin(call.message.sender.user_id)
        lines += ["", "Staff commands:"]
        lines += [
            f"/{c.name}{' ' + c.usage if c.usage else ''} — {c.description}"
            for c in COMMANDS.values()
            if c.staff_only and (is_admin or not c.admin_only)
        ]
        return [Reply(call.chat_id, "\n".join(lines))]
    return as_customer(call, lambda _session, _stored: "\n".join(lines))


def stop(call: CommandCall) -> list[Reply]:
    def answer(session: Session, stored: Stored) -> str:
        customer = session.get(Customer, stored.customer_id)
        assert customer is not None
        set_marketing_consent(
            session, customer, consent=False, now=call.now, source="telegram:/stop"
        )
        return (
            "Done: you won't get offers or promotions from me. Support answers are not affected."
        )

    return as_customer(call, answer)


def redeem_command(call: CommandCall) -> list[Reply]:
    def answer(session: Session, stored: Stored) -> str:
        customer = session.get(Customer, stored.customer_id)
        assert customer is not None
        return offers.redeem(
            session,
            customer,
            call.args,
            call.now,
            texts=call.services.offer_texts,
            tz=call.services.tz,
        )

    return as_customer(call, answer)


def mydata(call: CommandCall) -> list[Reply]:
    return _customer_chat(call, privacy_flows.my_data)


def forget(call: CommandCall) -> list[Reply]:
    return _customer_chat(call, privacy_flows.ask_forget)


def privacy_command(call: CommandCall) -> list[Reply]:
    def answer(session: Session, stored: Stored) -> str:
        customer = session.get(Customer, stored.customer_id)
        assert customer is not None
        if call.args.strip():
            return privacy.change_consent(session, customer, call.args, now=call.now)
        return privacy.privacy_notice(
            session,
            customer,
            shop_name=call.services.shop_name,
            retention_months=call.services.retention_months,
        )

    return as_customer(call, answer)


# --- staff commands ----------------------------------------------------------------------


def stats(call: CommandCall) -> list[Reply]:
    with read_scope(call.services.session_factory) as session:
        report = staff.compute_stats(call.services, session, now=call.now)
    return [Reply(call.chat_id, staff.render_stats(report))]


def _audit_list(call: CommandCall, name: str, viewed: list[int]) -> None:
    """A staff list that names customers counts as reading each of them. (Reports read in a
    :func:`~db.engine.read_scope`, so as not to hold up customers; this is the write.)"""
    if viewed:
        with session_scope(call.services.session_factory) as session:
            audit.record(
                session,
                action=AuditAction.LIST_VIEWED,
                now=call.now,
                actor_telegram_id=call.message.sender.user_id,
                detail={"list": name, "customers": viewed},
            )


def complaints_command(call: CommandCall) -> list[Reply]:
    period = complaints.stretch(call.services, call.args, call.now)
    if period is None:
        return [Reply(call.chat_id, complaints.USAGE)]
    viewed: list[int] = []
    with read_scope(call.services.session_factory) as session:
        text = complaints.complaints_report(call.services, session, period, viewed=viewed)
    _audit_list(call, "complaints", viewed)
    return [Reply(call.chat_id, text)]


def handoffs(call: CommandCall) -> list[Reply]:
    viewed: list[int] = []
    with read_scope(call.services.session_factory) as session:
        text = staff.list_handoffs(session, now=call.now, viewed=viewed)
    _audit_list(call, "handoffs", viewed)
    return [Reply(call.chat_id, text)]


def _conversation_id(call: CommandCall, usage: str) -> tuple[int, str]:
    head, _, rest = call.args.partition(" ")
    if not head.lstrip("#").isdigit():
        raise staff.StaffActionError(f"Usage: {usage}")
    return int(head.lstrip("#")), rest.strip()


def _on_conversation(
    call: CommandCall,
    usage: str,
    act: Callable[[Session, int, str], list[Reply]],
    done: Callable[[int, list[Reply]], list[Reply]],
) -> list[Reply]:
    """``/command ID [text]``: ``act(session, conversation_id, text)`` in a transaction, then
    ``done`` with its replies; a bad ID or an action that cannot be done is answered with
    why (as the card's buttons do, :func:`bot.services.buttons._staff_action`)."""
    try:
        conversation_id, rest = _conversation_id(call, usage)
        with session_scope(call.services.session_factory) as session:
            replies = act(session, conversation_id, rest)
    except staff.StaffActionError as exc:
        return [Reply(call.chat_id, str(exc))]
    return done(conversation_id, replies)


def reply(call: CommandCall) -> list[Reply]:
    def act(session: Session, conversation_id: int, text: str) -> list[Reply]:
        if not text:
            raise staff.StaffActionError("Usage: /reply ID text")
        return [
            staff.reply_to_customer(
                session,
                conversation_id=conversation_id,
                text=text,
                staff_user_id=call.message.sender.user_id,
                now=call.now,
            )
        ]

    def done(conversation_id: int, to_customer: list[Reply]) -> list[Reply]:
        return [*to_customer, Reply(call.chat_id, f"✅ Sent to #{conversation_id}.")]

    return _on_conversation(call, "/reply ID text", act, done)


def take(call: CommandCall) -> list[Reply]:
    """What the card's ✋ Take button does: the conversation is this staff member's, and the
    customer is told who joined."""

    def act(session: Session, conversation_id: int, _: str) -> list[Reply]:
        return staff.take_conversation(
            call.services,
            session,
            conversation_id=conversation_id,
            staff_user_id=call.message.sender.user_id,
            staff_name=call.message.sender.first_name,
            now=call.now,
        )

    def done(conversation_id: int, to_customer: list[Reply]) -> list[Reply]:
        note = f"✋ #{conversation_id} is yours. Answer with /reply {conversation_id} text."
        return [*to_customer, Reply(call.chat_id, note)]

    return _on_conversation(call, "/take ID", act, done)


def resolve(call: CommandCall) -> list[Reply]:
    def act(session: Session, conversation_id: int, _: str) -> list[Reply]:
        return staff.resolve_conversation(
            call.services,
            session,
            conversation_id=conversation_id,
            staff_user_id=call.message.sender.user_id,
            now=call.now,
        )

    def done(conversation_id: int, to_customer: list[Reply]) -> list[Reply]:
        return [*to_customer, Reply(call.chat_id, f"✅ #{conversation_id} resolved.")]

    return _on_conversation(call, "/resolve ID", act, done)


def segments(call: CommandCall) -> list[Reply]:
    with read_scope(call.services.session_factory) as session:
        return [Reply(call.chat_id, customers.segments_overview(session))]


def segment(call: CommandCall) -> list[Reply]:
    name = customers.resolve_segment(call.args)
    if name is None:
        known = ", ".join(ALL_SEGMENTS)
        return [Reply(call.chat_id, f"Usage: /segment NAME, one of: {known}")]
    with session_scope(call.services.session_factory) as session:
        text, buttons = audited_segment_page(
            session, name, 0, staff_user_id=call.message.sender.user_id, now=call.now
        )
    return [Reply(call.chat_id, text, buttons=buttons)]


def audited_segment_page(
    session: Session, name: str, page: int, *, staff_user_id: int, now: datetime
) -> tuple[str, list[list[Button]]]:
    """A segment page for staff; the customers listed on it are recorded as read."""
    viewed: list[int] = []
    text, buttons = customers.segment_page(session, name, page, viewed=viewed)
    audit.record(
        session,
        action=AuditAction.SEGMENT_VIEWED,
        now=now,
        actor_telegram_id=staff_user_id,
        detail={"segment": name, "page": page, "customers": viewed},
    )
    return text, buttons


NAME_MATCHES = 10  # customers listed for a name at most


def customer(call: CommandCall) -> list[Reply]:
    """One customer by id, external id, @username or Telegram id, or by name: one match is
    shown in full, several are listed to pick from."""
    if not call.args:
        return [
            Reply(
                call.chat_id,
                "Usage: /customer ID (#id, external id, @username or Telegram id) or NAME",
            )
        ]
    with session_scope(call.services.session_factory) as session:
        found = cq.find_customer(session=session, ident=call.args)
        named = (
            []
            if found is not None
            else cq.customers_named(session=session, name=call.args, limit=NAME_MATCHES + 1)
        )
        if found is None and len(named) == 1:
            found = named[0]
        if found is not None:
            audit.record(
                session,
                action=AuditAction.CUSTOMER_VIEWED,
                now=call.now,
                actor_telegram_id=call.message.sender.user_id,
                customer_id=found.id,
            )
            return [Reply(call.chat_id, customers.customer_profile(session, found))]
        if not named:
            return [Reply(call.chat_id, customers.NO_MATCH.format(ident=call.args))]
        shown = named[:NAME_MATCHES]
        text = customers.name_matches(session, shown, call.args, more=len(named) > NAME_MATCHES)
    _audit_list(call, "customer search", [c.id for c in shown if c.id is not None])
    return [Reply(call.chat_id, text)]


def audit_command(call: CommandCall) -> list[Reply]:
    """Admins only (checked by the router): the audit trail of a customer or a staff member."""
    parsed = audit.parse_audit_args(call.args)
    if parsed is None:
        return [Reply(call.chat_id, audit.AUDIT_USAGE)]
    kind, ident = parsed
    with session_scope(call.services.session_factory) as session:
        if kind == "customer":
            rows = audit.entries(session, customer_id=ident)
        else:
            rows = audit.entries(session, actor_telegram_id=ident)
        audit.record(
            session,
            action=AuditAction.AUDIT_VIEWED,
            now=call.now,
            actor_telegram_id=call.message.sender.user_id,
            customer_id=ident if kind == "customer" else None,
            detail={"of": kind, "id": ident},
        )
        return [Reply(call.chat_id, audit.render(rows, title=f"Audit of {kind} {ident}"))]


def offers_command(call: CommandCall) -> list[Reply]:
    with read_scope(call.services.session_factory) as session:
        text = offers.offer_report(session, call.args or None, now=call.now, tz=call.services.tz)
    return [Reply(call.chat_id, text)]


def staff_command(call: CommandCall) -> list[Reply]:
    """Admins only (checked by the router): list staff, add or remove agents and admins."""
    with session_scope(call.services.session_factory) as session:
        if not call.args.strip():
            return [Reply(call.chat_id, staff_directory.list_staff(session))]
        try:
            text, user_id, change = staff_directory.change_staff(session, call.args, now=call.now)
        except staff_directory.StaffChangeError as exc:
            return [Reply(call.chat_id, str(exc))]
        audit.record(
            session,
            action=AuditAction.STAFF_CHANGED,
            now=call.now,
            actor_telegram_id=call.message.sender.user_id,
            detail={"staff": user_id, "change": change},
        )
    if call.services.directory is not None:
        call.services.directory.invalidate()
    return [Reply(call.chat_id, text)]


def atrisk(call: CommandCall) -> list[Reply]:
    viewed: list[int] = []
    with read_scope(call.services.session_factory) as session:
        text = customers.at_risk(session, viewed=viewed)
    _audit_list(call, "atrisk", viewed)
    return [Reply(call.chat_id, text)]


# What /digest accepts (spaces and case ignored), to the period names of the digest.
DIGEST_WORDS = {
    **{name: name for name in DIGEST_PERIODS},
    "yesterday": "day",
    "lastweek": "week",
    "lastmonth": "month",
}
DIGEST_USAGE = (
    "Usage: /digest [today|day|week|month|this week|this month]\n"
    "day, week and month are the last complete ones (yesterday, last week, last month); "
    "today, this week and this month run up to now."
)


def digest(call: CommandCall) -> list[Reply]:
    period = DIGEST_WORDS.get(re.sub(r"\s+", "", call.args.lower()) or "day")
    if period is None:
        return [Reply(call.chat_id, DIGEST_USAGE)]
    with read_scope(call.services.session_factory) as session:
        built = build_digest(call.services, session, period=period, until=call.now)
    _audit_list(call, "digest", built.named_customers)
    return digest_replies(built, [call.chat_id])


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("start", "start talking to the assistant", False, start),
        Command("help", "what I can do", False, help_command),
        Command("stop", "no more offers or promotions", False, stop),
        Command("redeem", "redeem an offer code you got", False, redeem_command, usage="CODE"),
        Command("mydata", "a copy of everything we store about you", False, mydata),
        Command("forget", "delete your personal data (asks first)", False, forget),
        Command(
            "privacy",
            "what we store about you, and your consents",
            False,
            privacy_command,
            usage="[marketing|analytics on|off]",
        ),
        Command(
            "stats", "customers, conversations, messages, intents, sentiment, sales", True, stats
        ),
        Command("handoffs", "conversations waiting for a human", True, handoffs),
        Command(
            "complaints",
            "what customers complain about, and the latest complaints",
            True,
            complaints_command,
            usage="[today|week|month]",
        ),
        Command("take", "take a handed-over conversation yourself", True, take, usage="ID"),
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
        Command(
            "digest",
            "the satisfaction digest now",
            True,
            digest,
            usage="[today|day|week|month|this week|this month]",
        ),
        Command(
            "offers",
            "offers sent, redeemed, and uplift against the holdout",
            True,
            offers_command,
            usage="[code or words]",
        ),
        Command(
            "audit",
            "who read or changed a customer's data (admins)",
            True,
            audit_command,
            usage="customer|staff ID",
            admin_only=True,
        ),
        Command(
            "staff",
            "list staff; add or remove agents and admins (admins)",
            True,
            staff_command,
            usage="[add|remove TELEGRAM_ID [agent|admin]]",
            admin_only=True,
        ),
    ]
}
