"""Off-policy evaluation of a run folder (``actionbank ope``) and the Open Bandit Pipeline export.

``evaluate_run(RUN_DIR)`` reads iteration ``T``'s log (``observations.csv``) and logged bank
(``action_bank.json``), rebuilds the run's world (for the embedder and the truth), and estimates one target:

- default: the bank the designer proposed after ``T`` (``new_action_bank.json``), served greedily under the
  run's reward model (cross-fitted on the log);
- ``bank=FILE``: the same for another bank: a bank JSON (``{"actions": [{"text": ...}, ...]}``, as the run
  writes) or a text file with one text per line; texts the log served keep their ids, the others are new;
- ``policy=NAME|module:Class``: a targeting agent's decision rule over the logged bank, after it learned from
  the log (it needs ``action_probs``).

The log on disk holds only the served action's propensity, so MIPS fits the logger's cluster probabilities.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int
from actionbank_env.core.actions import MAX_TEXT_LENGTH, ActionBank, clean_text, normalize_text
from actionbank_env.errors import ConfigError
from actionbank_env.ope.data import BanditData, TargetPolicy
from actionbank_env.ope.estimators import OPEConfig
from actionbank_env.ope.policies import agent_policy
from actionbank_env.ope.report import OPEReport, evaluate_greedy_bank, evaluate_policy

#: The Bayesian reward model behind the posterior estimators of ``actionbank ope`` (``bayes_*``): its posterior
#: gives the direct method intervals that cover (``benchmarks/bench_ope.py``; README, "Off-policy evaluation").
DEFAULT_POSTERIOR_MODEL = "bayesian_bilinear"
#: Its settings when it is :data:`DEFAULT_POSTERIOR_MODEL`: prior scales by type-II maximum likelihood
#: (``prior_selection="evidence"``) rather than the designer's grouped cross-validation. A value estimate needs
#: a calibrated posterior; the cross-validated scales (chosen among 0.125, 0.5 and 2.0 from about 50 clicks)
#: often took the widest action prior, whose moderated predictions put the texts the designer picked at about
#: twice their true click rate. On development seeds 301-310 (MiniLM, default logger) ``bayes_cdm``'s RMSE
#: fell from 0.073 to 0.015.
POSTERIOR_MODEL_PARAMS: dict[str, Any] = {"prior_selection": "evidence"}
#: Key of ``algorithm_results.json`` (and of the ``ope`` record) holding the hyperparameters the designer's reward
#: model chose for itself on the log (:func:`chosen_settings`); OPE's cross-fit uses them instead of choosing again.
SETTINGS_KEY = "reward_model_settings"

__all__ = [
    "DEFAULT_POSTERIOR_MODEL",
    "POSTERIOR_MODEL_PARAMS",
    "SETTINGS_KEY",
    "evaluate_run",
    "chosen_settings",
    "estimate_proposal",
    "bandit_data_from_log",
    "load_bank_texts",
    "obp_bandit_feedback",
    "write_obp",
]


def bandit_data_from_log(log: Any, bank: ActionBank) -> BanditData:
    """:class:`BanditData` of one campaign's :class:`~actionbank_env.core.observations.ObservationLog` on ``bank``.

    Raises:
        ConfigError: If the log served an id that is not in ``bank``.
    """
    ids = log.action_ids.astype(str)
    position = {a: j for j, a in enumerate(bank.ids)}
    missing = sorted({a for a in ids.tolist() if a not in position})
    if missing:
        raise ConfigError(f"the log served actions that are not in the logged bank: {missing[:5]}.")
    return BanditData(
        users=log.users,
        actions=np.array([position[a] for a in ids.tolist()], dtype=np.int64),
        propensities=log.propensities,
        clicks=log.clicks.astype(np.float64),
        embeddings=np.asarray(bank.embeddings, dtype=np.float64),
        action_ids=bank.ids,
    )


def load_bank_texts(path: str | os.PathLike[str]) -> list[str]:
    """The texts of a bank file: a bank JSON (``{"actions": [{"text": ...}]}``) or one text per line.

    Raises:
        ConfigError: If the file is missing, empty, or holds a text the embedder cannot take (empty after
            cleaning, longer than ``MAX_TEXT_LENGTH`` characters, or not a string).
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"--bank {p} is a folder; give a bank JSON or a text file.")
    if not p.is_file():
        raise ConfigError(f"--bank {p} does not exist.")
    try:
        raw = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"--bank {p} must be UTF-8 text, got a byte {exc.object[exc.start]:#04x} at {exc.start}."
        ) from None
    texts: list[Any]
    if p.suffix == ".json":
        import json

        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--bank {p} is not valid JSON ({exc}).") from None
        actions = data.get("actions") if isinstance(data, dict) else data
        if not isinstance(actions, list):
            raise ConfigError(f"--bank {p} must hold a list of actions under 'actions', got {type(actions).__name__}.")
        texts = [a.get("text") if isinstance(a, dict) else a for a in actions]
    else:
        texts = [line for line in raw.splitlines() if line.strip()]
    if not texts:
        raise ConfigError(f"--bank {p} holds no texts; a bank needs at least one.")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not clean_text(text):
            raise ConfigError(f"--bank {p} text {i} must be a non-empty string the embedder can embed, got {text!r}.")
        if len(clean_text(text)) > MAX_TEXT_LENGTH:
            raise ConfigError(
                f"--bank {p} text {i} must be at most {MAX_TEXT_LENGTH} characters to be embedded, got "
                f"{len(clean_text(text))}."
            )
    return [clean_text(t) for t in texts]


