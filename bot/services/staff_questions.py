"""Staff questions in plain words, mapped to the staff commands that answer them.

``route("how many champions do we have")`` gives ``Route("segment", "Champions")``: the
caller runs that command's handler with those arguments, exactly as if the staff member had
typed ``/segment Champions``, so answers, permissions and audit entries are the same.
``None`` means the question was not understood: answer with :data:`HELP_TEXT`.

How it works: the question is lower-cased and tokenised by a blank English spaCy pipeline
(no model, built once on first use); words of five letters or more that are not ours are
corrected to a word of our phrases that they miss by one slip of the keyboard ("champoins",
"segmnets", "hanoffs"; see :func:`is_slip`); then a ``PhraseMatcher`` finds the phrases of
:data:`PHRASES` and a ``Matcher`` the customer references ("customer 1234", "#1234",
"@ada") and offer names ("the spring offer"). The first rule of :func:`route` that fits wins:

1. a customer reference → ``customer`` (a question about one customer beats everything):
   an id ("customer 1234", "#1234", "@ada"), or a name after a lookup word ("find okafor",
   "show me Isla Okafor": capitalised unless the word is customer, client, find, look up);
2. offers, campaigns, promos → ``offers`` with the offer's name if one is given;
3. handoffs, "who is waiting" → ``handoffs``;
   complaints, "what do people complain about" → ``complaints`` (``today``, ``month``, or
   the last 7 days);
4. satisfaction, CSAT, NPS, the digest, a report → ``digest`` with its period: "today",
   "this week", "this month" → so far (``today``, ``thisweek``, ``thismonth``);
   "yesterday", "last week", "7 days", "last month", "30 days" → the last complete one
   (``day``, ``week``, ``month``); no period → ``day``, like ``/digest``. A period we have
   no digest for ("this year") is not guessed: ``None``;
5. "at risk": "who is at risk", "at risk customers" → ``atrisk``, the list of valuable
   customers drifting away (Can't Lose Them, At Risk and About To Sleep), which is what
   staff usually mean. Only when the question names the segment ("the at risk segment") or
   asks for a count ("how many are at risk") → ``segment At Risk``;
6. a segment's name, loosely ("champs", "cant lose them", "sleeping customers",
   "potential loyalists", "dormant") → ``segment`` with its exact name;
7. churn words without a segment ("who will churn", "drifting away") → ``atrisk``;
8. the segments in general ("segments", "rfm", "customers per segment") → ``segments``;
9. numbers in general ("stats", "how are we doing", "how many customers", "sentiment",
   "revenue", "average order value") → ``stats``.

Actions (``/reply``, ``/resolve``) and admin commands (``/audit``) are never reached from
free text: they change things, and a misunderstood sentence must not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import spacy
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

if TYPE_CHECKING:
    from spacy.language import Language

NEW_COMMANDS = frozenset({"offers"})
"""Commands a route can name that are not (yet) in ``bot.services.commands.COMMANDS``."""

HELP_TEXT = (
    "I didn't get that question. You can ask me, for example:\n"
    "• how many champions do we have?\n"
    "• how are the segments?\n"
    "• csat this week / csat today\n"
    "• who is at risk?\n"
    "• show customer 1234 (or @username, or find okafor)\n"
    "• how did the spring offer do?\n"
    "• who is waiting?\n"
    "• what do customers complain about?\n"
    "• stats\n"
    "Or send /help for the commands."
)


@dataclass(frozen=True, slots=True)
class Route:
    """A staff command and its argument string, e.g. ``Route("digest", "week")``."""

    command: str
    args: str = ""

    def as_command(self) -> str:
        """How the staff member could have typed it: ``/digest week``."""
        return f"/{self.command} {self.args}".rstrip()


# --- phrases -----------------------------------------------------------------------------

SEGMENT_PHRASES: dict[str, tuple[str, ...]] = {
    "Champions": ("champions", "champion", "champs", "best customers", "top customers",
                  "vip", "vips", "vip customers", "biggest spenders", "top spenders",
                  "spent the most", "spend the most", "bought the most", "buy the most",
                  "most valuable customers"),
    "Loyal Customers": ("loyal customers", "loyal", "loyal ones", "regulars",
                        "regular customers"),
    "Can't Lose Them": ("can't lose them", "cant lose them", "cannot lose them",
                        "can not lose them", "can't lose", "cant lose", "cannot lose",
                        "can't loose them", "cant loose them", "must not lose"),
    "At Risk": (),  # "at risk" is rule 5, see the module docstring
    "New Customers": ("new customers", "new customer", "new buyers", "newcomers",
                      "first time buyers", "first-time buyers"),
    "Promising": ("promising", "promising customers", "promising ones"),
    "Potential Loyalist": ("potential loyalist", "potential loyalists", "loyalist",
                           "loyalists", "potential loyal", "potentially loyal"),
    "Need Attention": ("need attention", "needs attention", "needing attention",
                       "need some attention"),
    "About To Sleep": ("about to sleep", "sleeping", "sleepy", "falling asleep",
                       "asleep", "going to sleep", "sleepers"),
    "Hibernating": ("hibernating", "hibernate", "dormant", "inactive"),
    "Lost": ("lost", "lost customers", "lost ones", "gone", "churned"),
    "Unclassified": ("unclassified", "without orders", "no orders", "never ordered",
                     "not classified"),
}  # fmt: skip

PHRASES: dict[str, tuple[str, ...]] = {
    "CUSTOMER": ("customer", "client", "buyer", "profile", "user", "look up", "lookup",
                 "find", "show me", "who is"),
    "OFFER": ("offer", "offers", "campaign", "campaigns", "promo", "promos", "promotion",
              "promotions", "coupon", "coupons", "deal", "deals", "voucher", "vouchers"),
    "HANDOFF": ("handoff", "handoffs", "hand off", "hand offs", "handover", "handovers",
                "hand over", "waiting", "queue", "queued", "unanswered", "open chats",
                "open conversations", "need a human", "needs a human", "escalated",
                "escalations", "pending chats", "taken over"),
    "COMPLAINT": ("complaint", "complaints", "complain", "complaining", "complained",
                  "grievances", "moaning"),
    "SATISFACTION": ("csat", "nps", "satisfaction", "satisfied", "unsatisfied",
                     "dissatisfied", "happy", "unhappy", "ratings", "rating", "digest",
                     "report", "feedback", "survey", "surveys", "net promoter",
                     "summary"),
    "TODAY": ("today", "this morning", "tonight", "so far today"),
    "DAY": ("day", "daily", "yesterday", "24 hours", "24h", "last day"),
    "THIS_WEEK": ("this week", "week so far", "so far this week"),
    "WEEK": ("week", "weekly", "7 days", "seven days", "last week", "past week", "weeks"),
    "THIS_MONTH": ("this month", "month so far", "so far this month"),
    "MONTH": ("month", "monthly", "months", "30 days", "last month", "past month"),
    "OTHER_PERIOD": ("year", "yearly", "quarter", "ytd"),
    "AT_RISK": ("at risk", "at-risk", "risky"),
    "RISK": ("churn", "churning", "likely to churn", "about to churn", "drifting",
             "drifting away", "slipping", "slipping away", "likely to leave",
             "going away", "at risk of leaving"),
    "SEGMENT_WORD": ("segment", "segments", "rfm", "segmentation", "per segment",
                     "each segment", "by segment", "all segments", "segment breakdown"),
    "COUNT": ("how many", "number of", "count", "count of", "how much"),
    "STATS": ("stats", "statistics", "stat", "numbers", "overview", "dashboard", "kpi",
              "kpis", "metrics", "how are we doing", "how is it going", "how are things",
              "intents", "intent mix", "sentiment", "mood", "messages", "conversations",
              "customers", "traffic", "volume", "revenue", "sales", "turnover", "income",
              "average order", "order value", "aov", "sold", "how much did we sell"),
}  # fmt: skip

# Period phrases, to the digest's period names (the first one found counts).
DIGEST_PERIOD_WORDS = (
    ("THIS_MONTH", "thismonth"),
    ("MONTH", "month"),
    ("THIS_WEEK", "thisweek"),
    ("WEEK", "week"),
    ("TODAY", "today"),
    ("DAY", "day"),
)

# Words around "offer" that are not its name: "how did the offer do", "offer results".
NOT_OFFER_NAMES = frozenset({
    "how", "what", "which", "did", "do", "does", "doing", "done", "go", "went", "going",
    "work", "worked", "working", "perform", "performed", "performing", "results", "result",
    "performance", "conversion", "conversions", "stats", "numbers", "uplift", "redeemed",
    "redemptions", "redemption", "sent", "the", "a", "an", "our", "my", "this", "that", "last",
    "latest", "current", "new", "all", "each", "every", "any", "is", "are", "was", "were",
    "of", "for", "on", "in", "to", "with", "about", "give", "show", "me", "tell", "status",
    "report",
})  # fmt: skip

# Words between "customer" and the id: "customer no. 12", "customer id: 12", "customer #12".
ID_WORDS = frozenset({"#", "no", ".", "number", "nr", "id", "i", "d", ":", "with"})

MIN_TYPO_LENGTH = 5


def is_slip(word: str, target: str) -> bool:
    """True if ``word`` is ``target`` typed with one slip: a letter left out, one too many,
    or two neighbours swapped ("hanoffs", "champoins"); the first letter is right. A wrong
    letter does not count: that is how real words differ ("shipping" is not "slipping",
    "spending" not "pending")."""
    if word == target or word[:1] != target[:1]:
        return False
    if len(word) == len(target):
        diff = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and word[diff[0]] == target[diff[1]]
            and word[diff[1]] == target[diff[0]]
        )
    short, long = sorted((word, target), key=len)
    if len(long) - len(short) != 1:
        return False
    return any(long[:i] + long[i + 1 :] == short for i in range(1, len(long)))


# --- the pipeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Matchers:
    nlp: Language
    phrases: PhraseMatcher
    patterns: Matcher
    vocabulary: tuple[str, ...]


def _normalise(text: str) -> str:
    """Lower case, straight apostrophes, and hyphens between words as spaces."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    return re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)


