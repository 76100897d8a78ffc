"""CSAT after a resolution (buttons, one reminder, a comment), NPS at most every 90 days,
and survey buttons that only their own customer can press, once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.services.buttons import STALE_BUTTON
from bot.services.surveys import due_reminders
from db.clock import utcnow
from db.engine import session_scope
from db.models import Survey, SurveyKind
from tests.conftest import STAFF_ID
from tests.helpers import button_data, press, say, texts_to

CUSTOMER = 501


def resolve_a_handoff(services, *, user_id: int = CUSTOMER, now=None) -> list:
    replies = say(services, "I want to talk to a real person", user_id=user_id, now=now)
    take = [d for d in button_data(replies, STAFF_ID) if d.startswith("take|")]
    conversation_id = take[0].split("|")[1]
    return say(services, f"/resolve {conversation_id}", user_id=STAFF_ID, now=now)


def surveys(services) -> list[Survey]:
    with session_scope(services.session_factory) as session:
        return list(session.exec(select(Survey).order_by(Survey.id)).all())


def test_resolution_asks_csat_with_five_buttons(services):
    replies = resolve_a_handoff(services)
    assert any("resolved" in t for t in texts_to(replies, CUSTOMER))
    buttons = button_data(replies, CUSTOMER)
    (survey,) = surveys(services)
    assert buttons == [f"csat|{survey.id}|{n}" for n in range(1, 6)]
    assert survey.kind == SurveyKind.CSAT and survey.answered_at is None


def test_csat_answer_comment_then_nps_once_per_interval(services):
    resolve_a_handoff(services)
    (csat,) = surveys(services)
    notice, replies = press(services, f"csat|{csat.id}|4", message_id=77)
    assert notice is None
    (thanks,) = replies
    assert thanks.edit_message_id == 77, "the question is replaced, its buttons gone"
    assert "4/5" in thanks.text and button_data(replies, CUSTOMER) == [f"skip|{csat.id}"]

    replies = say(services, "The agent was quick, thanks!")
    assert "comment" in texts_to(replies, CUSTOMER)[0]
    nps_buttons = [d for d in button_data(replies, CUSTOMER) if d.startswith("nps|")]
    assert len(nps_buttons) == 11
    csat, _ = surveys(services)
    assert (csat.score, csat.comment) == (4, "The agent was quick, thanks!")

    _, replies = press(services, nps_buttons[9])
    assert "9/10" in texts_to(replies, CUSTOMER)[0]
    assert surveys(services)[1].score == 9

    # A second resolution a month later: CSAT again, but no second NPS.
    later = utcnow() + timedelta(days=30)
    resolve_a_handoff(services, now=later)
    third = surveys(services)[-1]
    _, _ = press(services, f"csat|{third.id}|5", now=later)
    _, replies = press(services, f"skip|{third.id}", now=later)
    assert not any(d.startswith("nps|") for d in button_data(replies, CUSTOMER))
    assert [s.kind for s in surveys(services)] == ["csat", "nps", "csat"]


def test_a_survey_is_answered_once_and_only_by_its_customer(services):
    resolve_a_handoff(services)
    (csat,) = surveys(services)
    say(services, "hi", user_id=777)
    assert press(services, f"csat|{csat.id}|1", user_id=777) == (STALE_BUTTON, [])
    assert press(services, f"csat|{csat.id}|9") == (STALE_BUTTON, []), "out of scale"
    press(services, f"csat|{csat.id}|5")
    _, (again,) = press(services, f"csat|{csat.id}|1")
    assert "already" in again.text
    assert surveys(services)[0].score == 5


def test_unanswered_csat_gets_exactly_one_reminder(services):
    resolve_a_handoff(services)
    with session_scope(services.session_factory) as session:
        assert due_reminders(services, session, now=utcnow()) == [], "not yet"
    later = utcnow() + services.csat_reminder_after + timedelta(minutes=1)
    with session_scope(services.session_factory) as session:
        (reminder,) = due_reminders(services, session, now=later)
    assert reminder.chat_id == CUSTOMER and "reminder" in reminder.text
    assert len(reminder.buttons[0]) == 5
    with session_scope(services.session_factory) as session:
        assert due_reminders(services, session, now=later + timedelta(hours=5)) == []


def test_answered_csat_gets_no_reminder(services):
    resolve_a_handoff(services)
    (csat,) = surveys(services)
    press(services, f"csat|{csat.id}|3")
    later = utcnow() + services.csat_reminder_after + timedelta(minutes=1)
    with session_scope(services.session_factory) as session:
        assert due_reminders(services, session, now=later) == []


def test_late_rating_does_not_reopen_the_conversation(services):
    resolve_a_handoff(services)
    (csat,) = surveys(services)
    press(services, f"csat|{csat.id}|2")
    from db.models import Conversation

    with session_scope(services.session_factory) as session:
        statuses = session.exec(select(Conversation.status)).all()
    assert statuses == ["resolved"]


def test_no_reminder_while_a_human_has_the_chat_again(services):
    resolve_a_handoff(services)
    say(services, "I want to talk to a real person")  # a new handoff, still open
    later = utcnow() + services.csat_reminder_after + timedelta(minutes=1)
    with session_scope(services.session_factory) as session:
        assert due_reminders(services, session, now=later) == []
