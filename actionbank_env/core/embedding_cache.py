"""A persistent embedding cache (SQLite) and an embedder wrapper that uses it.

Entries are keyed by (embedder name, SHA-256 of the text) and hold the float32 vector as bytes together
with its dimension, which is checked on every read. The file uses SQLite's write-ahead log and a busy
timeout, so two processes can read and write it at the same time.

Example:
    >>> import tempfile, pathlib
    >>> from actionbank_env.core.embedders import HashingEmbedder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with EmbeddingCache(pathlib.Path(tmp) / "emb.sqlite") as cache:
    ...         embedder = CachedEmbedder(HashingEmbedder(dim=8), cache)
    ...         _ = embedder.embed(["hello", "world"])
    ...         _ = embedder.embed(["hello"])
    ...         embedder.hits, embedder.misses
    (1, 2)
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_str
from actionbank_env.errors import ConfigError, DataError

if TYPE_CHECKING:
    from actionbank_env.core.embedders import Embedder

__all__ = ["EmbeddingCache", "CachedEmbedder", "default_cache_path"]

logger = logging.getLogger(__name__)

_BUSY_TIMEOUT_S = 60.0
_CHUNK = 500  # stays well below SQLite's limit on bound parameters


def default_cache_path() -> Path:
    """``$ACTIONBANK_CACHE_DIR/embeddings.sqlite``, or ``~/.cache/actionbank_env/embeddings.sqlite``.

    Example:
        >>> default_cache_path().name
        'embeddings.sqlite'
    """
    root = os.environ.get("ACTIONBANK_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "actionbank_env"
    return base / "embeddings.sqlite"


def _connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating its folder) an SQLite file in WAL mode with a busy timeout, in autocommit mode."""
    path = Path(path).expanduser()
    where = f"cache {path} (set ACTIONBANK_CACHE_DIR to move it)"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{where}: {path.parent} must be a folder, but a file is in the way.") from None
    except PermissionError:
        raise ConfigError(f"{where}: no permission to create {path.parent}.") from None
    if path.exists() and not path.is_file():
        raise ConfigError(f"{where} must be a file, got a folder.")
    try:
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigError(f"{where} cannot be opened: {exc}.") from None
    try:
        connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.OperationalError:
        connection.close()
        raise  # busy or an I/O failure, not a broken file
    except sqlite3.DatabaseError as exc:  # "file is not a database": a corrupt or foreign file
        connection.close()
        raise DataError(f"{where} is not an SQLite database ({exc}); delete it to start a new cache.") from None
    return connection


