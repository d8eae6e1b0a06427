"""The observation log: what the company sees from a campaign (no ground truth in it).

Columnar and append-only: each campaign appends one chunk; columns are materialised on demand. Round
trips through CSV and Parquet exactly, and exports the Open Bandit Pipeline's ``bandit_feedback`` dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array
from actionbank_env.core.io import atomic_write, write_frame_csv
from actionbank_env.core.users import FEATURE_NAMES
from actionbank_env.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ObservationLog", "LOG_COLUMNS"]

#: Column order of the log (features in between user_id and action_id).
LOG_COLUMNS: tuple[str, ...] = (
    "iteration",
    "step",
    "user_id",
    *FEATURE_NAMES,
    "action_id",
    "action_index",
    "propensity",
    "click",
)

_DTYPES: dict[str, Any] = {
    "iteration": np.int64,
    "step": np.int64,
    "user_id": np.int64,
    "action_id": object,
    "action_index": np.int64,
    "propensity": np.float64,
    "click": np.int8,
    **{f: np.float64 for f in FEATURE_NAMES},
}


class ObservationLog:
    """Logged (user features, action, propensity, click) rows of one or more campaigns.

    Example:
        >>> log = ObservationLog()
        >>> log.append(iteration=0, step=np.arange(2), user_id=np.array([5, 6]), users=np.full((2, 8), 0.5),
        ...            action_ids=np.array(["A00001", "A00000"]), action_index=np.array([1, 0]),
        ...            propensity=np.array([0.5, 0.5]), click=np.array([1, 0]))
        >>> len(log), log.clicks.tolist(), log.ctr
        (2, [1, 0], 0.5)
    """

    def __init__(self, columns: Mapping[str, NDArray[Any]] | None = None) -> None:
        self._chunks: list[dict[str, NDArray[Any]]] = []
        self._cache: dict[str, NDArray[Any]] | None = None
        if columns is not None:
            self._append_columns(columns)

    # ------------------------------------------------------------------ building

    def append(
        self,
        *,
        iteration: int,
        step: NDArray[np.int64],
        user_id: NDArray[np.int64],
        users: NDArray[np.float64],
        action_ids: NDArray[Any] | Sequence[str],
        action_index: NDArray[np.int64],
        propensity: NDArray[np.float64],
        click: NDArray[Any],
    ) -> None:
        """Append one chunk of rows (all arrays of length n; ``users`` of shape (n, d_user))."""
        users = check_array("users", users, ndim=2)
        if users.shape[1] != len(FEATURE_NAMES):
            raise ConfigError(f"users must have {len(FEATURE_NAMES)} columns, got shape {users.shape}.")
        n = users.shape[0]
        columns: dict[str, Any] = {
            "iteration": np.full(n, iteration, dtype=np.int64),
            "step": step,
            "user_id": user_id,
            "action_id": np.asarray(action_ids, dtype=object),
            "action_index": action_index,
            "propensity": propensity,
            "click": click,
        }
        for j, name in enumerate(FEATURE_NAMES):
            columns[name] = users[:, j]
        self._append_columns(columns)

    def _append_columns(self, columns: Mapping[str, Any]) -> None:
        missing = [c for c in LOG_COLUMNS if c not in columns]
        if missing:
            raise ConfigError(f"observation log must have the columns {list(LOG_COLUMNS)}; missing {missing}.")
        chunk = {c: np.asarray(columns[c], dtype=_DTYPES[c]) for c in LOG_COLUMNS}
        lengths = {c: v.shape[0] for c, v in chunk.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"observation log columns must have one length, got {lengths}.")
        if chunk["click"].size and not np.all((chunk["click"] == 0) | (chunk["click"] == 1)):
            raise ConfigError("observation log click must be 0 or 1.")
        props = chunk["propensity"]
        if props.size and not np.all((props > 0) & (props <= 1)):
            raise ConfigError("observation log propensity must be in (0, 1].")
        for arr in chunk.values():
            arr.setflags(write=False)
        self._chunks.append(chunk)
        self._cache = None

    def extend(self, other: ObservationLog) -> None:
        """Append every row of ``other``."""
        if len(other):
            self._append_columns(other.columns)

    @classmethod
    def concat(cls, logs: Sequence[ObservationLog]) -> ObservationLog:
        """One log with the rows of ``logs`` in order."""
        out = cls()
        for log in logs:
            out.extend(log)
        return out

    # ------------------------------------------------------------------ reading

    @property
    def columns(self) -> dict[str, NDArray[Any]]:
        """All columns, each an array of length ``len(self)`` (read-only)."""
        if self._cache is None:
            if not self._chunks:
                self._cache = {c: np.zeros(0, dtype=_DTYPES[c]) for c in LOG_COLUMNS}
            elif len(self._chunks) == 1:
                self._cache = dict(self._chunks[0])
            else:
                self._cache = {c: np.concatenate([ch[c] for ch in self._chunks]) for c in LOG_COLUMNS}
                self._chunks = [self._cache]
            for arr in self._cache.values():
                arr.setflags(write=False)
        return self._cache

    def __len__(self) -> int:
        return sum(ch["click"].shape[0] for ch in self._chunks)

    @property
    def users(self) -> NDArray[np.float64]:
        """User features, shape (n, d_user)."""
        cols = self.columns
        return np.column_stack([cols[f] for f in FEATURE_NAMES]) if len(self) else np.zeros((0, len(FEATURE_NAMES)))

    @property
    def action_ids(self) -> NDArray[Any]:
        """Served action ids, shape (n,)."""
        return self.columns["action_id"]

    @property
    def clicks(self) -> NDArray[np.int8]:
        """Clicks (0/1), shape (n,)."""
        return self.columns["click"]

    @property
    def propensities(self) -> NDArray[np.float64]:
        """Logging propensities, shape (n,)."""
        return self.columns["propensity"]

    @property
    def ctr(self) -> float:
        """Realised click-through rate (NaN for an empty log)."""
        return float(self.clicks.mean()) if len(self) else float("nan")

    def select(self, mask: NDArray[np.bool_]) -> ObservationLog:
        """The rows where ``mask`` is true."""
        return ObservationLog({c: v[mask] for c, v in self.columns.items()})

    def iteration(self, iteration: int) -> ObservationLog:
        """The rows of one campaign iteration."""
        return self.select(self.columns["iteration"] == iteration)

    def per_action(self) -> dict[str, tuple[int, int]]:
        """Impressions and clicks per action id: ``{id: (impressions, clicks)}``."""
        ids, inverse = np.unique(self.action_ids.astype(str), return_inverse=True)
        shows = np.bincount(inverse, minlength=len(ids))
        clicks = np.bincount(inverse, weights=self.clicks, minlength=len(ids)).astype(np.int64)
        return {str(i): (int(s), int(c)) for i, s, c in zip(ids, shows, clicks, strict=True)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObservationLog):
            return NotImplemented
        a, b = self.columns, other.columns
        return len(self) == len(other) and all(np.array_equal(a[c], b[c]) for c in LOG_COLUMNS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ObservationLog(n_rows={len(self)}, ctr={self.ctr:.4f})"

    # ------------------------------------------------------------------ IO

    def to_pandas(self) -> pd.DataFrame:
        """The log as a DataFrame with the :data:`LOG_COLUMNS` columns."""
        import pandas as pd

        return pd.DataFrame({c: np.asarray(v) for c, v in self.columns.items()}, columns=list(LOG_COLUMNS))

    @classmethod
    def from_pandas(cls, frame: pd.DataFrame) -> ObservationLog:
        """Inverse of :meth:`to_pandas`."""
        missing = [c for c in LOG_COLUMNS if c not in frame.columns]
        if missing:
            raise ConfigError(f"observation log must have the columns {list(LOG_COLUMNS)}; missing {missing}.")
        columns = {c: frame[c].to_numpy() for c in LOG_COLUMNS}
        columns["action_id"] = frame["action_id"].astype(str).to_numpy(dtype=object)
        return cls(columns)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write CSV atomically; floats read back exactly (:func:`~actionbank_env.core.io.write_frame_csv`)."""
        frame = self.to_pandas()
        return atomic_write(path, lambda handle: write_frame_csv(handle, frame))

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> ObservationLog:
        """Read a log written by :meth:`to_csv`, checking it cell by cell.

        Raises:
            DataError: Naming the file, the row and the value: not a readable CSV, a missing column, an empty or
                non-numeric cell, a click other than 0/1, a propensity outside (0, 1].
        """
        import pandas as pd

        try:
            frame = pd.read_csv(path, dtype={"action_id": str})
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(
                f"{path} is not a readable observation log: {type(exc).__name__}: {str(exc)[:200]}"
            ) from None
        missing = [c for c in LOG_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"{path} must have the columns {list(LOG_COLUMNS)}; missing {missing}.")
        for column in LOG_COLUMNS:
            if column == "action_id":
                bad = frame[column].isna().to_numpy()
                rule = "a non-empty action id"
            else:
                values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
                ok = np.isfinite(values)
                if column == "click":
                    ok &= (values == 0.0) | (values == 1.0)
                    rule = "0 or 1"
                elif column == "propensity":
                    ok &= (values > 0.0) & (values <= 1.0)
                    rule = "a number in (0, 1]"
                else:
                    rule = "a finite number"
                bad = ~ok
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{path} row {row + 2}: {column} must be {rule}, got {str(frame[column][row])!r}.")
        return cls.from_pandas(frame)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write Parquet (pyarrow) atomically."""
        frame = self.to_pandas()
        frame["action_id"] = frame["action_id"].astype(str)
        return atomic_write(path, lambda handle: frame.to_parquet(handle, index=False, engine="pyarrow"))

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> ObservationLog:
        """Read a log written by :meth:`to_parquet`."""
        import pandas as pd

        return cls.from_pandas(pd.read_parquet(path, engine="pyarrow"))

    def to_obp(self, action_embeddings: Mapping[str, NDArray[np.floating[Any]]]) -> dict[str, Any]:
        """Open Bandit Pipeline ``bandit_feedback`` dict.

        Actions are indexed over the sorted distinct ids that were served, so logs of several banks fit
        one action space.

        Args:
            action_embeddings: Embedding of every served action id (e.g. from the catalog or the banks).

        Returns:
            ``{"n_rounds", "n_actions", "action", "position", "reward", "pscore", "context",
            "action_context", "action_ids"}`` as OBP expects.
        """
        ids, inverse = np.unique(self.action_ids.astype(str), return_inverse=True)
        missing = [a for a in ids.tolist() if a not in action_embeddings]
        if missing:
            raise ConfigError(f"action_embeddings must cover every served action; missing {missing[:5]}.")
        return {
            "n_rounds": len(self),
            "n_actions": len(ids),
            "action": inverse.astype(np.int64),
            "position": np.zeros(len(self), dtype=np.int64),
            "reward": self.clicks.astype(np.int64),
            "pscore": self.propensities.astype(np.float64),
            "context": self.users,
            "action_context": np.stack([np.asarray(action_embeddings[a], dtype=np.float64) for a in ids.tolist()])
            if len(ids)
            else np.zeros((0, 0)),
            "action_ids": ids.tolist(),
        }
