"""Features of the classifiers: n-grams of the text, a sentiment lexicon, sentence embeddings.

Model texts (see :func:`nlp.text.model_text`) and, optionally, their sentence embeddings
become one sparse matrix:

* word 1-2-grams or 1-3-grams, TF-IDF (for sentiment, words after a negator are marked:
  "not_happy");
* character 2-5-grams within word bounds, or across them ("y c", "my ca"), TF-IDF (robust
  to typos and word forms);
* unordered pairs of content words, lightly stemmed ("refund" + "arrive" wherever they
  stand in the message), and pairs of all words, TF-IDF: two words together that n-grams
  miss;
* optionally the lexicon features of :mod:`nlp.lexicon` and VADER's scores (sentiment);
* optionally a dense sentence embedding, scaled by ``embeddings_weight``.

Which n-gram blocks a classifier uses is its ``ngrams`` setting (names of
:data:`ANALYZERS`), fixed per task in :mod:`nlp.training`.

:class:`Featurizer` learns the vocabularies with scikit-learn at training time and
returns a :class:`FeatureMap`, which computes the same numbers (sublinear TF, IDF, L2 norm
per block) with numpy alone: :meth:`FeatureMap.transform` gives the sparse matrix that
training needs, :meth:`FeatureMap.scores` multiplies the features with a weight matrix
without building one, so a loaded model never imports scipy or scikit-learn.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp.lexicon import lexicon_scores, vader_scores
from nlp.text import word_set

MIN_DF_FROM = 200
_TOKEN = re.compile(r"\w+|[!?]")
_WORD = re.compile(r"\w+")


_STOP = word_set(
    "a an the to of and or in on at for from with by is are was were be been am i me my "
    "mine you your it its this that these those do does did have has had can could would "
    "will shall should please pls hi hello hey"
)
_NEGATORS = word_set(
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


def word_trigrams(text: str) -> list[str]:
    """Analyzer: word 1-3-grams (``!`` and ``?`` count as words)."""
    tokens = _TOKEN.findall(text.replace("'", ""))
    return _uni_bigrams(tokens) + [
        f"{a} {b} {c}" for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)
    ]


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


def text_char_ngrams(text: str) -> list[str]:
    """Analyzer: character 2-5-grams of the whole text padded with spaces (across words)."""
    padded = f" {text} "
    return [padded[i : i + n] for n in range(2, 6) for i in range(len(padded) - n + 1)]


def _pairs(words: list[str]) -> list[str]:
    return [f"{a}&{b}" for i, a in enumerate(words) for b in words[i + 1 :]]


def content_word_pairs(text: str) -> list[str]:
    """Analyzer: every unordered pair of distinct, lightly stemmed content words."""
    return _pairs(sorted({_stem(w) for w in _WORD.findall(text) if w not in _STOP})[:30])


def word_pairs(text: str) -> list[str]:
    """Analyzer: every unordered pair of distinct, lightly stemmed words (stop words too)."""
    return _pairs(sorted({_stem(w) for w in _WORD.findall(text)})[:30])


ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "words": word_ngrams,
    "words3": word_trigrams,
    "negated_words": negated_word_ngrams,
    "chars": char_ngrams,
    "text_chars": text_char_ngrams,
    "pairs": content_word_pairs,
    "word_pairs": word_pairs,
}
#: Blocks whose rare n-grams are kept in large training sets too (see Featurizer.fit).
_KEEP_RARE = frozenset({"words", "words3"})


@dataclass
class Block:
    """One TF-IDF block of a compiled :class:`FeatureMap`."""

    analyzer: str
    vocabulary: dict[str, int]
    idf: np.ndarray

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of the L2-normalised sublinear TF-IDF of one text."""
        found = [
            i for i in map(self.vocabulary.get, ANALYZERS[self.analyzer](text)) if i is not None
        ]
        idx, tf = np.unique(np.asarray(found, dtype=np.int64), return_counts=True)
        weights = (1.0 + np.log(tf)) * self.idf[idx]
        if len(weights):
            weights /= np.sqrt(np.dot(weights, weights))
        return idx, weights


