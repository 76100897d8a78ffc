"""Four weeks of support history for the demo shop: conversations, analysed messages,
handoffs and CSAT/NPS answers, so that satisfaction scores and digests have data.

The message texts are written for the demo (our own words); every one goes through the
real NLU, so intents and sentiment in the database are what the model says, and the bot's
reply stored with it is what the bot's action for that intent answers that customer (worked
out in a savepoint that is rolled back, so the action leaves nothing else behind).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bot.services.chat import Chat
from bot.services.context import Services
from bot.services.flows import run_action
from db.models import Conversation, ConversationStatus, Customer, Interaction, Survey
from nlp import Analysis

# (message, how the customer feels: -1 unhappy, 0 neutral, 1 happy)
MESSAGES: list[tuple[str, int]] = [
    ("where is my parcel? it was supposed to come on monday", -1),
    ("hi, can you tell me when my order ships", 0),
    ("I'd like to return the lamp, it flickers", -1),
    ("how do I get an invoice for my last purchase", 0),
    ("the jacket is great, thanks a lot!", 1),
    ("I was charged twice for the same order!!", -1),
    ("can I change the delivery address on my order", 0),
    ("do you ship to Norway?", 0),
    ("my refund still hasn't arrived after two weeks", -1),
    ("thank you, that solved it", 1),
    ("the coffee grinder arrived broken, really disappointing", -1),
    ("what payment methods can I use", 0),
    ("is there any discount for returning customers?", 0),
    ("I forgot my password and the reset mail never comes", -1),
    ("super fast delivery, love it", 1),
    ("please cancel my order, I bought the wrong size", 0),
    ("this is the worst service I have ever had", -1),
    ("how long does express shipping take", 0),
    ("I want to speak to a person", -1),
    ("all good now, cheers", 1),
]


@dataclass(frozen=True)
class HistorySummary:
    conversations: int
    messages: int
    surveys: int
    answers: int


def _survey_score(rng: random.Random, mood: int, *, kind: str) -> int:
    if kind == "csat":
        base = {-1: 2.2, 0: 3.9, 1: 4.7}[mood]
        return max(1, min(5, round(rng.gauss(base, 0.8))))
    base = {-1: 4.5, 0: 7.5, 1: 9.2}[mood]
    return max(0, min(10, round(rng.gauss(base, 1.5))))


def generate_history(
    session: Session,
    services: Services,
    *,
    customer_ids: list[int],
    now: datetime,
    days: int = 28,
    seed: int = 42,
) -> HistorySummary:
    """Conversations over the last ``days`` days for a sample of ``customer_ids``."""
    rng = random.Random(seed)
    texts = [text for text, _ in MESSAGES]
    analyses = dict(zip(texts, services.nlu.analyze_many(texts), strict=True))
    chatters = rng.sample(customer_ids, k=min(len(customer_ids), 400))
    messages = surveys = answers = 0
    for customer_id in chatters:
        opened = now - timedelta(days=rng.uniform(0.2, days), hours=rng.uniform(0, 10))
        text, mood = rng.choice(MESSAGES)
        handoff = mood < 0 and rng.random() < 0.3
        resolved = rng.random() < 0.9
        conversation = Conversation(
            customer_id=customer_id,
            channel="telegram",
            opened_at=opened,
            updated_at=opened,
            status=ConversationStatus.OPEN,  # as the bot found it; the outcome is set below
            handoff_at=opened + timedelta(minutes=2) if handoff else None,
            resolved_at=opened + timedelta(hours=rng.uniform(0.1, 20)) if resolved else None,
        )
        session.add(conversation)
        session.flush()
        analysis = analyses[text]
        reply, handed_over = _bot_reply(
            services, session, customer_id, conversation, analysis, text, opened
        )
        if handoff and not handed_over:  # handed over by the trigger, not by the intent
            reply = services.answers.say("handoff_auto")
        elif handed_over and not handoff:  # the intent's action hands over (a complaint)
            handoff, conversation.handoff_at = True, opened + timedelta(minutes=1)
        conversation.status = (
            ConversationStatus.RESOLVED
            if resolved
            else (ConversationStatus.WAITING_HUMAN if handoff else ConversationStatus.OPEN)
        )
        rows: list[dict[str, Any]] = [
            {
                "customer_id": customer_id,
                "conversation_id": conversation.id,
                "direction": "in",
                "channel": "telegram",
                "kind": "text",
                "text": text,
                "intent": analysis.intent,
                "intent_confidence": analysis.confidence,
                "sentiment": analysis.sentiment,
                "sentiment_score": analysis.sentiment_score,
                "entities": analysis.entities_as_dicts(),
                "created_at": opened,
            }
        ]
        if reply:
            rows.append(
                {
                    "customer_id": customer_id,
                    "conversation_id": conversation.id,
                    "direction": "out",
                    "channel": "telegram",
                    "kind": "text",
                    "text": reply,
                    "created_at": opened + timedelta(seconds=1),
                }
            )
        session.execute(sa.insert(Interaction), rows)
        messages += 1
        if resolved and conversation.resolved_at is not None and conversation.resolved_at < now:
            kinds = ["csat"] + (["nps"] if rng.random() < 0.3 else [])
            for kind in kinds:
                answered = rng.random() < 0.6
                sent_at = conversation.resolved_at + timedelta(minutes=1)
                session.add(
                    Survey(
                        customer_id=customer_id,
                        conversation_id=conversation.id,
                        kind=kind,
                        sent_at=sent_at,
                        answered_at=sent_at + timedelta(minutes=rng.uniform(1, 90))
                        if answered
                        else None,
                        score=_survey_score(rng, mood, kind=kind) if answered else None,
                    )
                )
                surveys += 1
                answers += int(answered)
    session.flush()
    return HistorySummary(len(chatters), messages, surveys, answers)


def _bot_reply(
    services: Services,
    session: Session,
    customer_id: int,
    conversation: Conversation,
    analysis: Analysis,
    text: str,
    now: datetime,
) -> tuple[str, bool]:
    """What the bot's action answers this customer, and whether it handed the chat over;
    its side effects are rolled back."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        return "", False
    savepoint = session.begin_nested()
    try:
        chat = Chat(services, session, customer, conversation, customer_id, now)
        replies = run_action(chat, analysis, message_text=text)
        handed_over = conversation.status == ConversationStatus.WAITING_HUMAN
    finally:
        savepoint.rollback()
    text = "\n\n".join(r.text for r in replies if r.chat_id == customer_id and r.text)
    return text, handed_over