def _target_bank(texts: list[str], logged: ActionBank, embedder: Any) -> tuple[NDArray[np.float64], tuple[str, ...]]:
    """Embeddings and ids of a target bank: logged texts keep their ids, new ones get ``N<k>`` ids."""
    by_key = {normalize_text(a.text): a for a in logged}
    unique: dict[str, str] = {}
    for t in texts:
        unique.setdefault(normalize_text(t), t)
    keys = list(unique)
    new = [unique[k] for k in keys if k not in by_key]
    new_embeddings = np.asarray(embedder.embed(new), dtype=np.float64) if new else np.zeros((0, logged.d_embed))
    if new and (new_embeddings.shape != (len(new), logged.d_embed) or not np.isfinite(new_embeddings).all()):
        raise ConfigError(
            f"the embedder must return finite embeddings of dimension {logged.d_embed} for the bank's texts, got "
            f"shape {new_embeddings.shape}."
        )
    rows, ids, j = [], [], 0
    for k in keys:
        if k in by_key:
            rows.append(np.asarray(by_key[k].embedding, dtype=np.float64))
            ids.append(by_key[k].id)
        else:
            rows.append(new_embeddings[j])
            ids.append(f"N{j:05d}")
            j += 1
    return np.stack(rows), tuple(ids)


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    iteration: int | None = None,
    bank: str | os.PathLike[str] | None = None,
    policy: str | None = None,
    config: OPEConfig | None = None,
    n_folds: int = 5,
    seed: int = 0,
    write: bool = True,
    posterior: str | None = DEFAULT_POSTERIOR_MODEL,
) -> tuple[OPEReport, Path | None]:
    """Estimate a target on iteration ``T``'s log of a run folder and compare with the truth.

    Args:
        run_dir: A ``simulate`` run folder.
        iteration: ``T`` (default: the last complete iteration).
        bank: A bank file to evaluate instead of the proposal (see the module docstring).
        policy: A targeting agent (registry name or ``module:Class``) to evaluate instead.
        config: Estimator settings.
        n_folds: Cross-fitting folds of the greedy policy's reward model.
        seed: Seeds the folds, models, clusters and bootstrap.
        write: Write ``iteration_<T>/ope.json``.
        posterior: A Bayesian reward model (registry name) fitted on the whole log for the posterior
            estimators (``bayes_*``) of a bank; ``None`` leaves them out.

    Returns:
        The report and the path of ``ope.json`` (``None`` when not written).
    """
    from actionbank_env.core.observations import ObservationLog
    from actionbank_env.core.world import World
    from actionbank_env.experiment import load_config
    from actionbank_env.results import BANK_FILE, OBSERVATIONS_FILE, OPE_FILE, RunFolder
    from actionbank_env.results import iteration_file as at

    if bank is not None and policy is not None:
        raise ConfigError("pass either --bank or --policy, not both.")
    check_int("--seed", seed, low=0)
    run = RunFolder.open(run_dir)
    sim = load_config(run)
    done = run.completed_iterations()
    if done == 0:
        raise ConfigError(f"{run.path} has no complete iteration to evaluate.")
    t = done if iteration is None else int(iteration)
    if not 1 <= t <= done:
        raise ConfigError(f"--iteration must be a complete iteration of {run.path}, in [1, {done}], got {t}.")
    logged = run.read_bank(at(t, BANK_FILE))
    log = ObservationLog.from_csv(run.file(at(t, OBSERVATIONS_FILE)))
    data = bandit_data_from_log(log, logged)
    world = World.build(sim.world_config())
    settings = _recorded_settings(run, t)
    rng = np.random.default_rng(np.random.SeedSequence([seed, t]))
    if policy is not None:
        report = _evaluate_agent(
            policy, sim, world, data, logged, config=config, n_folds=n_folds, rng=rng, settings=settings
        )
        label = f"policy={policy}"
    else:
        if bank is not None:
            texts, label = load_bank_texts(bank), f"bank={bank}"
        else:
            texts = list(run.proposed_texts(t))
            label = f"proposal after iteration {t}"
        embeddings, ids = _target_bank(texts, logged, world.embedder)
        reference = np.concatenate([logged.embeddings, embeddings]).astype(np.float32)
        report = evaluate_greedy_bank(
            data,
            embeddings,
            ids,
            _model_factory(sim, reference, settings),
            ground_truth=world.ground_truth,
            config=config,
            n_folds=n_folds,
            rng=rng,
            name=f"{label}, greedy under {_reward_model_spec(sim)[0]}",
            posterior_factory=None if posterior is None else _posterior_factory(posterior, reference),
        )
    info = {**report.info, "iteration": t, "seed": seed, **({SETTINGS_KEY: settings} if settings else {})}
    report = OPEReport(report.policy, report.n_rounds, report.truth, report.estimates, info)
    path = run.write_json(at(t, OPE_FILE), report.to_dict()) if write else None
    return report, path