@dataclass
class FeatureMap:
    """Compiled features: texts (+ embeddings) -> CSR matrix, numpy and scipy only."""

    blocks: list[Block]
    lexicon: bool
    embeddings_weight: float
    vader: bool = False

    @property
    def sparse_width(self) -> int:
        """The number of n-gram columns; the dense columns (:meth:`dense`) follow them."""
        return sum(len(block.idf) for block in self.blocks)

    def sparse(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of the n-gram features of one text, all blocks."""
        cols, vals, offset = [], [], 0
        for block in self.blocks:
            idx, weights = block.features(text)
            cols.append(idx + offset)
            vals.append(weights)
            offset += len(block.idf)
        return np.concatenate(cols), np.concatenate(vals)

    def dense(self, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray | None:
        """The dense columns (lexicon, VADER, sentence embedding) of ``texts``, or None."""
        parts = []
        if self.lexicon:
            parts.append(np.array([lexicon_scores(t) for t in texts], np.float32))
        if self.vader:
            parts.append(np.array([vader_scores(t) for t in texts], np.float32))
        if self.embeddings_weight > 0:
            if embeddings is None or len(embeddings) != len(texts):
                raise ValueError("this model needs sentence embeddings for every text")
            parts.append(np.asarray(embeddings, np.float32) * self.embeddings_weight)
        return np.hstack(parts).reshape(len(texts), -1) if parts else None

    def scores(
        self, texts: Sequence[str], weights: np.ndarray, embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """``transform(texts) @ weights`` without building the matrix (numpy only)."""
        z = np.zeros((len(texts), weights.shape[1]))
        if not len(texts):
            return z
        for row, text in enumerate(texts):
            cols, vals = self.sparse(text)
            if len(cols):
                z[row] = vals @ weights[cols]
        dense = self.dense(texts, embeddings)
        if dense is not None:
            z += dense @ weights[self.sparse_width :]
        return z

    def transform(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> Any:
        """The feature matrix of ``texts`` (scipy CSR, for training)."""
        import scipy.sparse as sp

        rows, cols, vals = [], [], []
        for row, text in enumerate(texts):
            c, v = self.sparse(text)
            rows.append(np.full(len(c), row))
            cols.append(c)
            vals.append(v)
        matrix = sp.csr_matrix(
            (
                np.concatenate([np.zeros(0), *vals]).astype(np.float32),
                (
                    np.concatenate([np.zeros(0, int), *rows]),
                    np.concatenate([np.zeros(0, int), *cols]),
                ),
            ),
            shape=(len(texts), self.sparse_width),
        )
        dense = self.dense(texts, embeddings)
        return (
            sp.hstack([matrix, sp.csr_matrix(dense)], format="csr")
            if dense is not None
            else matrix
        )


class Featurizer:
    """Learns the TF-IDF vocabularies (scikit-learn) and compiles them to a FeatureMap."""

    def __init__(
        self,
        *,
        ngrams: Sequence[str] = (),
        pairs: bool = True,
        lexicon: bool = False,
        vader: bool = False,
        negation: bool = False,
        embeddings_weight: float = 0.0,
    ) -> None:
        """``ngrams``: the blocks (names of ANALYZERS); empty: word 1-2-grams (negated with
        ``negation``), character 2-5-grams and, with ``pairs``, content word pairs."""
        unknown = sorted(set(ngrams) - ANALYZERS.keys())
        if unknown:
            raise ValueError(f"unknown n-gram blocks: {', '.join(unknown)}")
        self.ngrams = list(ngrams) or [
            "negated_words" if negation else "words",
            "chars",
            *(["pairs"] if pairs else []),
        ]
        self.lexicon = lexicon
        self.vader = vader
        self.embeddings_weight = embeddings_weight

    def fit(self, texts: Sequence[str]) -> FeatureMap:
        """Learn the vocabularies and IDF weights from ``texts``."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        # Rare features are noise in a large set, but all there is in a tiny one.
        min_df = 2 if len(texts) >= MIN_DF_FROM else 1
        blocks = []
        for name in self.ngrams:
            vectorizer = TfidfVectorizer(
                analyzer=ANALYZERS[name],
                sublinear_tf=True,
                min_df=1 if name in _KEEP_RARE else min_df,
            )
            try:
                vectorizer.fit(texts)
            except ValueError:  # empty vocabulary, e.g. no two content words anywhere
                continue
            vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
            blocks.append(Block(name, vocabulary, vectorizer.idf_.astype(np.float64)))
        if not blocks:
            raise ValueError("no features: the texts have no words")
        return FeatureMap(blocks, self.lexicon, self.embeddings_weight, self.vader)
