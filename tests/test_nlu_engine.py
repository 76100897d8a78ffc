"""The light engine on small data written here: features, calibration, the out-of-scope
band, saving and loading, CSV reading and scoring."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp import NLU, OUT_OF_SCOPE
from nlp.csvdata import read_labelled_csv
from nlp.evaluation import score
from nlp.features import ANALYZERS, Featurizer, content_word_pairs, negated_word_ngrams
from nlp.lexicon import lexicon_scores
from nlp.text import model_text
from nlp.training import TrainingData, TrainingDataError, train_pipeline

TOPICS = {
    "track_order": ["where is my {}", "track my {}", "has my {} shipped", "{} status please"],
    "get_refund": ["refund my {}", "i want money back for the {}", "return the {} for cash"],
    "greet": ["hello there {}", "hi {}", "good morning {}"],
}
THINGS = ["order", "parcel", "package", "shoes", "lamp", "jacket", "phone", "book", "mug"]
SENTIMENT = {
    "negative": ["this is awful", "worst shop ever", "i am so angry", "terrible service"],
    "neutral": ["what are your hours", "i have a question", "send me the invoice"],
    "positive": ["thank you so much", "great service", "love it, perfect", "you are amazing"],
}
OUT = ["what is the capital of peru", "tell me a joke", "play some jazz", "solve 2x+3=7"]


def small_data() -> TrainingData:
    intents = [(t.format(x), name) for name, ts in TOPICS.items() for t in ts for x in THINGS]
    sentiment = [(t, label) for label, ts in SENTIMENT.items() for t in ts * 3]
    return TrainingData(intents=intents, sentiment=sentiment, out_of_scope=OUT * 3)


@pytest.fixture(scope="module")
def small_nlu() -> NLU:
    return NLU(train_pipeline(small_data(), progress=lambda _: None))


def test_model_text_normalises_noise_but_keeps_words():
    assert model_text("@shop Where is my order #10234??? soooo late 😡") == (
        "where is my order #00000?? soo late angry"
    )
    assert model_text("thanks :) http://x.co/a") == "thanks smile url"


def test_compiled_features_equal_scikit_learn_tfidf():
    """The numpy-only FeatureMap computes what scikit-learn's TfidfVectorizer computes."""
    texts = [model_text(t) for t, _ in small_data().intents]
    features = Featurizer(pairs=True).fit(texts)
    ours = features.transform(texts[:20]).toarray()
    offset = 0
    for block in features.blocks:
        sk = TfidfVectorizer(analyzer=ANALYZERS[block.analyzer], sublinear_tf=True, min_df=1)
        sk.fit(texts)
        theirs = sk.transform(texts[:20]).toarray()
        order = [block.vocabulary[t] for t in sk.get_feature_names_out()]
        width = len(block.idf)
        np.testing.assert_allclose(ours[:, offset : offset + width][:, order], theirs, rtol=1e-5)
        offset += width


def test_negation_and_pairs_analyzers():
    assert "not_happy" in negated_word_ngrams("i am not happy! great")
    assert "great" in negated_word_ngrams("i am not happy! great")
    assert "order&refund" in content_word_pairs("refund for my order please")


def test_lexicon_flips_negated_words():
    positive, negative = lexicon_scores("great service"), lexicon_scores("not great at all")
    assert positive[2] > 0 > negative[2]


def test_trained_pipeline_predicts_and_ranks_top_three(small_nlu: NLU):
    result = small_nlu.analyze("where is my jacket")
    assert result.intent == "track_order" and result.top_intent == "track_order"
    assert len(result.intent_ranking) == 3
    assert OUT_OF_SCOPE not in dict(result.intent_ranking)
    probs = [p for _, p in result.intent_ranking]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0001


