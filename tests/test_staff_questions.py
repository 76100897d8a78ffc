"""Staff questions in plain words map to the staff command that answers them, or to None
(and then the help text)."""

from __future__ import annotations

import pytest

from analytics.segments import ALL_SEGMENTS
from bot.services.commands import COMMANDS
from bot.services.digest import DIGEST_PERIODS
from bot.services.staff_questions import HELP_TEXT, NEW_COMMANDS, SEGMENT_PHRASES, Route, route

ROUTES = [
    # segments, by name and loosely
    ("how many champions do we have", "segment", "Champions"),
    ("how many champoins do we have?", "segment", "Champions"),
    ("show me our best customers", "segment", "Champions"),
    ("vip list", "segment", "Champions"),
    ("loyal customers", "segment", "Loyal Customers"),
    ("how many loyal customers", "segment", "Loyal Customers"),
    ("cant lose them", "segment", "Can't Lose Them"),
    ("can't lose them", "segment", "Can't Lose Them"),
    ("Can’t Lose Them", "segment", "Can't Lose Them"),
    ("who are the customers we cannot lose", "segment", "Can't Lose Them"),
    ("new customers", "segment", "New Customers"),
    ("how many new customers this week", "segment", "New Customers"),
    ("first-time buyers", "segment", "New Customers"),
    ("promising", "segment", "Promising"),
    ("potential loyalists", "segment", "Potential Loyalist"),
    ("potentialy loyal customers", "segment", "Potential Loyalist"),
    ("who needs attention", "segment", "Need Attention"),
    ("about to sleep", "segment", "About To Sleep"),
    ("sleeping customers", "segment", "About To Sleep"),
    ("hibernating", "segment", "Hibernating"),
    ("hibernatng customers", "segment", "Hibernating"),
    ("dormant customers", "segment", "Hibernating"),
    ("lost customers", "segment", "Lost"),
    ("customers without orders", "segment", "Unclassified"),
    ("unclassified", "segment", "Unclassified"),
    # "at risk": the list, unless the segment is named or counted
    ("who is at risk", "atrisk", ""),
    ("who is at risk?", "atrisk", ""),
    ("at risk customers", "atrisk", ""),
    ("at-risk customers", "atrisk", ""),
    ("which customers are at risk of leaving", "atrisk", ""),
    ("who will churn", "atrisk", ""),
    ("customers drifting away", "atrisk", ""),
    ("how many at risk customers", "segment", "At Risk"),
    ("how many customers are at risk", "segment", "At Risk"),
    ("the at risk segment", "segment", "At Risk"),
    # all segments
    ("segments", "segments", ""),
    ("how are the segments", "segments", ""),
    ("segmnets", "segments", ""),
    ("customers per segment", "segments", ""),
    ("rfm", "segments", ""),
    ("who bought the most this year", "segment", "Champions"),
    ("our biggest spenders", "segment", "Champions"),
    # complaints
    ("what do people complain about most", "complaints", ""),
    ("show me customers who complained this week", "complaints", ""),
    ("complaints today", "complaints", "today"),
    ("any complaints this month?", "complaints", "month"),
    # satisfaction digest
    ("csat this week", "digest", "thisweek"),
    ("CSAT this week?", "digest", "thisweek"),
    ("how satisfied are customers this week", "digest", "thisweek"),
    ("csat last week", "digest", "week"),
    ("nps last 7 days", "digest", "week"),
    ("weekly report", "digest", "week"),
    ("csat today", "digest", "today"),
    ("are customers happy today", "digest", "today"),
    ("csat this month", "digest", "thismonth"),
    ("nps last month", "digest", "month"),
    ("monthly report", "digest", "month"),
    ("csat", "digest", "day"),
    ("what's our nps", "digest", "day"),
    ("satisfation yesterday", "digest", "day"),
    # one customer
    ("show customer 1234", "customer", "1234"),
    ("customer 1234", "customer", "1234"),
    ("customer #1234", "customer", "1234"),
    ("customer id: 1234", "customer", "1234"),
    ("customer no. 77", "customer", "77"),
    ("#1234", "customer", "1234"),
    ("who is @Ada_L", "customer", "@Ada_L"),
    ("customer C-00123", "customer", "C-00123"),
    ("csat of customer 12", "customer", "12"),
    ("find okafor", "customer", "okafor"),
    ("show me Isla Okafor", "customer", "Isla Okafor"),
    ("look up customer isla okafor", "customer", "isla okafor"),
    ("who is Ada Lovelace?", "customer", "Ada Lovelace"),
    # offers
    ("how did the spring offer do", "offers", "spring"),
    ("how did the spring offer do?", "offers", "spring"),
    ("offer SPRING10 results", "offers", "SPRING10"),
    ("how did the black friday campaign go", "offers", "black friday"),
    ("how did the loyalty offer do", "offers", "loyalty"),
    ("how are the offers doing", "offers", ""),
    ("offers", "offers", ""),
    # handoffs
    ("open handoffs", "handoffs", ""),
    ("hanoffs", "handoffs", ""),
    ("who is waiting", "handoffs", ""),
    ("who's waiting?", "handoffs", ""),
    ("who is waiting for a human", "handoffs", ""),
    ("any escalations?", "handoffs", ""),
    # numbers
    ("stats", "stats", ""),
    ("statistcs", "stats", ""),
    ("give me the numbers", "stats", ""),
    ("how many customers do we have", "stats", ""),
    ("intent mix", "stats", ""),
    ("how are we doing", "stats", ""),
    ("how many active customers", "stats", ""),
    ("how much revenue this month", "stats", ""),
    ("what's the average order value", "stats", ""),
    ("sales last week", "stats", ""),  # not "inactive" (Hibernating)
    ("how many conversations were answered", "stats", ""),  # not "unanswered" (handoffs)
]