def estimate_proposal(
    log: Any,
    bank: ActionBank,
    proposal: ActionBank,
    sim: Any,
    ground_truth: Any,
    *,
    seed: int,
    iteration: int,
    n_folds: int = 5,
    posterior: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The pre-deployment estimate of a proposed bank that ``simulate`` writes, beside its truth.

    ``actionbank ope RUN_DIR --iteration T --seed SEED`` (``SEED`` as recorded under ``"seed"``) reproduces it,
    reading ``settings`` back from the iteration's ``algorithm_results.json`` (:data:`SETTINGS_KEY`).

    Args:
        log: The campaign log served on ``bank`` (the latest iteration).
        bank: The deployed (logged) bank.
        proposal: The proposed next bank.
        sim: The run's :class:`~actionbank_env.config.SimulationConfig` (reward model type and settings).
        ground_truth: The world's ground truth.
        seed: Seeds the folds, models and clusters (with ``iteration``), as ``actionbank ope --seed`` does.
        iteration: The iteration ``T`` whose log is used.
        n_folds: Cross-fitting folds.
        posterior: A Bayesian reward model (registry name) for the posterior estimators; ``None`` (the
            default, which keeps ``simulate``'s cost) leaves them out.
        settings: Reward-model parameters that fix the hyperparameters the designer's model chose on the logs
            (:func:`chosen_settings` of the proposal's model): the cross-fit then fits each fold at them instead
            of selecting them again on this log (the bilinear model's grouped cross-validation, ~0.3 CPU-s an
            iteration). ``None`` selects them on the log, as a model configured like the designer's does.

    Returns:
        :meth:`OPEReport.to_dict` (JSON-ready), with ``settings`` under :data:`SETTINGS_KEY` when given.
    """
    data = bandit_data_from_log(log, bank)
    reference = np.concatenate([bank.embeddings, proposal.embeddings]).astype(np.float32)
    report = evaluate_greedy_bank(
        data,
        np.asarray(proposal.embeddings, dtype=np.float64),
        proposal.ids,
        _model_factory(sim, reference, settings),
        ground_truth=ground_truth,
        n_folds=n_folds,
        rng=np.random.default_rng(np.random.SeedSequence([seed, iteration])),
        name=f"proposed bank, greedy under {_reward_model_spec(sim)[0]}",
        posterior_factory=None if posterior is None else _posterior_factory(posterior, reference),
    )
    out = {**report.to_dict(), "iteration": int(iteration), "seed": int(seed)}
    if settings:
        out[SETTINGS_KEY] = dict(settings)
    return out


def chosen_settings(model: Any, sim: Any) -> dict[str, Any] | None:
    """The hyperparameters a fitted reward model chose for itself, as parameters that fix them for OPE.

    For a model that selects its own hyperparameters and offers ``frozen_copy(rng)`` (the Bayesian bilinear
    model: spectrum power and prior scales by grouped cross-validation), the fields of the frozen copy's config
    that differ from the model's own config (e.g. ``prior_selection="fixed"``, ``spectrum_power``,
    ``action_prior_sd``, ``interaction_prior_sd``). ``None`` for any other model, an unfitted one, or a model
    other than the one OPE builds for the run (``sim``'s designer reward model).
    """
    from dataclasses import fields

    from actionbank_env.registry import resolve

    name, _ = _reward_model_spec(sim)
    frozen_copy = getattr(model, "frozen_copy", None)
    if model is None or not callable(frozen_copy) or type(model) is not resolve("reward_model", name):
        return None
    if getattr(model, "spectrum_power_", None) is None:  # never fitted
        return None
    frozen = frozen_copy(None)
    out: dict[str, Any] = {}
    for field in fields(frozen.config):
        value = getattr(frozen.config, field.name)
        if value != getattr(model.config, field.name):
            out[field.name] = float(value) if isinstance(value, (float, np.floating)) else value
    return out or None


def _recorded_settings(run: Any, t: int) -> dict[str, Any] | None:
    """:data:`SETTINGS_KEY` of iteration ``t``'s ``algorithm_results.json``.

    ``None`` for a run written before the key existed (the file or the key absent): OPE then chooses the
    hyperparameters on the log itself. A file that is there but not valid JSON, or a key that is not an object,
    is an error naming the file (an estimate silently made under other settings would not be the recorded one).
    """
    from actionbank_env.errors import DataError
    from actionbank_env.results import ALGORITHM_FILE
    from actionbank_env.results import iteration_file as at

    name = at(t, ALGORITHM_FILE)
    if not run.exists(name):
        return None
    algorithm = run.read_json(name)  # names the file when it is not valid JSON
    settings = algorithm.get(SETTINGS_KEY) if isinstance(algorithm, dict) else None
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise DataError(
            f"{run.file(name)}: {SETTINGS_KEY!r} must be an object of reward-model parameters, got "
            f"{type(settings).__name__} {settings!r}."
        )
    return dict(settings) or None


def _reward_model_spec(sim: Any) -> tuple[Any, dict[str, Any]]:
    """The run designer's reward model and its parameters (the default designer's for a designer that has none)."""
    from actionbank_env.config import SimulationConfig

    params = sim.designer.kwargs()
    if "reward_model" not in params:
        params = SimulationConfig().designer.kwargs()
    return params["reward_model"], dict(params.get("reward_model_params") or {})


def _model_factory(sim: Any, reference: NDArray[np.float32], settings: dict[str, Any] | None = None) -> Any:
    from actionbank_env.registry import make_reward_model

    name, params = _reward_model_spec(sim)
    params = {**params, **(settings or {})}

    def factory(rng: np.random.Generator) -> Any:
        return make_reward_model(name, rng=rng, reference_embeddings=reference, **params)

    return factory


def _posterior_factory(name: str, reference: NDArray[np.float32]) -> Any:
    """An unfitted Bayesian reward model (registry ``name``; :data:`POSTERIOR_MODEL_PARAMS` for the default
    model, the model's own defaults for another) with the texts as reference."""
    from actionbank_env.registry import make_reward_model

    params = POSTERIOR_MODEL_PARAMS if name == DEFAULT_POSTERIOR_MODEL else {}

    def factory(rng: np.random.Generator) -> Any:
        return make_reward_model(name, rng=rng, reference_embeddings=reference, **params)

    return factory


def _evaluate_agent(
    name: str,
    sim: Any,
    world: Any,
    data: BanditData,
    logged: ActionBank,
    *,
    config: OPEConfig | None,
    n_folds: int,
    rng: np.random.Generator,
    settings: dict[str, Any] | None = None,
) -> OPEReport:
    """A targeting agent that learned from the log, evaluated on the logged bank, cross-fitted.

    Each fold's users are served by an agent that learned from the other folds (an agent that learned from
    the evaluated rows would make the policy depend on their clicks); the reward model of DM and the DR family
    is cross-fitted on the same folds.
    """
    from actionbank_env.ope.policies import crossfit_greedy_policy
    from actionbank_env.registry import make_agent

    fit_rng, agent_rng, est_rng = rng.spawn(3)
    reference = np.asarray(logged.embeddings, dtype=np.float32)
    cross = crossfit_greedy_policy(
        _model_factory(sim, reference, settings), data, logged.embeddings, logged.ids, n_folds=n_folds, rng=fit_rng
    )
    params = sim.agent.kwargs() if name == sim.agent.name else {}
    probs = np.empty((data.n_rounds, data.n_actions))
    for k, fold_rng in enumerate(agent_rng.spawn(n_folds)):
        test = cross.folds == k
        agent = make_agent(name, world, rng=fold_rng, **params)
        agent.set_bank(logged)
        train = ~test
        agent.update(data.users[train], data.actions[train], data.clicks[train])
        target = agent_policy(agent, data.users[test], logged)
        probs[test] = target.probs
    policy = TargetPolicy(
        probs=probs,
        embeddings=np.asarray(logged.embeddings, np.float64),
        action_ids=logged.ids,
        name=f"{name} after learning from the log",
    )
    return evaluate_policy(
        data,
        policy,
        q_hat_target=cross.q_hat_target,
        q_hat_logged=cross.q_hat_logged,
        ground_truth=world.ground_truth,
        config=config,
        rng=est_rng,
        info={"n_folds": n_folds},
    )


def obp_bandit_feedback(data: BanditData, ground_truth: Any | None = None) -> dict[str, Any]:
    """Open Bandit Pipeline's ``bandit_feedback`` dict of a log, with the simulator's exact expected rewards.

    Keys: ``n_rounds``, ``n_actions``, ``action``, ``position``, ``reward``, ``pscore``, ``context``,
    ``action_context`` (the logged bank's embeddings), ``action_ids``, ``expected_reward`` (n_rounds,
    n_actions): P(click | x_i, a) for every logged user and action (omitted without a ground truth), and
    ``pi_b`` (n_rounds, n_actions, 1) when the logger's distribution is known.
    """
    from actionbank_env.evaluation import expected_rewards

    out: dict[str, Any] = {
        "n_rounds": data.n_rounds,
        "n_actions": data.n_actions,
        "action": data.actions.copy(),
        "position": np.zeros(data.n_rounds, dtype=np.int64),
        "reward": data.clicks.astype(np.int64),
        "pscore": data.propensities.copy(),
        "context": data.users.copy(),
        "action_context": data.embeddings.copy(),
        "action_ids": np.array(data.action_ids),
    }
    if ground_truth is not None:
        out["expected_reward"] = expected_rewards(ground_truth, data.users, data.embeddings)
    if data.logging_probs is not None:
        out["pi_b"] = data.logging_probs[:, :, None].copy()
    return out


def write_obp(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, iteration: int | None = None) -> Path:
    """Write iteration ``T``'s log of a run as an OBP ``bandit_feedback`` ``.npz`` (``dict(np.load(out))``)."""
    from actionbank_env.core.io import atomic_write
    from actionbank_env.core.observations import ObservationLog
    from actionbank_env.core.world import World
    from actionbank_env.experiment import load_config
    from actionbank_env.results import BANK_FILE, OBSERVATIONS_FILE, RunFolder
    from actionbank_env.results import iteration_file as at

    run = RunFolder.open(run_dir)
    done = run.completed_iterations()
    t = done if iteration is None else int(iteration)
    if not 1 <= t <= done:
        raise ConfigError(f"--iteration must be a complete iteration of {run.path}, in [1, {done}], got {t}.")
    sim = load_config(run)
    logged = run.read_bank(at(t, BANK_FILE))
    data = bandit_data_from_log(ObservationLog.from_csv(run.file(at(t, OBSERVATIONS_FILE))), logged)
    feedback = obp_bandit_feedback(data, World.build(sim.world_config()).ground_truth)
    return atomic_write(out, lambda handle: np.savez_compressed(handle, **feedback))
