"""The analytics refresh on a generated shop: snapshots, segments, clusters, CLV, and the
staff views built on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from analytics.segments import ALL_SEGMENTS
from bot.services.assistant import UNKNOWN_COMMAND
from bot.services.buttons import STALE_BUTTON, handle_callback
from bot.services.messages import IncomingCallback
from bot.services.refresh import run_refresh
from db.engine import session_scope
from db.models import Customer, CustomerSnapshot
from tests.conftest import STAFF_ID
from tests.helpers import say, sender


def test_refresh_stores_one_snapshot_row_per_customer(shop):
    result = run_refresh(shop, as_of=datetime.now(UTC))
    with session_scope(shop.session_factory) as session:
        customers = session.exec(select(func.count()).select_from(Customer)).one()
        rows = session.exec(select(CustomerSnapshot)).all()
    assert result.customers == customers == len(rows) == 300
    assert sum(result.segments.values()) == 300
    assert set(result.segments) <= set(ALL_SEGMENTS)
    assert result.clv_fitted and result.clusters
    scored = [r for r in rows if r.r_score]
    assert all(1 <= r.r_score <= 5 and r.segment != "Unclassified" for r in scored)
    assert all(r.p_alive is not None and 0 <= r.p_alive <= 1 for r in scored)
    assert all(r.satisfaction is not None and 0 <= r.satisfaction <= 100 for r in rows)
    assert all(r.cluster for r in scored)


def test_refresh_again_on_the_same_day_replaces_the_snapshot(shop):
    run_refresh(shop, as_of=datetime.now(UTC))
    run_refresh(shop, as_of=datetime.now(UTC))
    with session_scope(shop.session_factory) as session:
        assert session.exec(select(func.count()).select_from(CustomerSnapshot)).one() == 300


def test_segments_command_shows_counts_and_change(shop):
    assert "No analytics yet" in say(shop, "/segments", user_id=STAFF_ID)[0].text
    run_refresh(shop, as_of=datetime.now(UTC) - timedelta(days=7))
    run_refresh(shop, as_of=datetime.now(UTC))
    (answer,) = say(shop, "/segments", user_id=STAFF_ID)
    assert "300 customers" in answer.text and "change since" in answer.text
    assert "Champions:" in answer.text


def test_segment_pages_with_buttons_and_authorised_presses(shop):
    run_refresh(shop, as_of=datetime.now(UTC))
    (page,) = say(shop, "/segment loyal customers", user_id=STAFF_ID)
    assert page.text.startswith("Loyal Customers:") and "page 1/" in page.text
    (button,) = page.buttons[0]
    assert button.data == "seg|Loyal Customers|1"
    press = IncomingCallback(sender=sender(STAFF_ID), data=button.data, message_id=55)
    notice, (edit,) = handle_callback(shop, press)
    assert notice is None and edit.edit_message_id == 55 and "page 2/" in edit.text
    stranger = IncomingCallback(sender=sender(501), data=button.data, message_id=55)
    assert handle_callback(shop, stranger) == (STALE_BUTTON, [])
    assert "Usage: /segment NAME" in say(shop, "/segment nonsense", user_id=STAFF_ID)[0].text
    (loose,) = say(shop, "/segment champs", user_id=STAFF_ID)  # as in plain questions
    assert loose.text.startswith("Champions:")


def test_customer_profile_and_at_risk(shop):
    run_refresh(shop, as_of=datetime.now(UTC))
    (profile,) = say(shop, "/customer C00005", user_id=STAFF_ID)
    assert profile.text.startswith("👤 #5 ") and "Segment:" in profile.text
    assert "Last orders:" in profile.text
    assert "No customer matches" in say(shop, "/customer nobody", user_id=STAFF_ID)[0].text
    (risky,) = say(shop, "/atrisk", user_id=STAFF_ID)
    assert "drifting away" in risky.text or "No customers at risk" in risky.text


def test_customer_by_name_shows_one_or_lists_several(services):
    with session_scope(services.session_factory) as session:
        session.add(Customer(first_name="Zelda", last_name="Quist", username="zq"))
        for n in range(12):
            session.add(Customer(first_name=f"Name{n}", last_name="Okafor"))
        session.add(Customer(first_name="Ida", last_name="Okafor"))
    (one,) = say(services, "/customer zelda qu", user_id=STAFF_ID)
    assert one.text.startswith("👤 #1 Zelda Quist (@zq)")
    (two,) = say(services, "/customer Okafor Name1", user_id=STAFF_ID)  # Name1, Name10, Name11
    assert (
        two.text.splitlines()[0] == "3 customers match 'Okafor Name1', most recently seen first:"
    )
    (many,) = say(services, "/customer okafor", user_id=STAFF_ID)
    lines = many.text.splitlines()
    assert lines[0] == "The 10 most recently seen of the customers matching 'okafor':"
    assert len(lines) == 12 and lines[-1].endswith("or add to the name.")
    assert lines[1].endswith(" · 0 orders · last seen " + lines[1].rsplit("last seen ", 1)[1])
    (none,) = say(services, "/customer 50%_x", user_id=STAFF_ID)  # LIKE wildcards are literal
    assert none.text.startswith("No customer matches")


def test_digest_command_sends_text_and_chart(shop):
    run_refresh(shop, as_of=datetime.now(UTC))
    say(shop, "this is ridiculous, my parcel is late again")
    (digest,) = say(shop, "/digest week", user_id=STAFF_ID)
    assert digest.photo is not None and digest.photo.startswith(b"\x89PNG")
    assert digest.text.startswith("📈 Weekly digest") and "Segments" in digest.text
    assert "Usage: /digest" in say(shop, "/digest year", user_id=STAFF_ID)[0].text
    (today,) = say(shop, "/digest today", user_id=STAFF_ID)  # so far: the message counts
    assert today.text.startswith("📈 Today so far") and "Customer messages: 1" in today.text
    (month,) = say(shop, "/digest this month", user_id=STAFF_ID)
    assert month.text.startswith("📈 This month so far") and month.photo is not None


def test_analytics_commands_are_refused_to_customers(shop):
    for command in ("/segments", "/segment Champions", "/customer 1", "/atrisk", "/digest"):
        assert say(shop, command)[0].text == UNKNOWN_COMMAND


def test_customers_are_answered_while_the_refresh_computes(shop, monkeypatch):
    """The refresh reads and computes outside the SQLite turn: a customer's message is
    stored and answered while it is mid-way (it used to wait for the whole refresh)."""
    import threading

    from bot.services import refresh

    inside, release = threading.Event(), threading.Event()
    real = refresh.score_rfm

    def held(*args, **kwargs):
        inside.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(refresh, "score_rfm", held)
    done: list = []
    worker = threading.Thread(
        target=lambda: done.append(run_refresh(shop, as_of=datetime.now(UTC)))
    )
    worker.start()
    try:
        assert inside.wait(60), "the refresh reached its scoring step"
        answered: list = []
        customer = threading.Thread(target=lambda: answered.append(say(shop, "hello there")))
        customer.start()
        customer.join(60)  # a bound for a failing run only: without the fix this waits
        answered_meanwhile = bool(answered and answered[0])
    finally:
        release.set()
        worker.join(60)
    assert answered_meanwhile
    assert done and done[0].customers > 0  # and the refresh finished, snapshot written
