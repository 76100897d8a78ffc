"""Features of the classifiers: n-grams of the text, a sentiment lexicon, sentence embeddings.

Model texts (see :func:`nlp.text.model_text`) and, optionally, their sentence embeddings
become one sparse matrix:

* word 1-2-grams, TF-IDF (for sentiment, words after a negator are marked: "not_happy");
* character 2-5-grams within word bounds, TF-IDF (robust to typos and word forms);
* unordered pairs of content words, lightly stemmed ("refund" + "arrive" wherever they
  stand in the message), TF-IDF: two words together that n-grams miss;
* optionally the lexicon features of :mod:`nlp.lexicon` (sentiment);
* optionally a dense sentence embedding, scaled by ``embeddings_weight``.

:class:`Featurizer` learns the vocabularies with scikit-learn at training time;
:meth:`Featurizer.compile` turns it into a :class:`FeatureMap` that needs only numpy and
scipy, loads fast and computes the same numbers (sublinear TF, IDF, L2 norm per block).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nlp.lexicon import lexicon_scores

MIN_DF_FROM = 200
_TOKEN = re.compile(r"\w+|[!?]")
_WORD = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = _words(
    "a an the to of and or in on at for from with by is are was were be been am i me my "
    "mine you your it its this that these those do does did have has had can could would "
    "will shall should please pls hi hello hey"
)
_NEGATORS = _words(
    "not no never nothing nobody none cannot cant dont doesnt didnt isnt wasnt arent wont "
    "wouldnt havent hasnt without hardly barely"
)
_SCOPE_END = frozenset({"!", "?", "but", "however", "though", "although"})
_SUFFIX = re.compile(r"(?:ing|ed|es|s|ly)$")


def _stem(word: str) -> str:
    return _SUFFIX.sub("", word) if len(word) > 4 else word


def _uni_bigrams(tokens: list[str]) -> list[str]:
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def word_ngrams(text: str) -> list[str]:
    """Analyzer: word 1-2-grams (``!`` and ``?`` count as words)."""
    return _uni_bigrams(_TOKEN.findall(text.replace("'", "")))


def negated_word_ngrams(text: str) -> list[str]:
    """Analyzer: word 1-2-grams where words after a negator are marked, up to ``!``/``?``/but."""
    tokens, negated = [], False
    for token in _TOKEN.findall(text.replace("'", "")):
        if token in _SCOPE_END:
            negated = False
        tokens.append(f"not_{token}" if negated and token not in _NEGATORS else token)
        if token in _NEGATORS:
            negated = True
    return _uni_bigrams(tokens)


def char_ngrams(text: str) -> list[str]:
    """Analyzer: character 2-5-grams of each word padded with spaces (like ``char_wb``)."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for n in range(2, 6):
            if n > len(padded):
                break
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def content_word_pairs(text: str) -> list[str]:
    """Analyzer: every unordered pair of distinct, lightly stemmed content words."""
    words = sorted({_stem(w) for w in _WORD.findall(text) if w not in _STOP})[:30]
    return [f"{a}&{b}" for i, a in enumerate(words) for b in words[i + 1 :]]


ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "words": word_ngrams,
    "negated_words": negated_word_ngrams,
    "chars": char_ngrams,
    "pairs": content_word_pairs,
}


@dataclass
class Block:
    """One TF-IDF block of a compiled :class:`FeatureMap`."""

    analyzer: str
    vocabulary: dict[str, int]
    idf: np.ndarray

    def rows(self, texts: Sequence[str]) -> tuple[list[int], list[int], list[float]]:
        """(row, column, value) triples of the L2-normalised sublinear TF-IDF."""
        analyze, vocab, idf = ANALYZERS[self.analyzer], self.vocabulary, self.idf
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, text in enumerate(texts):
            counts = Counter(vocab[g] for g in analyze(text) if g in vocab)
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            weights = (1.0 + np.log(tf)) * idf[idx]
            weights /= np.sqrt(np.dot(weights, weights))
            rows.extend([r] * len(idx))
            cols.extend(idx.tolist())
            vals.extend(weights.tolist())
        return rows, cols, vals


@dataclass
class FeatureMap:
    """Compiled features: texts (+ embeddings) -> CSR matrix, numpy and scipy only."""

    blocks: list[Block]
    lexicon: bool
    embeddings_weight: float

    def transform(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> Any:
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        offset = 0
        for block in self.blocks:
            r, c, v = block.rows(texts)
            rows += r
            cols += [offset + i for i in c]
            vals += v
            offset += len(block.idf)
        matrix = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(texts), offset)
        )
        extra = []
        if self.lexicon:
            extra.append(sp.csr_matrix(np.array([lexicon_scores(t) for t in texts], np.float32)))
        if self.embeddings_weight > 0:
            if embeddings is None or len(embeddings) != len(texts):
                raise ValueError("this model needs sentence embeddings for every text")
            extra.append(
                sp.csr_matrix(np.asarray(embeddings, np.float32) * self.embeddings_weight)
            )
        return sp.hstack([matrix, *extra], format="csr") if extra else matrix


class Featurizer:
    """Learns the TF-IDF vocabularies (scikit-learn) and compiles them to a FeatureMap."""

    def __init__(
        self,
        *,
        pairs: bool = True,
        lexicon: bool = False,
        negation: bool = False,
        embeddings_weight: float = 0.0,
    ) -> None:
        self.pairs = pairs
        self.lexicon = lexicon
        self.negation = negation
        self.embeddings_weight = embeddings_weight

    def fit(self, texts: Sequence[str]) -> FeatureMap:
        """Learn the vocabularies and IDF weights from ``texts``."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        # Rare features are noise in a large set, but all there is in a tiny one.
        min_df = 2 if len(texts) >= MIN_DF_FROM else 1
        names = ["negated_words" if self.negation else "words", "chars"]
        names += ["pairs"] if self.pairs else []
        blocks = []
        for name in names:
            vectorizer = TfidfVectorizer(
                analyzer=ANALYZERS[name],
                sublinear_tf=True,
                min_df=1 if name == "words" else min_df,
            )
            try:
                vectorizer.fit(texts)
            except ValueError:  # empty vocabulary, e.g. no two content words anywhere
                continue
            vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
            blocks.append(Block(name, vocabulary, vectorizer.idf_.astype(np.float64)))
        if not blocks:
            raise ValueError("no features: the texts have no words")
        return FeatureMap(blocks, self.lexicon, self.embeddings_weight)
