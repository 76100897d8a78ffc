"""Fuzzing: any text a customer can send (unicode, right-to-left, zero-width characters,
emoji, control characters, 0 to 20,000 characters) goes through analyze() and through the
bot without raising, and is stored exactly as sent."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.services.assistant import handle_message
from bot.services.messages import IncomingMessage
from db.engine import session_scope
from db.models import Interaction
from nlp import SENTIMENTS
from tests.helpers import sender

SPECIALS = [
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u200e",  # left-to-right mark
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\x00",
    "\x07",
    "\x1b[31m",
    "\r\n",
    "שלום",  # Hebrew
    "مرحبا",  # Arabic
    "👨‍👩‍👧‍👦",  # a family emoji (joined)
    "🇩🇪",
    "*bold* _it_ `code` [link](http://x)",
    "<b>bold</b> &amp; <script>",
    "#10234",
    "\U0010ffff",
]

texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(SPECIALS) | st.text(max_size=20), max_size=40).map("".join),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=4000, max_size=20000),
)
_ids = itertools.count(50_000_000)


@settings(max_examples=150, deadline=None)
@given(texts)
def test_analyze_never_raises_and_answers_in_its_ranges(nlu, text):
    analysis = nlu.analyze(text)
    assert analysis.intent in nlu.intents or analysis.intent == "out_of_scope"
    assert 0 <= analysis.confidence <= 1 and analysis.sentiment in SENTIMENTS
    assert -1 <= analysis.sentiment_score <= 1
    for entity in analysis.entities:
        assert text[entity.start_char : entity.end_char] == entity.text


@pytest.fixture
def sqlite_services(services, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL variant runs the fixed cases below")
    return services


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=texts)
def test_any_text_through_the_bot_is_stored_exactly_and_answered(sqlite_services, text):
    _through_the_bot(sqlite_services, text)


@pytest.mark.parametrize("text", ["", *SPECIALS, "".join(SPECIALS) * 300])
def test_hard_cases_through_the_bot_on_every_database(services, text):
    _through_the_bot(services, text)


def _through_the_bot(services, text: str) -> None:
    update_id = next(_ids)
    message = IncomingMessage(
        sender=sender(update_id % 1_000_000 + 10), text=text, update_id=update_id
    )
    replies = handle_message(services, message)
    assert replies and all(r.text.strip() for r in replies), "every message gets an answer"
    with session_scope(services.session_factory) as session:
        stored = session.exec(
            select(Interaction).where(Interaction.telegram_update_id == update_id)
        ).one()
        assert stored.text == text
