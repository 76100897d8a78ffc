"""Asking back when the NLU is unsure, and acting on the customer's choice.

In the clarify band (:meth:`nlp.NLU.needs_clarification`) the bot offers the two or three
most likely intents as buttons, plus "something else". The intent the customer picks is
stored on their message (``interactions.chosen_intent``), so that the message and its
label can be used for retraining (``crmbot nlu feedback``), and then acted on.
"""

from __future__ import annotations

from sqlmodel import Session

from bot.services.chat import Chat
from bot.services.flows import run_action
from bot.services.messages import Button, Reply
from bot.services.pending import Asked, Pending
from db.models import Interaction
from nlp import OUT_OF_SCOPE, Analysis, Entity

MAX_CHOICES = 3
NONE = "none"


def ask_back(chat: Chat, analysis: Analysis, *, interaction_id: int) -> list[Reply]:
    """Offer the most likely intents as buttons; remember which message they are about."""
    options = [intent for intent, _ in analysis.intent_ranking[:MAX_CHOICES]]
    options = [o for o in options if o != OUT_OF_SCOPE] or [analysis.intent]
    answers = chat.services.answers
    buttons = [[Button(answers.action(o).button_label, f"clar|{o}")] for o in options]
    buttons.append([Button(answers.action(OUT_OF_SCOPE).button_label, f"clar|{NONE}")])
    chat.ask(Asked.CLARIFY, options=options, interaction_id=interaction_id)
    return [chat.reply(chat.say("clarify"), buttons)]


def chosen(chat: Chat, waiting: Pending, choice: str) -> list[Reply]:
    """The customer pressed one of :func:`ask_back`'s buttons."""
    message = chat.session.get(Interaction, waiting.data.get("interaction_id"))
    if choice == NONE or message is None or choice not in waiting.data.get("options", []):
        return [chat.reply(chat.say("clarify_none"), chat.offer_person())]
    message.chosen_intent = choice
    chat.session.add(message)
    return run_action(chat, analysis_of(message, intent=choice), message_text=message.text)


def talk_to_person(chat: Chat) -> list[Reply]:
    action = chat.services.answers.action("contact_human_agent")
    return chat.hand_over(reason="contact_human_agent", text=chat.text(action.text))


def analysis_of(message: Interaction, *, intent: str) -> Analysis:
    """The stored analysis of a message, with the intent the customer confirmed."""
    entities = tuple(
        Entity(
            label=str(e.get("label")),
            text=str(e.get("text")),
            start_char=int(e.get("start_char") or 0),
            end_char=int(e.get("end_char") or 0),
            value=e.get("value"),
        )
        for e in message.entities or []
    )
    return Analysis(
        intent=intent,
        confidence=1.0,
        sentiment=message.sentiment or "neutral",
        sentiment_score=message.sentiment_score or 0.0,
        entities=entities,
        top_intent=intent,
    )


def labelled_messages(session: Session) -> list[tuple[str, str]]:
    """(text, intent) for every message whose intent a customer chose: retraining data."""
    from sqlmodel import col, select

    rows = session.exec(
        select(Interaction.text, Interaction.chosen_intent)
        .where(col(Interaction.chosen_intent).is_not(None))
        .order_by(col(Interaction.id))
    ).all()
    return [(text, str(intent)) for text, intent in rows if text]
