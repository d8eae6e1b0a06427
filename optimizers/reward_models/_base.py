"""Machinery shared by every reward model: construction from a validated config, input checks, save/load.

A subclass sets ``name`` and ``config_class`` and implements ``_fit`` / ``_predict_z`` (on standardised users
and projected embeddings, see :mod:`optimizers.reward_models._features`) plus ``_state`` / ``_restore`` for
persistence. Saved models are folders, never pickles:

- ``config.json``: ``{"model": name, "format_version": 1, "config": {...}, "state": {...}}``
- ``arrays.npz``: numpy arrays (feature map and model arrays), read with ``allow_pickle=False``
- model-specific files (``weights.pt`` torch state dict loaded with ``weights_only=True``, ``model.txt``)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_array, check_int, check_real, resolve_config
from actionbank_env.errors import ActionBankError, ConfigError, ConfigTypeError
from optimizers.reward_models._features import FeatureMap, distinct_rows

__all__ = [
    "NotFittedError",
    "RewardModelBase",
    "bounded_sample",
    "check_common_config",
    "check_max_fit_rows",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1


class NotFittedError(ActionBankError, ValueError, AttributeError):
    """A reward model was used before ``fit`` (subclasses ValueError and AttributeError, as scikit-learn's)."""


def check_common_config(config: Any) -> None:
    """Validate the fields every reward-model config has (``embedding_components``)."""
    name = type(config).__name__
    check_int(f"{name}.embedding_components", config.embedding_components, low=1)


def check_max_fit_rows(config: Any) -> None:
    """Validate ``config.max_fit_rows`` (``None`` or an int >= 2) of the models that bound their fitting rows."""
    if config.max_fit_rows is not None:
        check_int(f"{type(config).__name__}.max_fit_rows", config.max_fit_rows, low=2)


def bounded_sample(
    clicks: NDArray[np.float64], weights: NDArray[np.float64], max_rows: int, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """A reweighted sample of at most ``max_rows`` logged rows that stands for all of them (case-control sampling).

    The rows are split by outcome. The rarer outcome (the clicks, in any realistic log) keeps all its rows, or a
    uniform ``max_rows // 2`` of them when there are more; the other outcome fills the rest with a uniform sample
    without replacement. Each kept row's weight is divided by its outcome's sampling rate (Horvitz-Thompson), and
    the weights are rescaled to the original total, so the weighted log-likelihood of the sample is an unbiased
    estimate of the full log's, with the same total weight against the prior: a model fitted on it estimates the
    full-data fit, with a larger variance only in the common outcome's term.

    Args:
        clicks: 0/1 outcome of each row, shape (n,), both outcomes present.
        weights: Non-negative row weights, shape (n,).
        max_rows: Size of the sample (< n).
        rng: Draws the sample.

    Returns:
        ``(rows, weights)``: the kept rows in ascending order, shape (max_rows,), and their new weights.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> clicks = (rng.random(10_000) < 0.03).astype(float)  # ~300 clicks: fewer than half the sample
        >>> rows, w = bounded_sample(clicks, np.ones(10_000), 1_000, rng)
        >>> rows.size, int(clicks[rows].sum()) == int(clicks.sum()), round(float(w.sum()))
        (1000, True, 10000)
    """
    n = clicks.shape[0]
    positive = clicks == 1.0
    by_outcome = (np.flatnonzero(positive), np.flatnonzero(~positive))
    rare, common = sorted(by_outcome, key=lambda rows: rows.size)
    n_rare = min(rare.size, max_rows // 2)
    kept: list[NDArray[np.int64]] = []
    rate = np.empty(n, dtype=np.float64)
    for rows, size in ((rare, n_rare), (common, max_rows - n_rare)):
        kept.append(rows if size >= rows.size else rng.choice(rows, size=size, replace=False))
        rate[rows] = min(1.0, size / rows.size)
    chosen = np.sort(np.concatenate(kept)).astype(np.int64)
    new_weights = weights[chosen] / rate[chosen]
    total = float(new_weights.sum())
    if total > 0.0:
        new_weights *= float(weights.sum()) / total
    return chosen, new_weights


def check_training_fields(config: Any) -> None:
    """Validate the torch training fields (learning rate, weight decay, batch size, epochs, patience, validation
    share, scoring chunk) that the neural, Bayesian neural and FT-Transformer configs share, then the common ones.

    The fields stay declared in each config because their defaults differ by model (e.g. 40 vs 50 epochs).
    """
    name = type(config).__name__
    check_real(f"{name}.learning_rate", config.learning_rate, low=0.0, low_open=True)
    check_real(f"{name}.weight_decay", config.weight_decay, low=0.0)
    check_int(f"{name}.batch_size", config.batch_size, low=1)
    check_int(f"{name}.max_epochs", config.max_epochs, low=1)
    check_int(f"{name}.patience", config.patience, low=1)
    check_real(f"{name}.validation_fraction", config.validation_fraction, low=0.0, high=0.5, high_open=True)
    check_int(f"{name}.max_pairs_per_chunk", config.max_pairs_per_chunk, low=1)
    check_common_config(config)


def _as_tuple_of_ints(config: Any, field: str, *, low: int) -> None:
    """Validate a tuple-of-ints field (JSON round trips give lists) and store it as a tuple."""
    name = f"{type(config).__name__}.{field}"
    value = getattr(config, field)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigTypeError(f"{name} must be a tuple of ints, got {value!r} of type {type(value).__name__}.")
    items = tuple(value)
    if not items:
        raise ConfigError(f"{name} must contain at least one int, got {value!r}.")
    checked = tuple(check_int(f"{name}[{i}]", v, low=low) for i, v in enumerate(items))
    object.__setattr__(config, field, checked)


class RewardModelBase:
    """Base class of the reward models (see :class:`actionbank_env.protocols.RewardModel`).

    Args:
        rng: The only source of randomness (torch and LightGBM seeds are drawn from it). ``None`` only for
            models restored by :meth:`load` without an ``rng``, which can predict but not be refitted.
        config: A ready config object; keyword ``params`` are applied on top of it.
        reference_embeddings: Optional broader sample of embeddings, shape (n_ref, d_embed), on which the
            embedding PCA is fitted together with the served actions (see ``_features``).
        **params: Fields of the model's config dataclass.

    Raises:
        TypeError: On unknown parameter names (each named, with the closest valid name) or a wrong ``rng``.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[Any]]

    def __init__(
        self,
        *,
        rng: np.random.Generator | None,
        config: Any | None = None,
        reference_embeddings: NDArray[np.floating] | None = None,
        **params: Any,
    ) -> None:
        cls_name = type(self).__name__
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"{cls_name} rng must be a numpy.random.Generator, got {type(rng).__name__}.")
        self.config = resolve_config(self.config_class, config, params, cls_name)
        self._rng = rng
        self.reference_embeddings = (
            None
            if reference_embeddings is None
            else check_array(f"{cls_name} reference_embeddings", reference_embeddings, ndim=2, dtype=np.float32)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # ------------------------------------------------------------------ fit / predict

    def fit(
        self,
        users: NDArray[np.float64],
        embeddings: NDArray[np.float32],
        clicks: NDArray[np.float64],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> Self:
        """Fit on logged rows.

        Args:
            users: User features of each row, shape (n, d_user).
            embeddings: Embedding of the action served on each row, shape (n, d_embed).
            clicks: 0/1 outcome of each row, shape (n,); both outcomes must occur.
            sample_weight: Optional non-negative row weights (e.g. inverse propensities), shape (n,).

        Returns:
            The fitted model.
        """
        cls_name = type(self).__name__
        users = check_array(f"{cls_name}.fit users", users, ndim=2)
        embeddings = check_array(f"{cls_name}.fit embeddings", embeddings, ndim=2, dtype=np.float32)
        if embeddings.shape[0] != users.shape[0]:
            raise ConfigError(
                f"{cls_name}.fit embeddings must have {users.shape[0]} rows to match users, got {embeddings.shape[0]}."
            )
        distinct, row_action = distinct_rows(embeddings)
        return self.fit_indexed(users, distinct, row_action, clicks, sample_weight)

    def fit_indexed(
        self,
        users: NDArray[np.float64],
        action_embeddings: NDArray[np.float32],
        action_index: NDArray[np.int64],
        clicks: NDArray[np.float64],
        sample_weight: NDArray[np.float64] | None = None,
    ) -> Self:
        """Fit on logged rows given as an embedding table and each row's index into it.

        The same model as ``fit(users, action_embeddings[action_index], clicks, sample_weight)``, without
        the (n, d_embed) array of per-row embeddings (3 GB for 3e6 rows of 256-d embeddings): each distinct
        embedding is projected once. Rows of the table no row uses play no part.

        A model whose config has ``max_fit_rows`` (not ``None``) and gets more rows than that fits its feature
        map on every row and the model itself on :func:`bounded_sample`'s reweighted sample of ``max_fit_rows``
        rows (drawn from the model's ``rng``); at or below the bound nothing changes.

        Args:
            users: User features of each row, shape (n, d_user).
            action_embeddings: Embedding table, shape (n_actions, d_embed).
            action_index: Row of ``action_embeddings`` served on each logged row, shape (n,).
            clicks: 0/1 outcome of each row, shape (n,); both outcomes must occur.
            sample_weight: Optional non-negative row weights, shape (n,).

        Returns:
            The fitted model.
        """
        cls_name = type(self).__name__
        if self._rng is None:
            raise ConfigError(f"{cls_name} was loaded without an rng; pass rng= to load() to refit it.")
        users = check_array(f"{cls_name}.fit users", users, ndim=2)
        n = users.shape[0]
        table = check_array(f"{cls_name}.fit action_embeddings", action_embeddings, ndim=2, dtype=np.float32)
        index = np.asarray(action_index)
        if index.shape != (n,) or index.dtype.kind not in "iu":
            raise ConfigError(
                f"{cls_name}.fit action_index must be an integer array of shape ({n},), got shape {index.shape} "
                f"dtype {index.dtype}."
            )
        if n and (index.min() < 0 or index.max() >= table.shape[0]):
            raise ConfigError(
                f"{cls_name}.fit action_index must be in [0, {table.shape[0]}), got min {index.min()} and "
                f"max {index.max()}."
            )
        clicks = check_array(f"{cls_name}.fit clicks", clicks, shape=(n,))
        if not np.all((clicks == 0.0) | (clicks == 1.0)):
            raise ConfigError(f"{cls_name}.fit clicks must be 0 or 1, got values {np.unique(clicks)[:5].tolist()}.")
        if n == 0 or clicks.min() == clicks.max():
            raise ConfigError(
                f"{cls_name}.fit needs at least one click and one non-click, got {int(clicks.sum())} clicks in {n} rows."
            )
        if sample_weight is None:
            weights = np.ones(n, dtype=np.float64)
        else:
            weights = check_array(f"{cls_name}.fit sample_weight", sample_weight, shape=(n,), low=0.0)
            if weights.sum() <= 0.0:
                raise ConfigError(f"{cls_name}.fit sample_weight must have a positive sum, got {weights.sum()!r}.")
            weights = weights * (n / weights.sum())  # mean 1, so regularisation strength does not depend on scale
        if self.reference_embeddings is not None and self.reference_embeddings.shape[1] != table.shape[1]:
            raise ConfigError(
                f"{cls_name} reference_embeddings must have {table.shape[1]} columns to match embeddings, "
                f"got {self.reference_embeddings.shape[1]}."
            )
        # The used rows, deduplicated and sorted exactly as fit() would see them row by row.
        used, row_used = np.unique(index, return_inverse=True)
        distinct, used_distinct = distinct_rows(table[used])
        row_action = used_distinct[row_used.reshape(-1)]
        self.features_ = FeatureMap.fit(
            users,
            distinct,
            n_components=self.config.embedding_components,
            reference_embeddings=self.reference_embeddings,
        )
        self.d_user_ = int(users.shape[1])
        self.d_embed_ = int(table.shape[1])
        self.n_components_ = self.features_.n_components
        max_rows = getattr(self.config, "max_fit_rows", None)
        if max_rows is not None and n > max_rows:
            # Above the bound the model itself is fitted on a reweighted sample; the feature map (means, scales,
            # the PCA of the served texts) is fitted on every row above, as it costs O(n d) only.
            rows, weights = bounded_sample(clicks, weights, max_rows, self._rng)
            users, row_action, clicks = users[rows], row_action[rows], clicks[rows]
        actions_z = self.features_.actions(distinct)[row_action]
        self._fit(self.features_.users(users), actions_z, clicks, weights, self._rng)
        return self

    def predict(self, users: NDArray[np.float64], embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        """Click probabilities of every user for every action.

        Args:
            users: User features, shape (n_users, d_user).
            embeddings: Action embeddings, shape (n_actions, d_embed).

        Returns:
            Probabilities in [0, 1], float64, shape (n_users, n_actions).
        """
        users_z, actions_z = self._check_predict_inputs(users, embeddings)
        if users_z.shape[0] == 0 or actions_z.shape[0] == 0:
            return np.zeros((users_z.shape[0], actions_z.shape[0]), dtype=np.float64)
        probs = self._predict_z(users_z, actions_z)
        return np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(users, embeddings, clicks) first."
            )

    def _check_predict_inputs(
        self, users: NDArray[np.float64], embeddings: NDArray[np.float32]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        self._check_fitted()
        cls_name = type(self).__name__
        users = check_array(f"{cls_name}.predict users", users, shape=(None, self.d_user_))
        embeddings = check_array(
            f"{cls_name}.predict embeddings", embeddings, shape=(None, self.d_embed_), dtype=np.float32
        )
        return self.features_.users(users), self.features_.actions(embeddings)

    # ------------------------------------------------------------------ subclass hooks

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        raise NotImplementedError

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        raise NotImplementedError

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """JSON-ready scalars and named arrays of the fitted state (beyond the feature map)."""
        return {}, {}

    def _save_files(self, folder: Path) -> None:
        """Write model-specific files (torch weights, LightGBM text)."""

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        """Inverse of :meth:`_state` and :meth:`_save_files`."""

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted model to the folder ``path`` (created if needed) without pickle.

        Returns:
            The folder.
        """
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state, arrays = self._state()
        state = {"d_user": self.d_user_, "d_embed": self.d_embed_, **state}
        meta = {
            "model": self.name,
            "format_version": FORMAT_VERSION,
            "config": dataclasses.asdict(self.config),
            "state": state,
        }
        (folder / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        np.savez(folder / "arrays.npz", **self.features_.to_arrays(), **{f"model.{k}": v for k, v in arrays.items()})
        self._save_files(folder)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, rng: np.random.Generator | None = None) -> Self:
        """Restore a model written by :meth:`save`; it predicts exactly as the saved one.

        Args:
            path: The folder given to :meth:`save`.
            rng: Generator for a later refit; without one the model can only predict.
        """
        folder = Path(path)
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if meta.get("model") != cls.name:
            raise ConfigError(f"{folder} holds a {meta.get('model')!r} reward model, not {cls.name!r}.")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{folder} has format_version {meta.get('format_version')!r}; expected {FORMAT_VERSION}.")
        model = cls(rng=rng, config=cls.config_class(**meta["config"]))
        with np.load(folder / "arrays.npz", allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        model.features_ = FeatureMap.from_arrays(arrays)
        state = meta["state"]
        model.d_user_ = int(state["d_user"])
        model.d_embed_ = int(state["d_embed"])
        model.n_components_ = model.features_.n_components
        model_arrays = {k.removeprefix("model."): v for k, v in arrays.items() if k.startswith("model.")}
        model._restore(state, model_arrays, folder)
        return model
