"""Gradient-boosted trees (LightGBM) on [user, action, user x action] features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_bool, check_int, check_real
from optimizers.reward_models._base import RewardModelBase, check_common_config, check_max_fit_rows
from optimizers.reward_models._features import action_folds, distinct_rows, grid_features, pair_features, user_chunks

__all__ = ["LightGBMConfig", "LightGBMRewardModel"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LightGBMConfig:
    """Hyperparameters of the LightGBM reward model.

    The defaults were chosen for what bank design needs, generalisation to texts never served, by
    cross-validation grouped by served text (``benchmarks/DESIGNERS.md``): small trees, leaves of at least 50
    rows, an L2 penalty, and the number of rounds chosen by early stopping on held-out texts. (They were 200
    rounds of 31-leaf trees without L2, which on ~50 clicks memorised the log: on new texts the mean
    prediction was a few percent of the truth.)

    Attributes:
        n_estimators: Boosting rounds, or their cap when ``early_stopping_folds`` is set (CLI ``lgb_n_estimators``).
        learning_rate: Shrinkage; must be > 0.
        num_leaves: Maximum leaves per tree; must be >= 2.
        min_child_samples: Minimum rows per leaf.
        reg_lambda: L2 penalty on leaf values; must be >= 0.
        interactions: Whether to add the user x action outer-product features.
        early_stopping_folds: Choose the number of rounds (at most ``n_estimators``) by the log loss on served
            texts held out in this many folds grouped by text; ``None`` trains ``n_estimators`` rounds.
        early_stopping_rounds: Stop the cross-validation when the held-out loss has not improved for this many
            rounds.
        n_threads: LightGBM threads for fit and predict (``num_threads``); measured best on 2 shared cores.
        embedding_components: Requested PCA components of the action embeddings (capped at the rank).
        max_pairs_per_chunk: Bound on user x action rows per scoring chunk (memory).
        max_fit_rows: Above this many logged rows the trees are fitted on a reweighted sample of this size (every
            click, up to half the sample, plus a uniform sample of the non-clicks weighted by the inverse of their
            sampling rate: :func:`optimizers.reward_models._base.bounded_sample`); ``None`` fits on every row. At
            1e6 logged rows LightGBM's training was 83 % of a run. At or below it the fit is the full-data fit.
    """

    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 50
    reg_lambda: float = 10.0
    interactions: bool = True
    early_stopping_folds: int | None = 5
    early_stopping_rounds: int = 20
    n_threads: int = 1
    embedding_components: int = 16
    max_pairs_per_chunk: int = 2**17
    max_fit_rows: int | None = 50_000

    def __post_init__(self) -> None:
        check_int("LightGBMConfig.n_estimators", self.n_estimators, low=1)
        check_real("LightGBMConfig.learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_int("LightGBMConfig.num_leaves", self.num_leaves, low=2)
        check_int("LightGBMConfig.min_child_samples", self.min_child_samples, low=1)
        check_real("LightGBMConfig.reg_lambda", self.reg_lambda, low=0.0)
        check_bool("LightGBMConfig.interactions", self.interactions)
        if self.early_stopping_folds is not None:
            check_int("LightGBMConfig.early_stopping_folds", self.early_stopping_folds, low=2)
        check_int("LightGBMConfig.early_stopping_rounds", self.early_stopping_rounds, low=1)
        check_int("LightGBMConfig.n_threads", self.n_threads, low=1)
        check_int("LightGBMConfig.max_pairs_per_chunk", self.max_pairs_per_chunk, low=1)
        check_max_fit_rows(self)
        check_common_config(self)


class LightGBMRewardModel(RewardModelBase):
    """LightGBM binary classifier (``lgb.train``) with ``deterministic=True`` and a seed drawn from ``rng``.

    Scoring builds the (n_users * n_actions, n_features) float32 design in user chunks of at most
    ``max_pairs_per_chunk`` rows. The fitted booster is ``booster_``; it is saved in LightGBM's text format.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> users, embeddings = rng.random((400, 3)), rng.standard_normal((400, 5)).astype(np.float32)
        >>> clicks = (rng.random(400) < 0.3).astype(float)
        >>> model = LightGBMRewardModel(rng=rng, n_estimators=5).fit(users, embeddings, clicks)
        >>> model.predict(users[:4], embeddings[:3]).shape
        (4, 3)
    """

    name = "lightgbm"
    config_class = LightGBMConfig
    config: LightGBMConfig

    def _params(self, seed: int) -> dict[str, Any]:
        cfg = self.config
        return {
            "objective": "binary",
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_child_samples,
            "lambda_l2": cfg.reg_lambda,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": cfg.n_threads,
            "verbosity": -1,
        }

    def _fit(
        self,
        users_z: NDArray[np.float64],
        actions_z: NDArray[np.float64],
        clicks: NDArray[np.float64],
        weights: NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        import lightgbm as lgb

        cfg = self.config
        design = pair_features(users_z, actions_z, interactions=cfg.interactions, dtype=np.float32)
        self.seed_ = int(rng.integers(2**31 - 1))
        params = self._params(self.seed_)
        dataset = lgb.Dataset(design, label=clicks, weight=weights, params=params, free_raw_data=False)
        rounds = cfg.n_estimators
        self.cv_log_loss_: float | None = None
        _, action = distinct_rows(actions_z)
        n_actions = int(action.max()) + 1 if action.size else 0
        if cfg.early_stopping_folds is not None and n_actions >= 2:
            fold_of_action = action_folds(n_actions, cfg.early_stopping_folds, rng)
            row_fold = fold_of_action[action]
            folds = [
                (np.flatnonzero(row_fold != f), np.flatnonzero(row_fold == f))
                for f in range(int(fold_of_action.max()) + 1)
            ]
            # Every training part needs both outcomes; drop folds whose training rows lack one.
            folds = [(tr, te) for tr, te in folds if 0.0 < clicks[tr].mean() < 1.0 and te.size]
            if len(folds) >= 2:
                history = lgb.cv(
                    {**params, "metric": "binary_logloss"},
                    dataset,
                    num_boost_round=cfg.n_estimators,
                    folds=folds,
                    stratified=False,
                    callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
                )
                losses = np.asarray(history["valid binary_logloss-mean"], dtype=np.float64)
                rounds = int(np.argmin(losses)) + 1
                self.cv_log_loss_ = float(losses[rounds - 1])
        self.n_estimators_ = rounds
        self.booster_ = lgb.train(params, dataset, num_boost_round=rounds)

    def _predict_z(self, users_z: NDArray[np.float64], actions_z: NDArray[np.float64]) -> NDArray[np.float64]:
        n_users, n_actions = users_z.shape[0], actions_z.shape[0]
        out = np.empty((n_users, n_actions), dtype=np.float64)
        for chunk in user_chunks(n_users, n_actions, self.config.max_pairs_per_chunk):
            design = grid_features(users_z[chunk], actions_z, interactions=self.config.interactions, dtype=np.float32)
            probs = self.booster_.predict(design, num_threads=self.config.n_threads)
            out[chunk] = np.asarray(probs, dtype=np.float64).reshape(-1, n_actions)
        return out

    def _state(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        return {"seed": self.seed_, "n_estimators": self.n_estimators_, "cv_log_loss": self.cv_log_loss_}, {}

    def _save_files(self, folder: Path) -> None:
        (folder / "model.txt").write_text(self.booster_.model_to_string(), encoding="utf-8")

    def _restore(self, state: dict[str, Any], arrays: dict[str, NDArray[Any]], folder: Path) -> None:
        import lightgbm as lgb

        self.seed_ = int(state["seed"])
        self.n_estimators_ = int(state.get("n_estimators", self.config.n_estimators))
        self.cv_log_loss_ = state.get("cv_log_loss")
        self.booster_ = lgb.Booster(model_str=(folder / "model.txt").read_text(encoding="utf-8"))
