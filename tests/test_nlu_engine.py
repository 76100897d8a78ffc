"""The light engine on small data written here: features, calibration, the out-of-scope
band, saving and loading, CSV reading and scoring."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from nlp import NLU, OUT_OF_SCOPE
from nlp.classifier import SklearnTextClassifier
from nlp.csvdata import read_labelled_csv
from nlp.evaluation import score
from nlp.features import (
    ANALYZERS,
    Featurizer,
    content_word_pairs,
    negated_word_ngrams,
    text_char_ngrams,
    word_pairs,
    word_trigrams,
)
from nlp.lexicon import lexicon_scores, vader_scores
from nlp.models import NBLogistic, fit_offsets, macro_f1
from nlp.text import model_text
from nlp.training import CLASSIFIER_CONFIG, TrainingData, TrainingDataError, train_pipeline

ROOT = Path(__file__).resolve().parents[1]

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


@pytest.mark.parametrize(
    "ngrams", [(), ("words3", "text_chars", "pairs", "word_pairs"), ("negated_words",)]
)
def test_compiled_features_equal_scikit_learn_tfidf(ngrams: tuple[str, ...]):
    """The numpy-only FeatureMap computes what scikit-learn's TfidfVectorizer computes."""
    texts = [model_text(t) for t, _ in small_data().intents]
    features = Featurizer(ngrams=ngrams, pairs=True).fit(texts)
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
    assert "my&order" in word_pairs("refund for my order please")
    assert "my&order" not in content_word_pairs("refund for my order please")
    assert "my card hasnt" in word_trigrams("my card hasn't come")
    assert {" my", "y c", "my ca", "me "} <= set(text_char_ngrams("my card come"))


def test_intent_config_names_known_blocks():
    assert set(CLASSIFIER_CONFIG["intent"]["ngrams"].split(",")) <= ANALYZERS.keys()
    with pytest.raises(ValueError, match="unknown n-gram blocks: trigrams"):
        Featurizer(ngrams=["trigrams"])


def test_lexicon_flips_negated_words():
    positive, negative = lexicon_scores("great service"), lexicon_scores("not great at all")
    assert positive[2] > 0 > negative[2]


def test_vader_scores_say_the_tone():
    praise, complaint, plain = (
        vader_scores(t) for t in ("great service, thanks!", "awful, i hate it", "my order id")
    )
    assert praise[0] > 0.05 and praise[4] == 1.0 and praise[5] == 0.0
    assert complaint[0] < -0.05 and complaint[5] == 1.0
    assert plain[0] == 0.0 and plain[3] == 1.0


def test_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    gold, predicted = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    predicted[:100] = gold[:100]
    expected = f1_score(gold, predicted, average="macro")
    assert macro_f1(gold, predicted, 4) == pytest.approx(expected)


def test_offsets_favour_a_rare_label_for_macro_f1():
    """Scores biased towards the big label: the offsets win the small label's F1 back."""
    rng = np.random.default_rng(1)
    gold = np.array([0] * 900 + [1] * 100)
    z = np.column_stack([np.full(1000, 0.5), np.where(gold == 1, 0.3, 0.0)])
    z += rng.normal(0, 0.1, z.shape)
    offsets = fit_offsets(z, gold)
    assert macro_f1(gold, (z + offsets).argmax(1), 2) > macro_f1(gold, z.argmax(1), 2) + 0.05
    assert offsets[1] > offsets[0] and abs(offsets.sum()) < 1e-9


def test_nb_weighted_regression_is_one_linear_map_over_all_columns():
    """Each label's regression runs on the columns scaled by that label's naive-Bayes log
    ratio (dense columns after ``sparse_width`` unscaled); the scaling folds into coef_."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    texts = ["love it great", "great thanks love", "awful broken hate", "hate this awful"] * 5
    texts += ["where is it", "it is where"] * 5
    y = np.array(["pos", "pos", "neg", "neg"] * 5 + ["neu", "neu"] * 5)
    words = TfidfVectorizer().fit_transform(texts)
    dense = np.random.default_rng(0).normal(size=(len(texts), 1))
    x = sp.hstack([words, sp.csr_matrix(dense)], format="csr")
    width = words.shape[1]
    model = NBLogistic(c=3.0, sparse_width=width).fit(x, y)
    present = (words != 0).astype(float)
    for k, label in enumerate(model.classes_):
        mine = y == label
        p = 1 + np.asarray(present[mine].sum(0)).ravel()
        q = 1 + np.asarray(present[~mine].sum(0)).ravel()
        ratio = np.append(np.log((p / p.sum()) / (q / q.sum())), 1.0)
        scaled = x.multiply(ratio).tocsr()
        own = LogisticRegression(C=3.0, max_iter=3000).fit(scaled, mine)
        np.testing.assert_allclose(
            model.decision_function(x)[:, k], own.decision_function(scaled), atol=1e-6
        )
    assert list(model.classes_[model.decision_function(x).argmax(1)]) == list(y)


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


def test_prediction_computes_what_the_training_matrix_gives(small_nlu: NLU):
    """The numpy-only scoring of a loaded model equals features @ coef on scipy's matrix."""
    texts = [model_text(t) for t in ["refund my lamp", "hi there", "this is awful :(", "?"]]
    for name in ("intent", "sentiment"):
        component = small_nlu.nlp.get_pipe(name)
        assert isinstance(component, SklearnTextClassifier) and component.model is not None
        model = component.model
        expected = model.features.transform(texts) @ model.coef
        np.testing.assert_allclose(model.features.scores(texts, model.coef), expected, atol=1e-5)


def test_tokenizer_is_not_read_twice_and_old_models_still_load(small_nlu: NLU, tmp_path: Path):
    """Our models keep spacy.blank("en")'s tokenizer, rebuilt from the config when loading;
    a model saved without that note in its meta loads its tokenizer from disk."""
    import spacy

    small_nlu.save(tmp_path / "model")
    blank = spacy.blank("en")
    text = "Where's my order #10234?? I paid $25.50 on 03/04, e-mail me: a.b@shop.com :)"
    expected = [t.text for t in blank(text)]
    assert [t.text for t in NLU.load(tmp_path / "model").nlp.make_doc(text)] == expected
    meta_path = tmp_path / "model" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["crmbot"]["tokenizer"] == "blank_en"
    del meta["crmbot"]["tokenizer"]
    meta_path.write_text(json.dumps(meta))
    assert [t.text for t in NLU.load(tmp_path / "model").nlp.make_doc(text)] == expected


@pytest.mark.slow
def test_loading_a_model_imports_neither_scikit_learn_nor_scipy(small_nlu: NLU, tmp_path: Path):
    small_nlu.save(tmp_path / "model")
    code = (
        "import sys\nfrom nlp.pipeline import NLU\n"
        f"nlu = NLU.load({str(tmp_path / 'model')!r})\nnlu.analyze('refund my lamp, thanks!')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.split()[-1] == "[]", found.stdout


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