@pytest.mark.parametrize(("question", "command", "args"), ROUTES)
def test_question_maps_to_the_command_that_answers_it(question, command, args):
    assert route(question) == Route(command, args)


@pytest.mark.parametrize(
    "question",
    [
        "",
        "   ",
        "hello",
        "thanks!",
        "help",
        "what is the weather like",
        "1234",
        "csat this year",
        "where is order 1234",
        "reply 12 we are on it",
        "resolve 12",
        # real words one letter away from ours are not typos of them
        "hi Ann, shipping to Canada is 12 dollars",  # not "slipping" (at risk)
        "export it",  # not "report"
        "show me something",  # not a name: not capitalised, and not after "find"
        "find the best one for me",
    ],
)
def test_unknown_questions_get_none(question):
    assert route(question) is None


def test_routes_name_existing_commands_with_valid_arguments():
    for question, _, _ in ROUTES:
        found = route(question)
        assert found is not None
        assert found.command in COMMANDS or found.command in NEW_COMMANDS
        if found.command == "segment":
            assert found.args in ALL_SEGMENTS
        if found.command == "digest":
            assert found.args in DIGEST_PERIODS
        assert not (found.command in COMMANDS and COMMANDS[found.command].admin_only)


def test_every_segment_can_be_asked_for_by_name():
    """All 12 names (the 11 segments and Unclassified), as written and in lower case; a bare
    "At Risk" is the /atrisk list (see the module docstring), counted it is the segment."""
    assert set(SEGMENT_PHRASES) == set(ALL_SEGMENTS)
    for name in ALL_SEGMENTS:
        bare = Route("atrisk") if name == "At Risk" else Route("segment", name)
        assert route(name) == bare
        assert route(f"how many {name.lower()} do we have") == Route("segment", name)


def test_route_reads_as_the_command_it_stands_for():
    assert Route("digest", "week").as_command() == "/digest week"
    assert Route("stats").as_command() == "/stats"


def test_help_text_gives_example_questions_that_are_understood():
    examples = [
        line.removeprefix("• ").split(" / ")[0].split(" (")[0]
        for line in HELP_TEXT.splitlines()
        if line.startswith("• ")
    ]
    assert len(examples) >= 6
    assert all(route(example) is not None for example in examples)