@cache
def _matchers() -> _Matchers:
    """The blank pipeline and the matchers, built once (about 50 ms)."""
    nlp = spacy.blank("en")
    phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
    vocabulary: set[str] = set()
    table = {**PHRASES, **{f"SEG:{name}": p for name, p in SEGMENT_PHRASES.items()}}
    for label, texts in table.items():
        docs = [nlp.make_doc(_normalise(text)) for text in texts]
        if docs:
            phrases.add(label, docs)
        vocabulary.update(t.text for doc in docs for t in doc if len(t.text) >= MIN_TYPO_LENGTH)
    patterns = Matcher(nlp.vocab)
    ident = {"TEXT": {"REGEX": r"^(@\w+|[a-z]*[-_]?\d[\w-]*)$"}}
    patterns.add(
        "CUSTOMER_REF",
        [
            # "customer 1234", "customer #1234", "customer id: 1234" ("id" is two tokens)
            [{"LOWER": {"IN": ["customer", "client", "buyer", "profile", "user"]}},
             {"LOWER": {"IN": list(ID_WORDS)}, "OP": "*"}, ident],
            [{"ORTH": "#"}, {"LIKE_NUM": True}],
            [{"TEXT": {"REGEX": r"^@\w{3,}$"}}],
        ],
    )  # fmt: skip
    return _Matchers(nlp, phrases, patterns, tuple(sorted(vocabulary)))


