"""The staff side: numbers about customers and conversations, and handed-over chats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from sqlmodel import Session, col, select

from analytics.mix import Share, shares
from bot.services import audit
from bot.services.context import Services
from bot.services.conversation import Stored, store_outbound
from bot.services.messages import Button, Reply
from bot.services.pending import clear
from bot.services.surveys import ask_csat
from db import queries
from db.models import AuditAction, Conversation, ConversationStatus, Customer, StaffMember


@dataclass(frozen=True)
class Stats:
    customers: int
    new_customers_7d: int
    conversations: dict[str, int]
    messages_today: int
    messages_7d: int
    intents_7d: list[Share]
    sentiment_7d: list[Share]
    # per currency: (orders, revenue) in the last 30 days, and in the 30 days before
    orders_30d: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    orders_prior_30d: dict[str, tuple[int, Decimal]] = field(default_factory=dict)


def compute_stats(services: Services, session: Session, *, now: datetime) -> Stats:
    """Counts for `/stats`. "Today" starts at midnight in the business's time zone."""
    local_midnight = datetime.combine(now.astimezone(services.tz).date(), time(), services.tz)
    week_ago = now - timedelta(days=7)
    month_ago, two_months_ago = now - timedelta(days=30), now - timedelta(days=60)
    return Stats(
        customers=queries.count_rows(session=session, model=Customer),
        new_customers_7d=queries.count_rows(session=session, model=Customer, since=week_ago),
        conversations=queries.conversation_status_counts(session=session),
        messages_today=queries.inbound_count(session=session, since=local_midnight),
        messages_7d=queries.inbound_count(session=session, since=week_ago),
        intents_7d=shares(
            queries.inbound_label_counts(session=session, column="intent", since=week_ago),
            top=8,
        ),
        sentiment_7d=shares(
            queries.inbound_label_counts(session=session, column="sentiment", since=week_ago)
        ),
        orders_30d=queries.order_totals(session=session, since=month_ago, until=now),
        orders_prior_30d=queries.order_totals(
            session=session, since=two_months_ago, until=month_ago
        ),
    )


def render_stats(stats: Stats) -> str:
    conv = stats.conversations
    lines = [
        "📊 crmbot stats",
        f"Customers: {stats.customers:,} ({stats.new_customers_7d:,} new in 7 days)",
        "Conversations: "
        f"{conv.get(ConversationStatus.OPEN, 0):,} open, "
        f"{conv.get(ConversationStatus.WAITING_HUMAN, 0):,} waiting for a human, "
        f"{conv.get(ConversationStatus.RESOLVED, 0):,} resolved",
        f"Customer messages: {stats.messages_today:,} today, {stats.messages_7d:,} in 7 days",
    ]
    if stats.intents_7d:
        lines.append("Intents (7 days):")
        lines += [f"  {s.label}: {s.count:,} ({s.percent:.0f}%)" for s in stats.intents_7d]
    if stats.sentiment_7d:
        lines.append(
            "Sentiment (7 days): "
            + ", ".join(f"{s.label} {s.percent:.0f}%" for s in stats.sentiment_7d)
        )
    if not stats.intents_7d:
        lines.append("No customer messages in the last 7 days.")
    lines += _sales_lines(stats)
    return "\n".join(lines)


def _sales_lines(stats: Stats) -> list[str]:
    """Orders, revenue and average order in the last 30 days, per currency, with the change
    against the 30 days before."""
    if not stats.orders_30d:
        return ["Orders (30 days): none"]
    lines = []
    for currency, (orders, revenue) in sorted(stats.orders_30d.items()):
        _, before = stats.orders_prior_30d.get(currency, (0, Decimal(0)))
        change = f" ({_change(revenue, before)} vs the 30 days before)" if before else ""
        average = revenue / orders if orders else Decimal(0)
        lines.append(
            f"Orders (30 days): {orders:,}, revenue {revenue:,.2f} {currency}{change}, "
            f"average order {average:,.2f} {currency}"
        )
    return lines


def _change(now: Decimal, before: Decimal) -> str:
    percent = float((now - before) / before * 100)
    return f"{'▲' if percent >= 0 else '▼'} {percent:+.0f}%"


def list_handoffs(session: Session, *, now: datetime, viewed: list[int] | None = None) -> str:
    """Conversations waiting for a human; the customers shown are appended to ``viewed``."""
    rows = session.exec(
        select(Conversation, Customer)
        .join(Customer, col(Customer.id) == Conversation.customer_id)
        .where(Conversation.status == ConversationStatus.WAITING_HUMAN)
        .order_by(col(Conversation.handoff_at))
    ).all()
    if not rows:
        return "No conversations are waiting for a human. 🎉"
    lines = [f"🙋 {len(rows)} waiting for a human:"]
    for conversation, customer in rows:
        if viewed is not None and customer.id is not None:
            viewed.append(customer.id)
        since = conversation.handoff_at or conversation.updated_at
        lines.append(
            f"#{conversation.id} {customer.display_name}: waiting {_duration(now - since)}"
        )
    lines.append("Take one with /take ID, answer with /reply ID text, close with /resolve ID.")
    return "\n".join(lines)


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


class StaffActionError(ValueError):
    """A staff command could not be carried out; the message says why, for the staff."""


