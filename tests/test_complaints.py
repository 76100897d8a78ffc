"""/complaints: how many, what about, which products, the latest with their status; the
customers it names are recorded as read."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.services.complaints import topics
from db.clock import utcnow
from db.engine import session_scope
from db.models import AuditAction, AuditEntry
from tests.conftest import STAFF_ID
from tests.helpers import say

COMPLAINTS = [
    (601, "the coffee grinder arrived broken, really disappointing"),
    (602, "your courier was rude and the parcel is three days late"),
    (603, "this is the worst service I have ever had"),
]


def test_complaints_are_counted_grouped_and_listed(services):
    services.nlu.set_products(["Coffee Grinder"])
    old = utcnow() - timedelta(days=10)
    say(services, "I want to make a complaint, the lamp is broken", user_id=604, now=old)
    for user_id, text in COMPLAINTS:
        say(services, text, user_id=user_id)
    say(services, "where is my order?", user_id=605)  # not a complaint
    (report,) = say(services, "/complaints", user_id=STAFF_ID)
    lines = report.text.splitlines()
    assert lines[0] == (
        "😠 Complaints, last 7 days: 3 from 3 customers (▲ +2 vs the 7 days before)"
    )
    assert "damaged or faulty 1" in lines[1] and "late or missing delivery 1" in lines[1]
    assert "service 2" in lines[1]
    assert lines[2] == "Products named: Coffee Grinder 1"
    assert "worst service" in lines[4] and "(waiting for a person)" in lines[4]  # newest first
    (month,) = say(services, "/complaints month", user_id=STAFF_ID)
    assert month.text.startswith("😠 Complaints, last 30 days: 4 from 4 customers")
    with session_scope(services.session_factory) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.action == AuditAction.LIST_VIEWED)
        ).all()
    assert entries[0].detail["list"] == "complaints" and len(entries[0].detail["customers"]) == 3


def test_no_complaints_and_a_bad_period(services):
    (none,) = say(services, "/complaints today", user_id=STAFF_ID)
    assert none.text.startswith("😌 No complaints, today")
    (usage,) = say(services, "/complaints year", user_id=STAFF_ID)
    assert usage.text.startswith("Usage: /complaints")
    assert say(services, "/complaints")[0].text != none.text  # customers: unknown command


def test_topics_come_from_the_words_of_the_complaint():
    assert topics("the blender stopped working after a day") == ["damaged or faulty"]
    assert topics("you sent the wrong size and my refund is late") == [
        "late or missing delivery",
        "wrong or missing item",
        "refund or payment",
    ]
    assert topics("I am not happy") == []