def _find(text: str) -> _Found:
    """Tokenise, correct typos against our own phrases, and find the phrases."""
    m = _matchers()
    normalised = _normalise(text)
    tokens = m.nlp.make_doc(normalised)
    same_length = len(normalised) == len(text)  # lower() keeps offsets for nearly all text
    words, originals = [], []
    for token in tokens:
        word = token.text
        if len(word) >= MIN_TYPO_LENGTH and token.is_alpha and word not in m.vocabulary:
            word = next((v for v in m.vocabulary if is_slip(word, v)), word)
        words.append(word)
        originals.append(text[token.idx : token.idx + len(token)] if same_length else token.text)
    doc = Doc(m.nlp.vocab, words=words, spaces=[bool(t.whitespace_) for t in tokens])
    # Longest phrases win where they overlap ("potential loyalist" over "loyal",
    # "at risk of leaving" over "at risk").
    spans = filter_spans(m.phrases(doc, as_spans=True))
    return _Found(doc, originals, {s.label_ for s in spans}, spans)


@dataclass(frozen=True)
class _Found:
    doc: Doc
    originals: list[str]  # each token as the staff member wrote it (case, typos)
    labels: set[str]
    spans: list[Span]

    def has(self, *labels: str) -> bool:
        return any(label in self.labels for label in labels)

    def segment(self) -> str | None:
        """The longest segment phrase, by its exact name."""
        named = [s for s in self.spans if s.label_.startswith("SEG:")]
        best = max(named, key=len, default=None)
        return best.label_[4:] if best is not None else None

    def written(self, start: int, end: int) -> str:
        """Tokens ``start:end`` as written (offer codes may be upper case)."""
        return " ".join(self.originals[start:end])


