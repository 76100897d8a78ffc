"""Messages in other languages are recognised as such; English ones, names and order
numbers are not taken for another language."""

from __future__ import annotations

import pytest

from nlp.language import other_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wo ist meine Bestellung?", "de"),
        ("Hallo, ich habe eine Frage zu meiner Lieferung", "de"),
        ("danke schön", "de"),
        ("Bonjour, où est ma commande ?", "fr"),
        ("merci beaucoup", "fr"),
        ("¿Dónde está mi pedido?", "es"),
        ("Mi pedido 12345 no ha llegado", "es"),
        ("hola", "es"),
        ("Dov'è il mio ordine?", "it"),
        ("Onde está a minha encomenda?", "pt"),
        ("Waar is mijn bestelling?", "nl"),
        ("Gdzie jest moje zamówienie?", "pl"),
        ("Siparişim nerede?", "tr"),
        ("Где мой заказ?", "cyrillic"),
        ("我的订单在哪里", "chinese"),
        ("أين طلبي؟", "arabic"),
        # English, or too little to tell
        ("where is my order", None),
        ("hi", None),
        ("hello there, can i change my address", None),
        ("the package has not arrived yet", None),
        ("my name is Jose Garcia and my order is late", None),
        ("I ordered the Müller Küche set", None),
        ("order 1234", None),
        ("ok", None),
        ("con", None),
        ("die hard movie", None),
        ("😡😡😡", None),
        ("", None),
    ],
)
def test_other_languages_are_told_apart_from_english(text, language):
    assert other_language(text) == language