def _text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Embeddings on disk, keyed by (model name, SHA-256 of the text).

    Args:
        path: The SQLite file (created with its folder if missing).

    Attributes:
        path: The file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = _connect(self.path)
        self._connection.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, text_hash BLOB NOT NULL, "
            "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_hash)) WITHOUT ROWID"
        )

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ConfigError(f"EmbeddingCache({str(self.path)!r}) is closed.")
        return self._connection

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def get_many(self, model: str, texts: Sequence[str], *, dim: int | None = None) -> dict[int, NDArray[np.float32]]:
        """Cached vectors of ``texts`` under ``model``.

        Args:
            model: Embedder name.
            texts: Texts to look up.
            dim: Expected dimension (checked when given).

        Returns:
            ``{position in texts: float32 vector (dim,)}`` for the texts found.

        Raises:
            ConfigError: If a stored entry is corrupt (its bytes do not match its dimension) or has another
                dimension than ``dim``.
        """
        check_str("EmbeddingCache.get_many model", model)
        hashes = [_text_hash(t) for t in texts]
        found: dict[bytes, tuple[int, bytes]] = {}
        with self._lock:
            db = self._db()
            unique = list(dict.fromkeys(hashes))
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT text_hash, dim, vector FROM embeddings WHERE model = ? AND text_hash IN ({marks})",
                    (model, *chunk),
                ).fetchall()
                for text_hash, stored_dim, blob in rows:
                    found[bytes(text_hash)] = (int(stored_dim), bytes(blob))
        out: dict[int, NDArray[np.float32]] = {}
        for i, text_hash in enumerate(hashes):
            entry = found.get(text_hash)
            if entry is None:
                continue
            stored_dim, blob = entry
            if len(blob) != 4 * stored_dim:
                raise ConfigError(
                    f"EmbeddingCache entry for model {model!r} at {str(self.path)!r} is corrupt: {len(blob)} bytes "
                    f"for dimension {stored_dim}; delete the file to rebuild it."
                )
            if dim is not None and stored_dim != dim:
                raise ConfigError(
                    f"EmbeddingCache entry for model {model!r} at {str(self.path)!r} has dimension {stored_dim}, "
                    f"expected {dim}; the embedder's name must change when its output changes (or delete the file)."
                )
            out[i] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        return out

    def put_many(self, model: str, texts: Sequence[str], embeddings: Any) -> None:
        """Store ``embeddings`` (float32, shape (len(texts), dim)) of ``texts`` under ``model``, in one transaction."""
        check_str("EmbeddingCache.put_many model", model)
        matrix = check_array(
            "EmbeddingCache.put_many embeddings", embeddings, shape=(len(texts), None), dtype=np.float32
        )
        if not texts:
            return
        dim = int(matrix.shape[1])
        rows = [
            (model, _text_hash(t), dim, np.ascontiguousarray(v, dtype="<f4").tobytes())
            for t, v in zip(texts, matrix, strict=True)
        ]
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO embeddings (model, text_hash, dim, vector) VALUES (?, ?, ?, ?)", rows
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


class CachedEmbedder:
    """An :class:`~actionbank_env.core.embedders.Embedder` that reads from and fills an :class:`EmbeddingCache`.

    Same ``name`` and ``dim`` as the wrapped embedder; each :meth:`embed` sends only the cache misses (each
    distinct text once) to the wrapped embedder, in one call.

    Args:
        embedder: The embedder to wrap.
        cache: Where vectors are kept.

    Attributes:
        name: The wrapped embedder's name (the cache key's model part).
        dim: The wrapped embedder's dimension.
        semantic: Whether the wrapped embedder encodes meaning (``False`` only when it says so).
        hits: Texts (positions) served from the cache so far.
        misses: Texts (positions) that were not in the cache so far.
    """

    def __init__(self, embedder: Embedder, cache: EmbeddingCache) -> None:
        if not isinstance(cache, EmbeddingCache):
            raise TypeError(f"CachedEmbedder.cache must be an EmbeddingCache, got {type(cache).__name__}.")
        self.embedder = embedder
        self.cache = cache
        self.name: str = str(embedder.name)
        self.dim: int = int(embedder.dim)
        self.semantic: bool = bool(getattr(embedder, "semantic", True))
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.embedder!r}, {self.cache!r})"

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> (len(texts), dim) float32, unit rows; only misses reach the wrapped embedder."""
        texts = list(texts)
        dim = self.dim
        out = np.empty((len(texts), dim), dtype=np.float32)
        found = self.cache.get_many(self.name, texts, dim=dim)
        for i, vector in found.items():
            out[i] = vector
        missing = [i for i in range(len(texts)) if i not in found]
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            vectors = np.asarray(self.embedder.embed(unique), dtype=np.float32)
            if vectors.shape != (len(unique), dim):
                raise ConfigError(
                    f"{self.name} returned embeddings of shape {vectors.shape}, expected {(len(unique), dim)}."
                )
            self.cache.put_many(self.name, unique, vectors)
            row_of = {t: r for r, t in enumerate(unique)}
            rows = np.fromiter((row_of[texts[i]] for i in missing), dtype=np.int64, count=len(missing))
            out[np.asarray(missing, dtype=np.int64)] = vectors[rows]
        return out
