"""A small sentiment lexicon with negation rules, used as extra features of the sentiment model.

The word lists are our own (common English words of praise, complaint and emotion in
customer messages); they are no copy of any published lexicon. The n-gram model learns
which words matter from the training data; the lexicon adds a prior for words that the
training data never showed it, which matters most for the default model trained on our
small sentiment set.

:func:`vader_scores` adds the scores of VADER (vaderSentiment, MIT licence), a rule-based
analyser with a large hand-rated lexicon, as a second prior of the same kind.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any


def _words(text: str) -> list[str]:
    return text.split()


_POSITIVE = _words("""
amazing awesome appreciate appreciated appreciative beautiful best better brilliant
care caring cheers clean comfortable convenient cool courteous cute delight delighted
delightful easy efficient enjoy enjoyed excellent exceptional excited exciting fab
fabulous fantastic fast favourite favorite fine fun glad good gorgeous grateful great
happy helpful impressed impressive incredible kind lovely love loved loving lucky
marvellous nice neat outstanding perfect perfectly phenomenal pleasant pleased pleasure
polite professional prompt quick quickly recommend recommended relieved reliable rock
rocks satisfied smooth smoothly solid spectacular splendid stellar stunning super superb
sweet terrific thank thanks thankful thx ty wonderful wow yay bravo smile haha yes legend
legendary hero heroes kudos props congrats congratulations welcome works worked working
resolved fixed sorted hooked finally safe friendly pleasantly beautifully fantastically
""")

_NEGATIVE = _words("""
abysmal absurd angry annoyed annoying appalled appalling atrocious awful bad badly
broke broken bs cancelled canceled careless cheated complain complaining complaint
confused confusing crap crappy crashed crashing cry crying damaged dead delay delayed
delays disappointed disappointing disappointment disaster disgrace disgraceful disgusted
disgusting dishonest dreadful dumb embarrassing error fail failed failing fails failure
fake faulty fed filthy frustrated frustrating frustration fraud furious garbage hate
hated hateful hell hopeless horrible horrendous horrid idiot idiots ignore ignored
ignoring incompetent inconvenience inconvenient infuriating insane insult insulting
irritated irritating joke junk lame late liar lied lies lost mad mess messed miserable
missing mistake nasty never nightmare nonsense outrage outraged outrageous
overcharged pathetic poor poorly problem problems refuse refused ridiculous rip ripoff
rubbish rude sad scam screwed shame shameful shit shitty sick slow sorry stuck stupid
suck sucks sucked terrible theft tired trash ugh unacceptable unhappy unhelpful
unprofessional unreliable upset useless waiting waste wasted worse worst wrong wtf
angry sad crying eyeroll facepalm shocked meh bad cancellation stranded rebooked
overbooked cramped dirty smelly misplaced unanswered hold disconnected
""")

_NEGATORS = frozenset(
    _words(
        "not no never none nobody nothing neither nor cannot cant can't don't dont doesn't "
        "doesnt didn't didnt isn't isnt wasn't wasnt aren't arent won't wont wouldn't wouldnt "
        "haven't havent hasn't hasnt hardly barely without"
    )
)
_INTENSIFIERS = frozenset(
    _words(
        "very really so extremely super totally absolutely completely incredibly truly "
        "seriously utterly highly most"
    )
)
_CONTRAST = frozenset({"but", "however", "although", "though", "yet"})
_WORD = re.compile(r"[a-z']+|[!?]")
POSITIVE = frozenset(_POSITIVE)
NEGATIVE = frozenset(_NEGATIVE)
N_FEATURES = 10


def _polarity(word: str) -> int:
    if word in POSITIVE:
        return 1
    if word in NEGATIVE:
        return -1
    for suffix in ("s", "ed", "ing", "ly"):
        stem = word[: -len(suffix)] if word.endswith(suffix) and len(word) > 4 else ""
        if stem in POSITIVE:
            return 1
        if stem in NEGATIVE:
            return -1
    return 0


def lexicon_scores(text: str) -> list[float]:
    """Ten numbers describing the tone of ``text`` (lower-cased model text expected).

    Positive and negative hits (a negator within the three words before flips a hit,
    an intensifier before it doubles it, and after "but" a hit counts double), their
    balance squashed to [-1, 1], whether there is a negator, ``!`` and ``?`` counts,
    a hit in the last three words, and the number of words.
    """
    words = _WORD.findall(text)
    pos = neg = 0.0
    last_hit = 0.0
    weight_after_contrast = 1.0
    negated = False
    for i, word in enumerate(words):
        if word in _CONTRAST:
            weight_after_contrast = 2.0
            continue
        polarity = _polarity(word)
        if word in _NEGATORS:
            negated = True
        if not polarity:
            continue
        window = words[max(0, i - 3) : i]
        if any(w in _NEGATORS for w in window):
            polarity = -polarity
        strength = weight_after_contrast * (2.0 if i and words[i - 1] in _INTENSIFIERS else 1.0)
        if polarity > 0:
            pos += strength
        else:
            neg += strength
        if i >= len(words) - 3:
            last_hit = float(polarity)
    balance = (pos - neg) / (pos + neg + 1.0)
    return [
        min(pos, 4.0) / 4.0,
        min(neg, 4.0) / 4.0,
        balance,
        float(pos > 0 and neg == 0),
        float(neg > 0 and pos == 0),
        float(negated),
        min(words.count("!"), 3) / 3.0,
        min(words.count("?"), 3) / 3.0,
        last_hit,
        min(len(words), 40) / 40.0,
    ]


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(text: str) -> list[float]:
    """VADER's compound, positive, negative and neutral scores, and whether the compound
    says positive (>= 0.05) or negative (<= -0.05), VADER's own cut-offs."""
    scores = _vader().polarity_scores(text)
    compound = scores["compound"]
    return [
        compound,
        scores["pos"],
        scores["neg"],
        scores["neu"],
        float(compound >= 0.05),
        float(compound <= -0.05),
    ]
