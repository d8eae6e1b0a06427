"""Reward models r(x, a) = P(click | user, action embedding).

Every model follows :class:`actionbank_env.protocols.RewardModel`: ``fit(users, embeddings, clicks,
sample_weight=None)`` on logged rows and ``predict(users, embeddings) -> (n_users, n_actions)``; the
Bayesian ones also have ``predict_with_uncertainty``. Models are built by name through
:func:`make_reward_model`; the modules (and torch / LightGBM / scikit-learn) are imported only then.

Example:
    >>> sorted(REWARD_MODELS)
    ['bayesian_bilinear', 'bayesian_neural', 'ft_transformer', 'gaussian_process', 'lightgbm', 'linear', 'neural']
    >>> make_reward_model("linaer", rng=np.random.default_rng(0))
    Traceback (most recent call last):
    ...
    actionbank_env.errors.UnknownComponentError: reward_model must be one of ['bayesian_bilinear', 'bayesian_neural', 'ft_transformer', 'gaussian_process', 'lightgbm', 'linear', 'neural'] or 'module:Class', got 'linaer'. Did you mean 'linear'?
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.registry import REWARD_MODELS as _REGISTRY_REWARD_MODELS
from actionbank_env.registry import resolve
from optimizers.reward_models._base import NotFittedError, RewardModelBase

__all__ = ["REWARD_MODELS", "make_reward_model", "reward_model_class", "load_reward_model", "NotFittedError"]

#: Registry of reward models: name -> "module:attr" entry point (imported lazily). The one table lives in
#: :mod:`actionbank_env.registry`; adding a name there (or here: it is the same dict) makes it usable everywhere.
REWARD_MODELS: dict[str, str] = _REGISTRY_REWARD_MODELS


def reward_model_class(name: str | type[RewardModelBase]) -> type[RewardModelBase]:
    """The class registered under ``name`` (imports its module); ``"module:Class"`` and classes work too.

    Raises:
        UnknownComponentError: For an unknown name, with the closest registered name.
    """
    cls: type[RewardModelBase] = resolve("reward_model", name)
    return cls


def make_reward_model(name: str | type[RewardModelBase], *, rng: np.random.Generator, **params: Any) -> RewardModelBase:
    """Build the reward model registered under ``name`` with hyperparameters ``params``.

    Args:
        name: A key of :data:`REWARD_MODELS`, a ``"module:Class"`` string or a class.
        rng: The model's only source of randomness.
        **params: Fields of the model's config (or ``config=`` / ``reference_embeddings=``).

    Raises:
        UnknownComponentError: For an unknown name, with the closest registered name.
        TypeError: For unknown hyperparameter names.
    """
    return reward_model_class(name)(rng=rng, **params)


def load_reward_model(path: str | os.PathLike[str], *, rng: np.random.Generator | None = None) -> RewardModelBase:
    """Load any saved reward model, dispatching on the ``model`` name in its ``config.json``."""
    meta = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    return reward_model_class(str(meta.get("model"))).load(path, rng=rng)
