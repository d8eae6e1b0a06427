"""Reward models r(x, a) = P(click | user, action embedding).

Every model follows :class:`actionbank_env.protocols.RewardModel`: ``fit(users, embeddings, clicks,
sample_weight=None)`` on logged rows and ``predict(users, embeddings) -> (n_users, n_actions)``; the
Bayesian ones also have ``predict_with_uncertainty``. Models are built by name through
:func:`make_reward_model`; the modules (and torch / LightGBM / scikit-learn) are imported only then.

Example:
    >>> sorted(REWARD_MODELS)
    ['bayesian_neural', 'ft_transformer', 'gaussian_process', 'lightgbm', 'linear', 'neural']
    >>> make_reward_model("linaer", rng=np.random.default_rng(0))
    Traceback (most recent call last):
    ...
    actionbank_env.errors.UnknownComponentError: reward_model must be one of ['bayesian_neural', 'ft_transformer', 'gaussian_process', 'lightgbm', 'linear', 'neural'], got 'linaer'. Did you mean 'linear'?
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env._validation import check_component
from optimizers.reward_models._base import NotFittedError, RewardModelBase

__all__ = ["REWARD_MODELS", "make_reward_model", "reward_model_class", "load_reward_model", "NotFittedError"]

#: Registry of reward models: name -> "module:attr" entry point (imported lazily).
REWARD_MODELS: dict[str, str] = {
    "linear": "optimizers.reward_models.linear:LinearRewardModel",
    "neural": "optimizers.reward_models.neural:NeuralRewardModel",
    "bayesian_neural": "optimizers.reward_models.neural:BayesianNeuralRewardModel",
    "lightgbm": "optimizers.reward_models.lightgbm:LightGBMRewardModel",
    "gaussian_process": "optimizers.reward_models.gaussian_process:GaussianProcessRewardModel",
    "ft_transformer": "optimizers.reward_models.ft_transformer:FTTransformerRewardModel",
}


def reward_model_class(name: str) -> type[RewardModelBase]:
    """The class registered under ``name`` (imports its module).

    Raises:
        UnknownComponentError: For an unknown name, with the closest registered name.
    """
    check_component("reward_model", name, REWARD_MODELS)
    module_name, attr = REWARD_MODELS[name].split(":")
    cls: type[RewardModelBase] = getattr(importlib.import_module(module_name), attr)
    return cls


def make_reward_model(name: str, *, rng: np.random.Generator, **params: Any) -> RewardModelBase:
    """Build the reward model registered under ``name`` with hyperparameters ``params``.

    Args:
        name: A key of :data:`REWARD_MODELS`.
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
