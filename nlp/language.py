"""Is a message written in a language other than English? A small, dependency-free guess.

The models are trained on English. A customer who writes in another language is better
told so than answered with "I didn't get that". :func:`other_language` gives a tag for the
language (or the script) of a message it is fairly sure is not English, else None:

* letters of a non-Latin script (Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai,
  Chinese, Japanese, Korean, ...) make up most of the message's letters: the script;
* otherwise, short function words ("und", "pedido", "commande", "dove") of the common
  European languages outnumber the English ones, at least two of them, or a greeting or a
  thank-you in a short message without English words ("hola", "danke schön"): the
  language.

The word lists are our own, a few dozen words each; they only need to catch the everyday
"where is my order" in these languages, not to tell every language apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from nlp.text import normalize, word_set

ENGLISH = word_set(
    "the a an is are was my i me you it of for to and or not no in on at with this that "
    "where when how what why can could would please thanks thank hi hello order my have has "
    "do does did get got will be been your our from by about"
)
OTHER = {
    "de": word_set(
        "und ich nicht ist das die der den dem mein meine meinen bestellung wo wann wie "
        "bitte danke hallo mit ein eine einen habe haben noch auf für sie wir kann paket "
        "lieferung rückerstattung warum schon immer keine kein geld"
    ),
    "fr": word_set(
        "je ne pas est mon ma mes commande où quand comment merci bonjour avec une les "
        "des et pour vous nous colis livraison remboursement pourquoi toujours rien "
        "j'ai c'est qu'il suis"
    ),
    "es": word_set(
        "el los las que mi mis pedido dónde cuándo cómo gracias por favor con una hola "
        "está tengo paquete envío reembolso todavía nada porque quiero"
    ),
    "it": word_set(
        "il lo gli che mio mia ordine dove quando come grazie per con una non ciao sono "
        "ho pacco spedizione rimborso ancora niente perché voglio"
    ),
    "pt": word_set(
        "os meu minha pedido onde quando como obrigado obrigada com uma não olá está "
        "tenho encomenda entrega reembolso ainda nada porque quero"
    ),
    "nl": word_set(
        "het een ik niet mijn bestelling waar wanneer hoe bedankt dank met voor hallo heb "
        "pakket levering terugbetaling nog geen waarom wil"
    ),
    "pl": word_set(
        "nie jest moje moja moje zamówienie gdzie kiedy jak dziękuję dla się mam czy "
        "paczka przesyłka zwrot jeszcze dzień dobry chcę"
    ),
    "tr": word_set(
        "ve bir bu ben değil siparişim sipariş nerede zaman teşekkürler teşekkür için ile "
        "merhaba kargo iade hala neden istiyorum"
    ),
}
# One of these alone is enough ("hola", "danke schön").
GREETINGS = {
    "hola": "es", "gracias": "es", "bonjour": "fr", "merci": "fr", "salut": "fr",
    "hallo": "de", "danke": "de", "ciao": "it", "grazie": "it", "olá": "pt",
    "obrigado": "pt", "obrigada": "pt", "bedankt": "nl", "dziękuję": "pl", "cześć": "pl",
    "merhaba": "tr", "teşekkürler": "tr",
}  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Unicode name prefixes of the scripts told apart, to their tags.
_SCRIPTS = {
    "CYRILLIC": "cyrillic", "GREEK": "greek", "ARABIC": "arabic", "HEBREW": "hebrew",
    "DEVANAGARI": "devanagari", "THAI": "thai", "CJK": "chinese", "HIRAGANA": "japanese",
    "KATAKANA": "japanese", "HANGUL": "korean", "GEORGIAN": "georgian", "ARMENIAN": "armenian",
    "BENGALI": "bengali", "TAMIL": "tamil", "PERSIAN": "arabic",
}  # fmt: skip
MIN_WORDS = 2


def _script(letter: str) -> str | None:
    name = unicodedata.name(letter, "")
    return next((tag for prefix, tag in _SCRIPTS.items() if name.startswith(prefix)), None)


def other_language(text: str) -> str | None:
    """The tag of the language or script of ``text`` if it is fairly surely not English,
    else None (English, or too little to tell)."""
    text = normalize(text).lower()
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return None
    scripts = Counter(_script(ch) for ch in letters)
    script, count = max(
        ((tag, n) for tag, n in scripts.items() if tag is not None),
        key=lambda item: item[1],
        default=(None, 0),
    )
    if script is not None and count * 2 > len(letters):
        return script
    words = _WORD.findall(text)
    english = sum(word in ENGLISH for word in words)
    hits = {tag: sum(word in vocabulary for word in words) for tag, vocabulary in OTHER.items()}
    best = max(hits, key=lambda tag: hits[tag])
    if hits[best] >= MIN_WORDS and hits[best] > english:
        return best
    greeting = next((GREETINGS[word] for word in words if word in GREETINGS), None)
    return greeting if greeting is not None and english == 0 and len(words) <= 3 else None