def _waiting_conversation(
    session: Session, conversation_id: int, *, chat: bool = False
) -> tuple[Conversation, Customer]:
    """The conversation and its customer; with ``chat``, one that has a chat to write to
    (taking and resolving work without one: an imported or erased customer's conversation
    can still be closed, it only gets no message)."""
    conversation = session.get(Conversation, conversation_id)
    customer = session.get(Customer, conversation.customer_id) if conversation else None
    if conversation is None or customer is None:
        raise StaffActionError(f"There is no conversation #{conversation_id}.")
    if chat and customer.telegram_chat_id is None:
        raise StaffActionError(f"Conversation #{conversation_id} has no chat to write to.")
    return conversation, customer


def _staff_member(session: Session, user_id: int) -> StaffMember | None:
    return session.exec(select(StaffMember).where(StaffMember.telegram_user_id == user_id)).first()


def _audit(
    session: Session,
    conversation: Conversation,
    action: str,
    *,
    staff_user_id: int,
    now: datetime,
) -> None:
    audit.record(
        session,
        action=action,
        now=now,
        actor_telegram_id=staff_user_id,
        customer_id=conversation.customer_id,
        detail={"conversation": conversation.id},
    )


def _take(
    session: Session,
    conversation: Conversation,
    *,
    staff_user_id: int,
    now: datetime,
) -> bool:
    """Assign the conversation to this staff member; True if it was not theirs before."""
    member = _staff_member(session, staff_user_id)
    member_id = member.id if member else None
    first = conversation.assigned_staff_id is None or conversation.assigned_staff_id != member_id
    conversation.status = ConversationStatus.WAITING_HUMAN
    conversation.assigned_staff_id = member_id
    conversation.handoff_at = conversation.handoff_at or now
    conversation.updated_at = now
    session.add(conversation)
    if first:
        _audit(
            session, conversation, AuditAction.HANDOFF_TAKEN, staff_user_id=staff_user_id, now=now
        )
    return first


def _to_customer(
    session: Session,
    conversation: Conversation,
    customer: Customer,
    text: str,
    *,
    now: datetime,
    staff_member_id: int | None = None,
    buttons: list[list[Button]] | None = None,
) -> list[Reply]:
    """The message to the customer, stored; none if the customer has no chat."""
    assert customer.id is not None and conversation.id is not None
    if customer.telegram_chat_id is None:
        return []
    reply = Reply(customer.telegram_chat_id, text, buttons=buttons or [])
    stored = Stored(customer.id, conversation.id, 0, conversation.status, customer.first_name)
    store_outbound(
        session,
        stored,
        reply,
        channel=conversation.channel,
        now=now,
        staff_member_id=staff_member_id,
    )
    return [reply]


def reply_to_customer(
    session: Session, *, conversation_id: int, text: str, staff_user_id: int, now: datetime
) -> Reply:
    """A staff member answers a customer; the conversation stays with a human (the first
    reply takes it)."""
    conversation, customer = _waiting_conversation(session, conversation_id, chat=True)
    if conversation.status == ConversationStatus.RESOLVED:
        raise StaffActionError(f"Conversation #{conversation_id} is resolved already.")
    _take(session, conversation, staff_user_id=staff_user_id, now=now)
    _audit(session, conversation, AuditAction.REPLY_SENT, staff_user_id=staff_user_id, now=now)
    (reply,) = _to_customer(
        session,
        conversation,
        customer,
        text,
        now=now,
        staff_member_id=conversation.assigned_staff_id,
    )
    return reply


def take_conversation(
    services: Services,
    session: Session,
    *,
    conversation_id: int,
    staff_user_id: int,
    staff_name: str | None,
    now: datetime,
) -> list[Reply]:
    """A staff member takes a handed-over conversation; the customer is told who joined."""
    conversation, customer = _waiting_conversation(session, conversation_id)
    if conversation.status == ConversationStatus.RESOLVED:
        raise StaffActionError(f"Conversation #{conversation_id} is resolved already.")
    if conversation.assigned_staff_id is not None:
        holder = session.get(StaffMember, conversation.assigned_staff_id)
        member = _staff_member(session, staff_user_id)
        if holder is not None and (member is None or holder.id != member.id):
            raise StaffActionError(
                f"#{conversation_id} is taken already by {holder.name or holder.telegram_user_id}."
            )
    if not _take(session, conversation, staff_user_id=staff_user_id, now=now):
        raise StaffActionError(f"#{conversation_id} is yours already.")
    text = services.answers.say("staff_joined", staff=staff_name or "A colleague")
    return _to_customer(session, conversation, customer, text, now=now)


def resolve_conversation(
    services: Services,
    session: Session,
    *,
    conversation_id: int,
    staff_user_id: int,
    now: datetime,
) -> list[Reply]:
    """Close a conversation: the customer is told and asked for a CSAT rating; the bot
    answers again afterwards."""
    conversation, customer = _waiting_conversation(session, conversation_id)
    if conversation.status == ConversationStatus.RESOLVED:
        raise StaffActionError(f"Conversation #{conversation_id} is resolved already.")
    _audit(
        session,
        conversation,
        AuditAction.CONVERSATION_RESOLVED,
        staff_user_id=staff_user_id,
        now=now,
    )
    conversation.status = ConversationStatus.RESOLVED
    conversation.resolved_at = now
    conversation.updated_at = now
    session.add(conversation)
    clear(customer)
    session.add(customer)
    replies = _to_customer(
        session, conversation, customer, services.answers.say("resolved"), now=now
    )
    question = ask_csat(services, session, customer, conversation, now=now) if replies else None
    if question is not None:
        replies += _to_customer(
            session, conversation, customer, question.text, now=now, buttons=question.buttons
        )
    return replies