# --- the rules ---------------------------------------------------------------------------


def route(text: str) -> Route | None:
    """The staff command that answers this question, or None if it was not understood."""
    if not text.strip():
        return None
    found = _find(text)
    customer = _customer_reference(found) or _customer_name(found)
    if customer is not None:
        return Route("customer", customer)
    if found.has("OFFER"):
        return Route("offers", _offer_name(found))
    if found.has("HANDOFF"):
        return Route("handoffs")
    if found.has("COMPLAINT"):
        if found.has("TODAY", "DAY"):
            return Route("complaints", "today")
        return Route("complaints", "month" if found.has("MONTH", "THIS_MONTH") else "")
    if found.has("SATISFACTION"):
        period = next((name for label, name in DIGEST_PERIOD_WORDS if found.has(label)), None)
        if period is None and found.has("OTHER_PERIOD"):
            return None
        return Route("digest", period or "day")
    if found.has("AT_RISK"):
        if found.has("SEGMENT_WORD", "COUNT"):
            return Route("segment", "At Risk")
        return Route("atrisk")
    segment = found.segment()
    if segment is not None:
        return Route("segment", segment)
    if found.has("RISK"):
        return Route("atrisk")
    if found.has("SEGMENT_WORD"):
        return Route("segments")
    if found.has("STATS", "COUNT"):
        return Route("stats")
    return None


def _customer_reference(found: _Found) -> str | None:
    """``1234``, ``#1234``, ``@ada`` or an external id after "customer", "client" …"""
    matches = _matchers().patterns(found.doc, as_spans=True)
    if not matches:
        return None
    span = max(matches, key=lambda s: (s.end - s.start, -s.start))
    ident = found.written(span.end - 1, span.end)
    return ident if ident.startswith("@") else ident.lstrip("#")


# Lookup words after which plain words are a name ("find okafor", "customer isla okafor");
# after the others ("show me", "who is") only capitalised words are ("show me Isla Okafor").
LOOKUP_WORDS = frozenset({"customer", "client", "buyer", "profile", "find", "look up", "lookup"})
# Words that are not (part of) a name.
NOT_NAMES = frozenset({
    "the", "a", "an", "our", "my", "all", "any", "some", "me", "us", "named", "called",
    "with", "for", "of", "about", "please", "is", "are", "new", "best", "top", "this", "that",
})  # fmt: skip
MAX_NAME_WORDS = 3


def _customer_name(found: _Found) -> str | None:
    """A customer's name after a lookup word ("find okafor", "show me Isla Okafor"), as
    written; None when the words after it are ours (phrases) or not a name."""
    lookup = next((s for s in found.spans if s.label_ == "CUSTOMER"), None)
    if lookup is None:
        return None
    taken = {i for span in found.spans for i in range(span.start, span.end)}
    rest = [i for i in range(lookup.end, len(found.doc)) if not found.doc[i].is_punct]
    while rest and found.doc[rest[0]].lower_ in NOT_NAMES | {"customer", "client"}:
        rest = rest[1:]
    if not rest or len(rest) > MAX_NAME_WORDS:
        return None
    if any(
        i in taken or not found.doc[i].is_alpha or found.doc[i].lower_ in NOT_NAMES for i in rest
    ):
        return None
    written = [found.originals[i] for i in rest]
    explicit = lookup.text.lower() in LOOKUP_WORDS
    if not explicit and not all(word[:1].isupper() for word in written):
        return None
    return " ".join(written)


def _offer_name(found: _Found) -> str:
    """The words right before the offer word ("the spring offer"), else the word right
    after it ("offer SPRING10"), else nothing (all offers)."""
    doc = found.doc
    offer = next(s for s in found.spans if s.label_ == "OFFER")

    def is_name(i: int) -> bool:
        token = doc[i]
        return not (token.is_punct or token.is_space or token.lower_ in NOT_OFFER_NAMES)

    start = offer.start
    while start > 0 and is_name(start - 1) and offer.start - start < 3:
        start -= 1
    if start < offer.start:
        return found.written(start, offer.start)
    if offer.end < len(doc) and is_name(offer.end):
        return found.written(offer.end, offer.end + 1)
    return ""
