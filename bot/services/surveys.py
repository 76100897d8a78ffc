"""CSAT and NPS in the chat, with inline buttons.

- CSAT (1–5) is asked when a conversation is resolved. If it is not answered within
  ``Services.csat_reminder_after``, one reminder is sent (:func:`due_reminders`). After a
  rating the customer may add a comment, or tap Skip.
- NPS (0–10) follows a CSAT answer, at most once per ``Services.nps_interval`` per customer.
- Answers go into ``surveys``, which the satisfaction scores and the digest read.

A button press is accepted only from the customer the survey was sent to, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.services.chat import Chat
from bot.services.context import Services
from bot.services.messages import Button, Reply
from bot.services.pending import Asked, clear
from db.engine import session_scope
from db.models import Conversation, ConversationStatus, Customer, Survey, SurveyKind

CSAT_SCALE = range(1, 6)
NPS_SCALE = range(0, 11)
# A CSAT question older than this gets no reminder any more.
REMINDER_HORIZON = timedelta(days=3)


def csat_buttons(survey_id: int) -> list[list[Button]]:
    labels = {1: "1 😞", 2: "2", 3: "3", 4: "4", 5: "5 😍"}
    return [[Button(labels[n], f"csat|{survey_id}|{n}") for n in CSAT_SCALE]]


def nps_buttons(survey_id: int) -> list[list[Button]]:
    return [
        [Button(str(n), f"nps|{survey_id}|{n}") for n in range(0, 6)],
        [Button(str(n), f"nps|{survey_id}|{n}") for n in range(6, 11)],
    ]


def ask_csat(
    services: Services,
    session: Session,
    customer: Customer,
    conversation: Conversation,
    *,
    now: datetime,
) -> Reply | None:
    """Create a CSAT survey for a resolved conversation and return the question."""
    if customer.telegram_chat_id is None or customer.id is None:
        return None
    survey = Survey(
        customer_id=customer.id, conversation_id=conversation.id, kind=SurveyKind.CSAT, sent_at=now
    )
    session.add(survey)
    session.flush()
    assert survey.id is not None
    text = services.answers.say("csat_question")
    return Reply(customer.telegram_chat_id, text, buttons=csat_buttons(survey.id))


def due_reminders(services: Services, session: Session, *, now: datetime) -> list[Reply]:
    """One reminder for each CSAT question unanswered for ``csat_reminder_after``."""
    cutoff = now - services.csat_reminder_after
    rows = session.exec(
        select(Survey, Customer)
        .join(Customer, col(Customer.id) == Survey.customer_id)
        .where(
            Survey.kind == SurveyKind.CSAT,
            col(Survey.answered_at).is_(None),
            col(Survey.reminded_at).is_(None),
            col(Survey.sent_at) <= cutoff,
            col(Survey.sent_at) > now - REMINDER_HORIZON,
            col(Customer.telegram_chat_id).is_not(None),
        )
        .order_by(col(Survey.id))
    ).all()
    replies = []
    for survey, customer in rows:
        if _with_a_human(session, survey.customer_id):  # the bot stays quiet meanwhile
            continue
        survey.reminded_at = now
        session.add(survey)
        assert survey.id is not None and customer.telegram_chat_id is not None
        text = services.answers.say("csat_reminder")
        replies.append(Reply(customer.telegram_chat_id, text, buttons=csat_buttons(survey.id)))
    return replies


def _with_a_human(session: Session, customer_id: int) -> bool:
    return (
        session.exec(
            select(Conversation.id).where(
                Conversation.customer_id == customer_id,
                Conversation.status == ConversationStatus.WAITING_HUMAN,
            )
        ).first()
        is not None
    )


def reminders_due(services: Services, *, now: datetime) -> list[Reply]:
    """:func:`due_reminders` in its own transaction (the scheduler's entry point)."""
    with session_scope(services.session_factory) as session:
        return due_reminders(services, session, now=now)


def answer(
    chat: Chat, kind: str, survey_id: int, score: int, *, message_id: int | None
) -> list[Reply]:
    """A CSAT or NPS button was pressed: store the score, thank, and ask what comes next."""
    survey = chat.session.get(Survey, survey_id)
    scale = CSAT_SCALE if kind == SurveyKind.CSAT else NPS_SCALE
    if survey is None or survey.customer_id != chat.customer.id or survey.kind != kind:
        return []
    if score not in scale:
        return []
    if survey.answered_at is not None:
        return [_edited(chat, chat.say("survey_answered"), message_id)]
    survey.score = score
    survey.answered_at = chat.now
    chat.session.add(survey)
    if kind == SurveyKind.NPS:
        clear(chat.customer)
        chat.session.add(chat.customer)
        return [_edited(chat, chat.say("nps_thanks", score=score), message_id)]
    chat.ask(Asked.SURVEY_COMMENT, survey_id=survey_id)
    thanks = chat.say("csat_thanks", score=score)
    return [_edited(chat, thanks, message_id, [[Button("Skip", f"skip|{survey_id}")]])]


def record_comment(chat: Chat, data: dict[str, object], text: str) -> list[Reply]:
    """The comment after a CSAT rating; then NPS, if it is due."""
    survey = chat.session.get(Survey, data.get("survey_id"))
    clear(chat.customer)
    chat.session.add(chat.customer)
    if survey is None or survey.customer_id != chat.customer.id:
        return []
    survey.comment = text
    chat.session.add(survey)
    return [chat.reply(chat.say("csat_comment_thanks")), *ask_nps_if_due(chat)]


def skip_comment(chat: Chat, survey_id: int, *, message_id: int | None) -> list[Reply]:
    survey = chat.session.get(Survey, survey_id)
    if survey is None or survey.customer_id != chat.customer.id:
        return []
    clear(chat.customer)
    chat.session.add(chat.customer)
    rated = chat.say("csat_rated", score=survey.score)
    return [_edited(chat, rated, message_id), *ask_nps_if_due(chat)]


def ask_nps_if_due(chat: Chat) -> list[Reply]:
    """The NPS question, unless the customer was asked within ``nps_interval``."""
    assert chat.customer.id is not None
    last = chat.session.exec(
        select(Survey.sent_at)
        .where(Survey.customer_id == chat.customer.id, Survey.kind == SurveyKind.NPS)
        .order_by(col(Survey.sent_at).desc())
    ).first()
    if last is not None and chat.now - last < chat.services.nps_interval:
        return []
    survey = Survey(customer_id=chat.customer.id, kind=SurveyKind.NPS, sent_at=chat.now)
    chat.session.add(survey)
    chat.session.flush()
    assert survey.id is not None
    return [chat.reply(chat.say("nps_question"), nps_buttons(survey.id))]


def _edited(
    chat: Chat, text: str, message_id: int | None, buttons: list[list[Button]] | None = None
) -> Reply:
    """Replace the question (and its buttons) with the answer, so it cannot be pressed
    twice; a new message if the question's message is not known."""
    reply = chat.reply(text, buttons)
    reply.edit_message_id = message_id
    return reply