def test_probabilities_are_calibrated_on_held_out_data():
    """Cross-fitted calibration: on noisy held-out messages, mean confidence ≈ accuracy."""
    rng = random.Random(0)
    topics = {
        "a": "order parcel ship track where late arrive status courier",
        "b": "refund money back return cash repay reimburse credit",
        "c": "password login reset account locked forgot sign email",
    }
    words = {label: text.split() for label, text in topics.items()}
    shared = str.split("please my the i want help need can you now")

    def message(label: str) -> str:
        picked = rng.sample(words[label], 2) + rng.sample(shared, 3)
        if rng.random() < 0.35:  # a third of the messages also use another topic's word
            picked.append(rng.choice(words[rng.choice([k for k in words if k != label])]))
        rng.shuffle(picked)
        return " ".join(picked)

    train = [(message(k), k) for k in words for _ in range(60)]
    held = [(message(k), k) for k in words for _ in range(150)]
    data = TrainingData(intents=train, sentiment=small_data().sentiment, out_of_scope=[])
    nlu = NLU(train_pipeline(data, progress=lambda _: None), oos_threshold=0.0)
    results = nlu.analyze_many([t for t, _ in held])
    confidence = np.array([r.confidence for r in results])
    correct = np.array([r.intent == gold for r, (_, gold) in zip(results, held, strict=True)])
    assert 0.6 < correct.mean() < 1.0
    assert abs(confidence.mean() - correct.mean()) < 0.1
    confident = confidence >= np.median(confidence)
    assert correct[confident].mean() > correct[~confident].mean()


def test_out_of_scope_threshold_and_clarification_band(small_nlu: NLU):
    pipeline = small_nlu.nlp
    text = "shoes"
    confidence = small_nlu.analyze(text).confidence
    strict = NLU(pipeline, oos_threshold=min(1.0, confidence + 0.01))
    assert strict.analyze(text).intent == OUT_OF_SCOPE
    assert not strict.needs_clarification(strict.analyze(text))
    unsure = NLU(pipeline, oos_threshold=0.0, confident_threshold=1.0)
    assert unsure.analyze(text).intent != OUT_OF_SCOPE
    assert unsure.needs_clarification(unsure.analyze(text))
    sure = NLU(pipeline, oos_threshold=0.0, confident_threshold=0.0)
    assert not sure.needs_clarification(sure.analyze(text))
    assert small_nlu.analyze("   ").intent == OUT_OF_SCOPE
    assert small_nlu.analyze("play some jazz music").intent == OUT_OF_SCOPE


def test_saved_pipeline_loads_and_predicts_the_same(small_nlu: NLU, tmp_path: Path):
    small_nlu.save(tmp_path / "model")
    loaded = NLU.load(tmp_path / "model")
    for text in ["refund my lamp", "hi there", "this is awful", "who are you"]:
        assert loaded.analyze(text) == small_nlu.analyze(text)
    assert not list((tmp_path / "model").rglob("*.joblib")), "no pickles in a saved model"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("words,intent\nhi,greet\n", r"missing column text"),
        ("text,label\nhi,greet\n", r"missing column intent"),
        ("text,intent\nhi,greet\nbye,\n", r"empty intent label on line 3"),
        ("text,intent\nhi,greet\n,bye\n", r"empty text on line 3"),
        ("text,intent\nhi,greet\nhello,greet\n", r"only one intent label \('greet'\)"),
        ("", r"missing columns text, intent .*found: none"),
    ],
)
def test_bad_csv_is_named(tmp_path: Path, content: str, message: str):
    path = tmp_path / "data.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TrainingDataError, match=message):
        read_labelled_csv(path, task="intent")


def test_csv_task_and_sentiment_labels_are_checked(tmp_path: Path):
    path = tmp_path / "data.csv"
    path.write_text("text,sentiment\ngood,Positive\nmeh,so-so\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"unknown task 'topic'"):
        read_labelled_csv(path, task="topic")
    with pytest.raises(TrainingDataError, match=r"sentiment must be one of .* line 3"):
        read_labelled_csv(path, task="sentiment")
    with pytest.raises(TrainingDataError, match="file not found"):
        read_labelled_csv(tmp_path / "nope.csv")


def test_out_of_scope_rows_count_as_right_when_rejected():
    report = score(
        ["greet", OUT_OF_SCOPE, "track_order", "track_order"],
        ["greet", OUT_OF_SCOPE, OUT_OF_SCOPE, "greet"],
        task="intent",
    )
    assert report.accuracy == 0.5 and report.n == 4
    assert ("track_order", OUT_OF_SCOPE, 1) in report.confused
    assert {"accuracy", "macro_f1", "n"} <= set(report.to_dict())
