"""compare-models: train reward models on logged data and score them against the ground truth.

The data are either a run folder's logs (every ``iteration_<t>/observations.csv`` with the served actions'
embeddings from the bank files) or, without a run folder, a fresh log of ``users`` users served uniformly
at random from the world's initial bank (what the original ``test_preference_model.py`` did). Held-out
evaluation: fresh users x (the logged actions + ``n_new_candidates`` texts the models never saw).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.config import SimulationConfig
from actionbank_env.core.copywriting import OfflineCopywriter
from actionbank_env.core.observations import ObservationLog
from actionbank_env.core.world import World
from actionbank_env.errors import ConfigError
from actionbank_env.registry import REWARD_MODELS
from actionbank_env.results import BANK_FILE, OBSERVATIONS_FILE, RunFolder, iteration_file

__all__ = ["compare_models", "format_table", "ModelScore"]


@dataclass(frozen=True, slots=True)
class ModelScore:
    """One reward model's fit time and fidelity on held-out users x candidates."""

    model: str
    fit_seconds: float
    predict_seconds: float
    fidelity_seen: dict[str, Any]
    fidelity_new: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "model": self.model,
            "fit_seconds": self.fit_seconds,
            "predict_seconds": self.predict_seconds,
            "fidelity_logged_actions": self.fidelity_seen,
            "fidelity_new_candidates": self.fidelity_new,
        }


def _run_data(run_dir: str | os.PathLike[str]) -> tuple[SimulationConfig, ObservationLog, dict[str, np.ndarray]]:
    from actionbank_env.experiment import load_config

    run = RunFolder.open(run_dir)
    config = load_config(run)
    logs, embeddings = [], {}
    t = 1
    while run.exists(iteration_file(t, OBSERVATIONS_FILE)):
        logs.append(ObservationLog.from_csv(run.file(iteration_file(t, OBSERVATIONS_FILE))))
        bank = run.read_bank(iteration_file(t, BANK_FILE))
        embeddings.update({a.id: a.embedding for a in bank})
        t += 1
    if not logs:
        raise ConfigError(f"{run.path} has no {iteration_file(1, OBSERVATIONS_FILE)} to train on.")
    return config, ObservationLog.concat(logs), embeddings


def _random_log(world: World, n_users: int, rng: np.random.Generator) -> tuple[ObservationLog, dict[str, np.ndarray]]:
    from actionbank_env.core.campaign import run_campaign
    from actionbank_env.registry import make_agent

    agent_rng, users_rng, click_rng = rng.spawn(3)
    agent = make_agent("random", world, rng=agent_rng)
    agent.set_bank(world.initial_bank)
    users = world.sample_users(n_users, rng=users_rng)
    result = run_campaign(world.ground_truth, world.initial_bank, agent, users, rng=click_rng)
    return result.log, {a.id: a.embedding for a in world.initial_bank}


def compare_models(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    models: tuple[str, ...] = tuple(REWARD_MODELS),
    config: SimulationConfig | None = None,
    users: int = 2000,
    evaluation_users: int = 1000,
    n_new_candidates: int = 300,
    seed: int = 0,
) -> list[ModelScore]:
    """Fit each reward model on the logged data and score it against the ground truth.

    Args:
        run_dir: A run folder to take the logs from; ``None`` logs ``users`` random-targeting rows instead.
        models: Reward model names.
        config: World settings when ``run_dir`` is ``None`` (defaults otherwise).
        users: Logged rows when ``run_dir`` is ``None``.
        evaluation_users: Fresh held-out users.
        n_new_candidates: Offline texts never logged, to test generalisation to new actions.
        seed: Decides the synthetic log, the held-out users, the new candidates and the models' seeds.
    """
    from actionbank_env._validation import check_component
    from actionbank_env.evaluation import fidelity_from_predictions, true_click_probs
    from actionbank_env.registry import make_reward_model

    for name in models:
        check_component("model_type", name, REWARD_MODELS)
    log_rng, eval_rng, text_rng, model_rng, auc_rng = np.random.default_rng(seed).spawn(5)
    if run_dir is not None:
        config, log, embedding_of = _run_data(run_dir)
        world = World.build(config.world)
    else:
        config = config or SimulationConfig()
        world = World.build(config.world)
        log, embedding_of = _random_log(world, users, log_rng)
    served = np.stack([embedding_of[a] for a in log.action_ids.astype(str).tolist()])
    seen = np.stack(list(embedding_of.values()))
    new_texts = OfflineCopywriter().write(n_new_candidates, rng=text_rng, exclude=world.reference_texts)
    new = np.asarray(world.embedder.embed(new_texts), dtype=np.float32)
    held_out = world.sample_users(evaluation_users, rng=eval_rng).features
    truth_seen = true_click_probs(world.ground_truth, held_out, seen)
    truth_new = true_click_probs(world.ground_truth, held_out, new)
    scores = []
    for name, rng in zip(models, model_rng.spawn(len(models)), strict=True):
        model = make_reward_model(name, rng=rng)
        start = time.perf_counter()
        model.fit(log.users, served, log.clicks.astype(np.float64))
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        pred_seen, pred_new = model.predict(held_out, seen), model.predict(held_out, new)
        predict_seconds = time.perf_counter() - start
        a_rng, b_rng = auc_rng.spawn(2)
        scores.append(
            ModelScore(
                name,
                fit_seconds,
                predict_seconds,
                fidelity_from_predictions(pred_seen, truth_seen, rng=a_rng).to_dict(),
                fidelity_from_predictions(pred_new, truth_new, rng=b_rng).to_dict(),
            )
        )
    return scores


def format_table(scores: list[ModelScore]) -> str:
    """A plain-text table: fidelity on logged actions and on new candidates, and timings."""
    head = (
        f"{'model':>16} | {'spearman(seen)':>14} {'auc(seen)':>9} | {'spearman(new)':>13} {'auc(new)':>8} "
        f"{'logloss(new)':>12} {'ece(new)':>8} | {'fit s':>7} {'predict s':>9}"
    )
    lines = [head, "-" * len(head)]
    for s in scores:
        a, b = s.fidelity_seen, s.fidelity_new
        lines.append(
            f"{s.model:>16} | {a['spearman']:>14.3f} {a['auc']:>9.3f} | {b['spearman']:>13.3f} {b['auc']:>8.3f} "
            f"{b['log_loss']:>12.4f} {b['ece']:>8.4f} | {s.fit_seconds:>7.2f} {s.predict_seconds:>9.2f}"
        )
    return "\n".join(lines)


def write_comparison(path: str | os.PathLike[str], scores: list[ModelScore]) -> Path:
    """Write the scores as JSON (atomically)."""
    from actionbank_env.core.io import atomic_write_json

    return atomic_write_json(path, [s.to_dict() for s in scores])
