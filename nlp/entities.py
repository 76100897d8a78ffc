"""Rule-based entity recognition for customer messages: the ``crm_entities`` component.

Works on ``spacy.blank("en")``: no statistical model, only rules. Every rule is a small
``pattern_*()`` function returning :class:`Rule` objects (a label, a regex and the kind of
normaliser that turns a match into a value); product names go through a spaCy
``PhraseMatcher``. The component runs the compiled regexes over ``doc.text``, resolves
overlaps (the longest candidate wins; on equal length the more specific label wins:
EMAIL > ORDER_ID with ``#``/order word > MONEY > DATE > PHONE > PRODUCT > other ORDER_ID >
bare digit PHONE), maps the winners onto tokens with
``doc.char_span(..., alignment_mode="expand")``, sets ``doc.ents`` and stores a normalised
value in ``Span._.value``.

Labels and values
-----------------
* ``ORDER_ID`` -- canonical id: upper case, no ``#`` / "order" / "no." prefix, letters,
  digits and hyphens kept (``"#a-20931"`` -> ``"A-20931"``). The id shape is the regex
  ``order_id_pattern`` (default :data:`DEFAULT_ORDER_ID_PATTERN`). An id written with ``#``
  or after an order word ("order no. 10234", "tracking number: 10234") always counts; a bare
  id with letters ("ORD-7731", "A-20931") counts anywhere; a bare all-digit id counts only
  when an order word (order, package, parcel, shipment, purchase, delivery, tracking,
  invoice, receipt, refund, return ...) is within ~40 characters, and never when it looks
  like a year (1900-2099), a quantity ("order 5000 pieces") or a postcode ("shipping to
  10115", "zip 94103").
* ``EMAIL`` -- the lower-cased address.
* ``PHONE`` -- the digits, with a leading ``+`` kept (``"+49 151 1234 5678"`` ->
  ``"+4915112345678"``; a ``00`` international prefix becomes ``+``); 7 to 15 digits. An
  unformatted run of digits counts only with 10+ digits or a phone word nearby ("call",
  "phone", "mobile", "number", ...).
* ``MONEY`` -- ``{"amount": "1299.00", "currency": "USD"}``. Only tagged with a currency sign,
  ISO code or currency word. ``$`` (and "dollars", "bucks") is read as USD, "pounds"/"quid" as
  GBP. ``1,299.00`` and ``1.299,00`` are both 1299.00; ``49,99`` is 49.99.
* ``DATE`` -- ISO ``YYYY-MM-DD`` string, or None when the span is clearly a date but cannot be
  pinned to a day ("a few days ago", "March 2025", "February 30").
* ``PRODUCT`` -- the catalogue's canonical name (case-insensitive match, simple plurals too).

Date rules (``today`` = ``doc.user_data["today"]`` if it is a date, else ``date.today()``)
-----------------------------------------------------------------------------------------
* "today", "tonight", "this morning/afternoon/evening" -> today; "yesterday", "tomorrow",
  "the day before yesterday", "the day after tomorrow" as expected.
* "N days/weeks/months/years ago" (digits, "a", "one" ... "twelve", "a couple of") -> today
  minus N units; "in N days" -> today plus N units. Months and years clamp the day
  (Mar 31 minus one month is Feb 28/29). "a few/several days ago" -> None.
* A weekday alone or "on Monday" -> the most recent such day **on or before** today (support
  context: customers talk about the past; said on a Monday, "Monday" is today).
  "last/past/previous Monday" -> the most recent Monday **strictly before** today.
  "next/coming Monday" -> the first Monday strictly after today. "this Monday" -> the Monday
  of the current ISO week (Monday to Sunday). Abbreviations ("tue", "fri") only count after
  one of these words or "on".
* "last/this/next week" -> the **Monday** of that ISO week; "last/this/next month" -> the 1st
  of that month; "last/this/next year" -> January 1st.
* Absolute dates: ISO "2025-03-03"; "March 3", "3 March 2025", "the 3rd of March", "Mar. 3rd,
  2025", optionally preceded by a weekday name. Numeric "03/04/2025" is read **US style,
  month first** unless the component is configured with ``day_first=True``; either way it
  falls back to the other order when the first number cannot be a month (> 12). Dotted
  dates ("03.04.2025") are always day first. Two-digit years mean 20YY. "on 3/4" (slash,
  no year) only counts after on/since/by/from/until/before/after.
* No year given ("March 3", "on the 5th") -> the occurrence **closest to today** (ties go to
  the past): asked in January, "December 28" is last December.
* A lower-case "may" is only a month with a year ("may 5 2025"), since "you may 2..." is not.
* Not handled: month names alone ("in March"), times of day, weekends, date ranges.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import ensure_path

FACTORY_NAME = "crm_entities"
LABELS = ("ORDER_ID", "EMAIL", "PHONE", "MONEY", "DATE", "PRODUCT")

#: The default shape of an order id (matched case-insensitively, no anchors): an optional
#: 1-5 letter prefix with an optional hyphen before 3-12 digits ("A-20931", "ORD-7731",
#: "ord7731"), or 4-10 digits ("10234").
DEFAULT_ORDER_ID_PATTERN = r"[A-Z]{1,5}-?[0-9]{3,12}|[0-9]{4,10}"

if not Span.has_extension("value"):
    Span.set_extension("value", default=None)

# Overlap resolution: on equal span length the higher priority wins.
P_EMAIL = 100
P_ORDER_STRONG = 90
P_MONEY = 80
P_DATE = 70
P_PHONE = 65
P_PRODUCT = 60
P_ORDER_CONTEXT = 55
P_ORDER_SHAPE = 50
P_PHONE_WEAK = 40

_CONTEXT_BEFORE = 40
_CONTEXT_AFTER = 25


@dataclass(frozen=True)
class Rule:
    """One regex rule. The match's ``span`` group (or the whole match) becomes the entity.

    ``kind`` names the normaliser that validates the match and computes ``Span._.value``.
    """

    label: str
    pattern: str
    kind: str
    flags: int = re.IGNORECASE


@dataclass(frozen=True)
class _Hit:
    value: Any
    priority: int


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    label: str
    value: Any
    priority: int


@dataclass(frozen=True)
class _Context:
    text: str
    today: date
    day_first: bool


# ---------------------------------------------------------------------------------------
# Patterns
# ---------------------------------------------------------------------------------------

_ORDER_WORDS = r"(?:order|package|parcel|shipment|purchase|delivery|tracking)s?"
_ORDER_FILLER = r"(?:\s*(?:(?:number|num|no|nr|id|ref|reference|code|is|was)\b\.?|:)){0,3}"
_ID_END = r"(?![\w@]|[-/.,:][0-9A-Za-z])"
_NOT_QUANTITY = (
    r"(?!\s*(?:x\b|pcs\b|pieces?\b|units?\b|items?\b|of\b|copies\b|boxes\b|pairs?\b|more\b))"
)

_AMOUNT = (
    r"(?P<amount>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]{1,2})?"
    r"|[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]{1,2})?"
    r"|[0-9]{1,9}(?:[.,][0-9]{1,2})?)(?![0-9]|[.,][0-9])"
)
_CURRENCY_SIGNS = r"US\$|CA\$|C\$|AU\$|A\$|\$|€|£|¥|₹"
_CURRENCY_CODES = r"USD|EUR|GBP|CHF|CAD|AUD|NZD|JPY|INR|SEK|NOK|DKK|PLN|CZK"
_CURRENCY_WORDS = r"dollars?|bucks?|euros?|pounds?|quid|yen|rupees?|francs?"

_DAY = r"(?:3[01]|[12][0-9]|0?[1-9])"
_ORDINAL = r"(?:st|nd|rd|th)"
_YEAR = r"(?:1[89][0-9]{2}|2[0-9]{3})"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_WEEKDAY_ABBR = r"(?:mon|tues?|weds?|thu(?:rs?)?|fri|sat|sun)"
_WEEKDAY_MOD = r"(?:last|next|this|past|previous|coming)"
_DATE_PREPOSITION = r"\b(?:on|since|by|from|until|till|before|after)\s+"
_COUNT = (
    r"(?:[0-9]{1,3}|a\s+couple\s+of|couple\s+of|a\s+few|few|several|an?|one|two|three|four"
    r"|five|six|seven|eight|nine|ten|eleven|twelve)"
)
_UNIT = r"(?:day|week|month|year)"


def pattern_email() -> list[Rule]:
    """E-mail addresses. Trailing punctuation is left out ("mail me at a.b@x.co.uk.")."""
    return [
        Rule(
            "EMAIL",
            r"(?<![A-Za-z0-9._%+-])(?P<span>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}"
            r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24})(?![A-Za-z0-9-]|\.[A-Za-z0-9])",
            "email",
        )
    ]


def pattern_order_number(id_pattern: str = DEFAULT_ORDER_ID_PATTERN) -> list[Rule]:
    """Order ids: ``#10234``, ``order no. 10234``, ``parcel A-20931``, bare ``ORD-7731``.

    ``id_pattern`` is the regex of the id itself (no ``#``, no anchors), matched
    case-insensitively.
    """
    order_id = f"(?P<id>(?:{id_pattern}))"
    return [
        Rule("ORDER_ID", rf"(?<![\w&#])(?P<span>#\s?{order_id}){_ID_END}", "order_hash"),
        Rule(
            "ORDER_ID",
            rf"\b{_ORDER_WORDS}\b{_ORDER_FILLER}\s*(?P<span>#?\s?{order_id}){_ID_END}"
            + _NOT_QUANTITY,
            "order_keyword",
        ),
        Rule(
            "ORDER_ID",
            rf"(?<![\w@#$€£¥₹&./,+:-])(?P<span>{order_id}){_ID_END}{_NOT_QUANTITY}",
            "order_bare",
        ),
    ]


def pattern_phone() -> list[Rule]:
    """Phone numbers: ``+49 151 1234 5678``, ``(555) 123-4567``, ``555.123.4567``."""
    return [
        Rule(
            "PHONE",
            r"(?<![\w+#$€£¥₹@./,:-])(?P<span>(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,5}\)[ .-]?)?"
            r"[0-9]{2,15}(?:[ .-][0-9]{2,8}){0,5})(?!\w|[.,/:-][0-9])",
            "phone",
        )
    ]


def pattern_money() -> list[Rule]:
    """Amounts with a currency: ``$49.99``, ``49.99$``, ``EUR 20``, ``20 euros``, ``12 bucks``."""
    return [
        Rule(
            "MONEY",
            rf"(?<![\w$€£¥₹])(?P<span>(?P<cur>{_CURRENCY_SIGNS})\s?{_AMOUNT})",
            "money",
        ),
        Rule(
            "MONEY",
            rf"(?<!\w)(?P<span>(?P<cur>{_CURRENCY_CODES})\s?{_AMOUNT})",
            "money",
            flags=0,  # upper case only: "try 20 times" is not Turkish lira
        ),
        Rule(
            "MONEY",
            rf"(?<![\w.,$€£¥₹])(?P<span>{_AMOUNT}\s?(?P<cur>[$€£¥₹]"
            rf"|(?:{_CURRENCY_CODES}|{_CURRENCY_WORDS})(?!\w)))",
            "money",
        ),
    ]


def pattern_date() -> list[Rule]:
    """Absolute dates: ``2025-03-03``, ``03/03/2025``, ``3 March 2025``, ``on the 5th``."""
    weekday_prefix = rf"(?:{_WEEKDAY},?\s+)?"
    return [
        Rule(
            "DATE",
            r"(?<![\w./-])(?P<span>(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)"
            r"(?P<d>[0-9]{1,2}))(?![0-9]|[./-][0-9])",
            "date_iso",
        ),
        Rule(
            "DATE",
            r"(?<![\w./-])(?P<span>(?P<a>[0-9]{1,2})(?P<sep>[-/.])(?P<b>[0-9]{1,2})(?P=sep)"
            r"(?P<y>[0-9]{4}|[0-9]{2}))(?![0-9]|[./-][0-9])",
            "date_numeric",
        ),
        Rule(
            "DATE",
            rf"{_DATE_PREPOSITION}(?P<span>(?P<a>[0-9]{{1,2}})/(?P<b>[0-9]{{1,2}}))"
            r"(?![0-9]|[./-][0-9])",
            "date_numeric",
        ),
        Rule(
            "DATE",
            rf"(?<![\w.,/-])(?P<span>{weekday_prefix}(?:the\s+)?(?P<d>{_DAY}){_ORDINAL}?"
            rf"(?:\s+of)?\s+(?P<m>{_MONTH})(?:,?\s+(?P<y>{_YEAR})(?![0-9]))?)",
            "date_absolute",
        ),
        Rule(
            "DATE",
            rf"(?<!\w)(?P<span>{weekday_prefix}(?P<m>{_MONTH})\s+(?:the\s+)?(?P<d>{_DAY})"
            rf"{_ORDINAL}?(?![0-9a-z])(?:,?\s+(?P<y>{_YEAR})(?![0-9]))?)",
            "date_absolute",
        ),
        Rule(
            "DATE",
            rf"(?<!\w)(?P<span>(?P<m>{_MONTH}),?\s+(?P<y>{_YEAR}))(?![0-9])",
            "date_unresolved",
        ),
        Rule(
            "DATE",
            rf"{_DATE_PREPOSITION}(?P<span>the\s+(?P<d>{_DAY}){_ORDINAL})(?!\w)",
            "date_day_of_month",
        ),
    ]


def pattern_relative_date() -> list[Rule]:
    """Relative dates: ``yesterday``, ``last Tuesday``, ``3 days ago``, ``next week``."""
    return [
        Rule(
            "DATE",
            r"\b(?P<span>(?:the\s+)?day\s+(?:before\s+yesterday|after\s+tomorrow)"
            r"|today|tonight|yesterday|tomorrow|this\s+(?:morning|afternoon|evening))\b",
            "date_keyword",
        ),
        Rule(
            "DATE",
            rf"(?<![\w-])(?P<span>(?:(?P<mod>{_WEEKDAY_MOD})\s+)?(?P<wd>{_WEEKDAY}))(?!\w)",
            "date_weekday",
        ),
        Rule(
            "DATE",
            rf"\b(?P<span>(?P<mod>{_WEEKDAY_MOD})\s+(?P<wd>{_WEEKDAY_ABBR}))\b",
            "date_weekday",
        ),
        Rule("DATE", rf"\bon\s+(?P<span>(?P<wd>{_WEEKDAY_ABBR}))\b", "date_weekday"),
        Rule(
            "DATE",
            rf"\b(?P<span>(?P<mod>{_WEEKDAY_MOD})\s+(?P<unit>{_UNIT}))\b",
            "date_period",
        ),
        Rule(
            "DATE",
            rf"\b(?P<span>(?P<n>{_COUNT})\s+(?P<unit>{_UNIT})s?\s+(?:ago|back|earlier))\b",
            "date_ago",
        ),
        Rule(
            "DATE",
            rf"\b(?P<span>in\s+(?P<n>{_COUNT})\s+(?P<unit>{_UNIT})s?)\b",
            "date_in",
        ),
    ]


def pattern_product(names: Iterable[str]) -> dict[str, str]:
    """Phrases to look for, lower-cased, mapped to the canonical catalogue name.

    Each name also gets a simple plural of its last word ("yoga mat" -> "yoga mats",
    "lunch box" -> "lunch boxes", "battery" -> "batteries"). The first name wins a clash.
    """
    phrases: dict[str, str] = {}
    for name in names:
        canonical = " ".join(str(name).split())
        if not canonical:
            continue
        for variant in (canonical, _pluralise(canonical)):
            phrases.setdefault(variant.lower(), canonical)
    return phrases


def all_rules(*, order_id_pattern: str | None = None) -> list[Rule]:
    """Every regex rule of the component, in the style of a SpanRuler rule list."""
    return (
        pattern_email()
        + pattern_order_number(order_id_pattern or DEFAULT_ORDER_ID_PATTERN)
        + pattern_money()
        + pattern_date()
        + pattern_relative_date()
        + pattern_phone()
    )


def _pluralise(name: str) -> str:
    """A naive English plural of the last word; the name itself if it ends in a non-letter."""
    if not name[-1].isalpha():
        return name
    lower = name.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "couple of": 2, "a couple of": 2,
}  # fmt: skip
_CURRENCIES = {
    "$": "USD", "us$": "USD", "ca$": "CAD", "c$": "CAD", "au$": "AUD", "a$": "AUD",
    "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR",
    "dollar": "USD", "dollars": "USD", "buck": "USD", "bucks": "USD",
    "euro": "EUR", "euros": "EUR", "pound": "GBP", "pounds": "GBP", "quid": "GBP",
    "yen": "JPY", "rupee": "INR", "rupees": "INR", "franc": "CHF", "francs": "CHF",
}  # fmt: skip
_ORDER_CONTEXT = re.compile(
    r"\b(?:orders?|ordered|packages?|parcels?|shipments?|purchases?|purchased|deliver(?:y|ies|ed)"
    r"|tracking|shipping|shipped|invoices?|receipts?|refunds?|refunded|returns?|returned)\b",
    re.IGNORECASE,
)
# Right before a bare number, these make it a place, not an order.
_PLACE_BEFORE = re.compile(r"\b(?:to|zip|zip ?code|post ?code|postal code)\s*:?\s*$", re.I)
_PHONE_CONTEXT = re.compile(
    r"\b(?:call|called|calling|phone|tel|telephone|mobile|cell|cellphone|whatsapp|sms|text"
    r"|ring|reach|contact|number|no)\b",
    re.IGNORECASE,
)
_ISO_CODES = frozenset(_CURRENCY_CODES.split("|"))
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_YEAR_LIKE = re.compile(r"(?:19|20)[0-9]{2}")
_ORDER_PREFIX = re.compile(r"^(?:(?:ORDER|NUMBER)(?![\w-])|NO\.|NR\.|#|:|\s)+")


def _key(word: str) -> str:
    """Case- and whitespace-insensitive lookup key ("Sept." -> "sept")."""
    return " ".join(word.casefold().replace(".", " ").split())


def normalise_order_id(text: str) -> str:
    """Canonical order id: upper case, ``#``/"order"/"no." prefixes and spaces removed.

    >>> normalise_order_id("order no. #a-20931")
    'A-20931'
    """
    cleaned = _ORDER_PREFIX.sub("", text.strip().upper())
    return re.sub(r"[^\w-]", "", cleaned)


def normalise_amount(raw: str) -> str | None:
    """A plain decimal string: ``"1,299.00"`` -> ``"1299.00"``, ``"49,99"`` -> ``"49.99"``.

    The last separator followed by exactly 3 digits is a thousands separator, otherwise a
    decimal point. Returns None for anything that is not a number.
    """
    s = "".join(raw.split())
    if "," in s and "." in s:
        decimal_sep, thousands_sep = (",", ".") if s.rfind(",") > s.rfind(".") else (".", ",")
        s = s.replace(thousands_sep, "").replace(decimal_sep, ".")
    elif "," in s or "." in s:
        sep = "," if "," in s else "."
        head, _, tail = s.rpartition(sep)
        thousands = len(tail) == 3 or s.count(sep) > 1
        s = s.replace(sep, "") if thousands else head + "." + tail
    if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", s):
        return None
    try:
        Decimal(s)
    except InvalidOperation:
        return None
    return s


def currency_code(symbol_or_word: str) -> str | None:
    """ISO 4217 code for ``$``, ``€``, ``eur``, ``bucks``... None when unknown."""
    key = _key(symbol_or_word)
    if key.upper() in _ISO_CODES:
        return key.upper()
    return _CURRENCIES.get(key)


def reference_date(doc: Doc) -> date:
    """The "today" that relative dates are resolved against."""
    today = doc.user_data.get("today")
    if isinstance(today, datetime):
        return today.date()
    if isinstance(today, date):
        return today
    return date.today()


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except (ValueError, OverflowError):
        return None


def _closest(today: date, candidates: Iterable[date | None]) -> date | None:
    """The candidate closest to today; ties go to the past."""
    valid = [c for c in candidates if c is not None]
    if not valid:
        return None
    return min(valid, key=lambda c: (abs((c - today).days), c > today))


def _add_months(day: date, months: int) -> date | None:
    """``day`` shifted by whole months, clamping the day of month (Mar 31 - 1 -> Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    for dom in range(day.day, min(day.day, 28) - 1, -1):
        shifted = _make_date(year, month + 1, dom)
        if shifted is not None:
            return shifted
    return None


def _shift(today: date, count: int, unit: str) -> date | None:
    """``today`` plus ``count`` days/weeks/months/years (negative goes back)."""
    try:
        if unit == "day":
            return today + timedelta(days=count)
        if unit == "week":
            return today + timedelta(weeks=count)
    except OverflowError:
        return None
    return _add_months(today, count * (12 if unit == "year" else 1))


def _count(word: str) -> int | None:
    key = _key(word)
    if key.isascii() and key.isdigit():
        return int(key)
    return _NUMBER_WORDS.get(key)


def _weekday(word: str) -> int | None:
    return _WEEKDAYS.get(_key(word)[:3])


def resolve_weekday(today: date, weekday: int, modifier: str | None = None) -> date | None:
    """Apply the weekday rules documented at the top of this module."""
    mod = _key(modifier) if modifier else ""
    try:
        if mod in ("last", "past", "previous"):
            return today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
        if mod in ("next", "coming"):
            return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)
        if mod == "this":
            return today + timedelta(days=weekday - today.weekday())
        return today - timedelta(days=(today.weekday() - weekday) % 7)
    except OverflowError:
        return None


def resolve_period(today: date, modifier: str, unit: str) -> date | None:
    """ "last week" -> Monday of last week; "next month" -> 1st of next month; etc."""
    step = {"last": -1, "past": -1, "previous": -1, "this": 0}.get(_key(modifier), 1)
    try:
        if unit == "week":
            return today - timedelta(days=today.weekday()) + timedelta(weeks=step)
        if unit == "month":
            return _add_months(today.replace(day=1), step)
        return _make_date(today.year + step, 1, 1)
    except OverflowError:
        return None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _group(m: re.Match[str], name: str) -> str | None:
    """A named group's text, or None when the pattern has no such group or it didn't match."""
    return m.groupdict().get(name)


# Normalisers: (match, context) -> _Hit, or None to drop the match.


def _email(m: re.Match[str], ctx: _Context) -> _Hit | None:
    return _Hit(m["span"].lower(), P_EMAIL)


def _order_strong(m: re.Match[str], ctx: _Context) -> _Hit | None:
    value = normalise_order_id(m["id"])
    return _Hit(value, P_ORDER_STRONG) if value else None


def _order_bare(m: re.Match[str], ctx: _Context) -> _Hit | None:
    value = normalise_order_id(m["id"])
    if not value:
        return None
    if any(c.isalpha() for c in value):
        return _Hit(value, P_ORDER_SHAPE)
    if _YEAR_LIKE.fullmatch(value):
        return None
    start, end = m.span("span")
    before = ctx.text[max(0, start - _CONTEXT_BEFORE) : start]
    after = ctx.text[end : end + _CONTEXT_AFTER]
    if _PLACE_BEFORE.search(before):  # "shipping to 10115", "zip 94103": a postcode
        return None
    if _ORDER_CONTEXT.search(before) or _ORDER_CONTEXT.search(after):
        return _Hit(value, P_ORDER_CONTEXT)
    return None


def _phone_priority(raw: str, n_digits: int, *, has_context: bool) -> int | None:
    """How sure we are that ``raw`` is a phone number; None when it is not one."""
    groups = len(re.findall(r"[0-9]+", raw))
    if raw.startswith("+") or "(" in raw or has_context:
        return P_PHONE  # "+49 ...", "(555) ...", "call me on 5551234"
    if groups >= 2 and ("-" in raw or "." in raw):
        return P_PHONE  # "555-1234", "555.123.4567"
    if groups >= 3 and n_digits >= 9:
        return P_PHONE  # "555 123 4567"
    if groups == 1 and n_digits >= 10:
        return P_PHONE_WEAK  # "5551234567": an order number wins when an order word is near
    return None


def _phone(m: re.Match[str], ctx: _Context) -> _Hit | None:
    raw = m["span"]
    digits = "".join(c for c in raw if "0" <= c <= "9")
    if not 7 <= len(digits) <= 15:
        return None
    if _IPV4.fullmatch(raw):
        return None
    start = m.start("span")
    context = _PHONE_CONTEXT.search(ctx.text[max(0, start - _CONTEXT_BEFORE) : start])
    priority = _phone_priority(raw, len(digits), has_context=context is not None)
    if priority is None:
        return None
    if raw.startswith("+"):
        return _Hit("+" + digits, priority)
    if digits.startswith("00") and len(digits) > 9:
        return _Hit("+" + digits[2:], priority)
    return _Hit(digits, priority)


def _money(m: re.Match[str], ctx: _Context) -> _Hit | None:
    amount = normalise_amount(m["amount"])
    currency = currency_code(m["cur"])
    if amount is None or currency is None:
        return None
    return _Hit({"amount": amount, "currency": currency}, P_MONEY)


def _date_iso(m: re.Match[str], ctx: _Context) -> _Hit | None:
    return _Hit(_iso(_make_date(int(m["y"]), int(m["m"]), int(m["d"]))), P_DATE)


def _date_numeric(m: re.Match[str], ctx: _Context) -> _Hit | None:
    a, b = int(m["a"]), int(m["b"])
    day_first = ctx.day_first or _group(m, "sep") == "."
    day, month = (a, b) if day_first else (b, a)
    if month > 12 >= day:
        day, month = month, day
    year_text = _group(m, "y")
    if year_text is None:
        candidates = (_make_date(ctx.today.year + k, month, day) for k in (-1, 0, 1))
        return _Hit(_iso(_closest(ctx.today, candidates)), P_DATE)
    year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    return _Hit(_iso(_make_date(year, month, day)), P_DATE)


def _date_absolute(m: re.Match[str], ctx: _Context) -> _Hit | None:
    if m["m"] == "may" and not m["y"]:
        return None  # "you may 2 ..." - lower-case "may" needs a year to be a month
    month = _MONTHS.get(_key(m["m"])[:3])
    day = int(m["d"])
    if month is None:
        return _Hit(None, P_DATE)
    if m["y"]:
        return _Hit(_iso(_make_date(int(m["y"]), month, day)), P_DATE)
    candidates = (_make_date(ctx.today.year + k, month, day) for k in (-1, 0, 1))
    return _Hit(_iso(_closest(ctx.today, candidates)), P_DATE)


def _date_unresolved(m: re.Match[str], ctx: _Context) -> _Hit | None:
    return _Hit(None, P_DATE)


def _date_day_of_month(m: re.Match[str], ctx: _Context) -> _Hit | None:
    day = int(m["d"])
    first = ctx.today.replace(day=1)
    months = (_add_months(first, k) for k in (-1, 0, 1))
    candidates = (_make_date(mo.year, mo.month, day) for mo in months if mo is not None)
    return _Hit(_iso(_closest(ctx.today, candidates)), P_DATE)


def _date_keyword(m: re.Match[str], ctx: _Context) -> _Hit | None:
    key = _key(m["span"]).removeprefix("the ")
    offsets = {
        "day before yesterday": -2,
        "yesterday": -1,
        "tomorrow": 1,
        "day after tomorrow": 2,
    }
    return _Hit(_iso(_shift(ctx.today, offsets.get(key, 0), "day")), P_DATE)


def _date_weekday(m: re.Match[str], ctx: _Context) -> _Hit | None:
    weekday = _weekday(m["wd"])
    if weekday is None:
        return _Hit(None, P_DATE)
    return _Hit(_iso(resolve_weekday(ctx.today, weekday, _group(m, "mod"))), P_DATE)


def _date_period(m: re.Match[str], ctx: _Context) -> _Hit | None:
    return _Hit(_iso(resolve_period(ctx.today, m["mod"], _key(m["unit"]))), P_DATE)


def _date_relative(m: re.Match[str], ctx: _Context, sign: int) -> _Hit | None:
    count = _count(m["n"])
    if count is None:
        return _Hit(None, P_DATE)
    return _Hit(_iso(_shift(ctx.today, sign * count, _key(m["unit"]))), P_DATE)


_NORMALISERS: dict[str, Callable[[re.Match[str], _Context], _Hit | None]] = {
    "email": _email,
    "order_hash": _order_strong,
    "order_keyword": _order_strong,
    "order_bare": _order_bare,
    "phone": _phone,
    "money": _money,
    "date_iso": _date_iso,
    "date_numeric": _date_numeric,
    "date_absolute": _date_absolute,
    "date_unresolved": _date_unresolved,
    "date_day_of_month": _date_day_of_month,
    "date_keyword": _date_keyword,
    "date_weekday": _date_weekday,
    "date_period": _date_period,
    "date_ago": lambda m, ctx: _date_relative(m, ctx, -1),
    "date_in": lambda m, ctx: _date_relative(m, ctx, 1),
}


# ---------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------


class CRMEntityRecognizer:
    """Sets ``doc.ents`` (ORDER_ID, EMAIL, PHONE, MONEY, DATE, PRODUCT) and ``Span._.value``.

    Entities already in ``doc.ents`` are kept where they do not overlap the new ones.
    """

    def __init__(
        self,
        nlp: Language,
        name: str = FACTORY_NAME,
        *,
        products: Sequence[str] = (),
        order_id_pattern: str | None = None,
        day_first: bool = False,
    ) -> None:
        self.nlp = nlp
        self.name = name
        self._configure(products=products, order_id_pattern=order_id_pattern, day_first=day_first)

    # -- configuration ------------------------------------------------------------------

    def _configure(
        self, *, products: Sequence[str], order_id_pattern: str | None, day_first: bool
    ) -> None:
        if order_id_pattern is not None:
            re.compile(order_id_pattern)  # fail early with re.error on a bad pattern
        self.order_id_pattern = order_id_pattern
        self.day_first = bool(day_first)
        self._rules = [
            (rule, re.compile(rule.pattern, rule.flags), _NORMALISERS[rule.kind])
            for rule in all_rules(order_id_pattern=order_id_pattern)
        ]
        self.set_products(products)

    @property
    def products(self) -> list[str]:
        """The canonical product names currently matched."""
        return list(self._products)

    def set_products(self, names: Iterable[str]) -> None:
        """Replace the product catalogue; matching is case-insensitive (``attr="LOWER"``)."""
        phrases = pattern_product(names)
        self._products = list(dict.fromkeys(phrases.values()))
        self._matcher = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        self._product_ids: dict[int, str] = {}
        for index, canonical in enumerate(self._products):
            key = f"{FACTORY_NAME}_product_{index}"
            self._product_ids[self.nlp.vocab.strings.add(key)] = canonical
            variants = [phrase for phrase, name in phrases.items() if name == canonical]
            self._matcher.add(key, [self.nlp.make_doc(v) for v in variants])

    # -- processing ---------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        ctx = _Context(doc.text, reference_date(doc), self.day_first)
        candidates = self._regex_candidates(ctx) + self._product_candidates(doc)
        self._set_ents(doc, _select(candidates, len(doc.text)))
        return doc

    def _regex_candidates(self, ctx: _Context) -> list[_Candidate]:
        candidates = []
        for rule, regex, normalise in self._rules:
            for m in regex.finditer(ctx.text):
                try:
                    hit = normalise(m, ctx)
                except (ValueError, OverflowError, ArithmeticError):
                    hit = None
                if hit is None:
                    continue
                start, end = m.span("span") if "span" in regex.groupindex else m.span()
                if start < end:
                    candidates.append(_Candidate(start, end, rule.label, hit.value, hit.priority))
        return candidates

    def _product_candidates(self, doc: Doc) -> list[_Candidate]:
        if not self._products:
            return []
        candidates = []
        for match_id, start, end in self._matcher(doc):
            span = doc[start:end]
            canonical = self._product_ids.get(match_id)
            if canonical is not None:
                candidates.append(
                    _Candidate(span.start_char, span.end_char, "PRODUCT", canonical, P_PRODUCT)
                )
        return candidates

    @staticmethod
    def _set_ents(doc: Doc, chosen: list[_Candidate]) -> None:
        taken = bytearray(len(doc))
        spans = []
        for cand in chosen:
            span = doc.char_span(cand.start, cand.end, label=cand.label, alignment_mode="expand")
            if span is None or len(span) == 0 or any(taken[span.start : span.end]):
                continue
            taken[span.start : span.end] = b"\x01" * len(span)
            span._.value = cand.value
            spans.append(span)
        kept = [ent for ent in doc.ents if not any(taken[ent.start : ent.end])]
        doc.ents = sorted(spans + kept, key=lambda s: s.start)

    # -- serialisation ------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            "products": self.products,
            "order_id_pattern": self.order_id_pattern,
            "day_first": self.day_first,
        }

    def _load_settings(self, settings: dict[str, Any]) -> None:
        self._configure(
            products=settings.get("products", []),
            order_id_pattern=settings.get("order_id_pattern"),
            day_first=settings.get("day_first", False),
        )

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Save the product list and settings to ``path/settings.json``."""
        directory = ensure_path(path)
        directory.mkdir(parents=True, exist_ok=True)
        srsly.write_json(directory / "settings.json", self._settings())

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "CRMEntityRecognizer":
        """Load what :meth:`to_disk` saved."""
        settings_file = ensure_path(path) / "settings.json"
        if settings_file.exists():
            self._load_settings(srsly.read_json(settings_file))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.json_dumps(self._settings()).encode("utf8")

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> "CRMEntityRecognizer":
        self._load_settings(srsly.json_loads(data.decode("utf8")))
        return self


def _select(candidates: list[_Candidate], text_length: int) -> list[_Candidate]:
    """Non-overlapping candidates: longest first, then highest priority, then leftmost."""
    occupied = bytearray(text_length)
    chosen = []
    for cand in sorted(candidates, key=lambda c: (c.start - c.end, -c.priority, c.start)):
        if occupied.find(1, cand.start, cand.end) != -1:
            continue
        occupied[cand.start : cand.end] = b"\x01" * (cand.end - cand.start)
        chosen.append(cand)
    return chosen


@Language.factory(
    FACTORY_NAME,
    default_config={"products": [], "order_id_pattern": None, "day_first": False},
    assigns=["doc.ents", "token.ent_type", "token.ent_iob", "span._.value"],
)
def make_entity_recognizer(
    nlp: Language,
    name: str,
    products: list[str],
    order_id_pattern: str | None,
    day_first: bool,
) -> CRMEntityRecognizer:
    """spaCy factory for ``nlp.add_pipe("crm_entities", config={...})``."""
    return CRMEntityRecognizer(
        nlp, name, products=products, order_id_pattern=order_id_pattern, day_first=day_first
    )


def add_entity_ruler(
    nlp: Language,
    *,
    products: Iterable[str] = (),
    order_id_pattern: str | None = None,
    day_first: bool = False,
    name: str = FACTORY_NAME,
) -> CRMEntityRecognizer:
    """Add the ``crm_entities`` component to ``nlp`` and return it."""
    config = {
        "products": list(products),
        "order_id_pattern": order_id_pattern,
        "day_first": day_first,
    }
    component = nlp.add_pipe(FACTORY_NAME, name=name, config=config)
    assert isinstance(component, CRMEntityRecognizer)
    return component


def extract_entities(doc: Doc) -> list[dict[str, Any]]:
    """``doc.ents`` as ``[{"label", "text", "start_char", "end_char", "value"}]``."""
    return [
        {
            "label": ent.label_,
            "text": ent.text,
            "start_char": ent.start_char,
            "end_char": ent.end_char,
            "value": ent._.value,
        }
        for ent in doc.ents
    ]
