"""What every step of a conversation works with: the customer, their conversation, the
session, the chat to answer in, and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.services import handoff, pending
from bot.services.answers import Action, render
from bot.services.context import Services
from bot.services.messages import Button, Reply
from db.models import Conversation, Customer
from nlp import Analysis


@dataclass
class Chat:
    services: Services
    session: Session
    customer: Customer
    conversation: Conversation
    chat_id: int
    now: datetime

    def text(self, template: str | None, **values: Any) -> str:
        """Fill a template with the customer's name, the shop's name and ``values``."""
        return render(template or "", **self._names(), **values)

    def say(self, key: str, **values: Any) -> str:
        """A text of answers.yml's ``texts`` section, filled in."""
        return self.services.answers.say(key, **self._names(), **values)

    def reply(self, text: str, buttons: list[list[Button]] | None = None) -> Reply:
        return Reply(self.chat_id, text, buttons=buttons or [])

    def offer_person(self) -> list[list[Button]]:
        """The "Talk to a person" button (pressed, it hands the chat over). Unless the bot
        asks something else in this answer, a typed "yes please" takes the offer up too
        (``Asked.PERSON``)."""
        if pending.current(self.customer, now=self.now) is None:
            self.ask(pending.Asked.PERSON)
        return [[Button(self.say("talk_to_person"), "hum")]]

    def hand_over(self, *, reason: str, text: str) -> list[Reply]:
        """Hand this conversation to a person, telling the customer ``text`` (see
        :func:`bot.services.handoff.hand_over`)."""
        return handoff.hand_over(
            self.services,
            self.session,
            self.customer,
            self.conversation,
            reason=reason,
            chat_id=self.chat_id,
            text=text,
            now=self.now,
        )

    def ask(self, kind: pending.Asked, *, attempts: int = 0, **data: Any) -> None:
        """Remember the question the bot is asking now (see :mod:`bot.services.pending`)."""
        pending.ask(
            self.customer,
            kind,
            now=self.now,
            ttl=self.services.question_ttl,
            attempts=attempts,
            **data,
        )
        self.session.add(self.customer)

    def to_staff(self, text: str, buttons: list[list[Button]] | None = None) -> list[Reply]:
        return [Reply(d, text, buttons=buttons or []) for d in self.services.staff_destinations()]

    def flow(self, analysis: Analysis, action: Action, *, message_text: str = "") -> FlowInput:
        """This chat step, starting from an analysed message and its intent's action."""
        return FlowInput(
            self.services,
            self.session,
            self.customer,
            self.conversation,
            self.chat_id,
            self.now,
            analysis=analysis,
            action=action,
            message_text=message_text,
        )

    def _names(self) -> dict[str, str]:
        return {"name": self.customer.first_name or "there", "shop": self.services.shop_name}


@dataclass
class FlowInput(Chat):
    """A chat step that starts from an analysed message and the action of its intent."""

    analysis: Analysis
    action: Action
    message_text: str = ""
