"""run_simulation(config) -> RunResult: the loop of ARCHITECTURE.md §6 with the results of §8.

Iteration ``t`` (1..``iterations``) deploys bank ``t`` (bank 1 is the world's initial bank) with the
company's targeting agent on fresh users, logs what happened, lets the bank designer propose bank ``t+1``
from the logs so far, and scores everything against the ground truth on a fixed sample of evaluation
users. Its folder ``iteration_<t>/`` holds ``users.csv``, ``action_bank.json`` (bank t), ``observations.csv``,
``algorithm_results.json``, ``new_action_bank.json`` (bank t+1) and ``ground_truth_evaluation.json``.

Seeding: ``SeedSequence(seed)`` is split into the episode stream (users, clicks, company agent), the designer
stream (one child per iteration) and the evaluation stream; the world comes from ``world_seed``. Same
config -> byte-identical results files except timestamps and durations (``meta.json``, ``*_seconds``).

Resume: iterations are marked complete only after all their files are written. ``--resume`` replays the
completed iterations deterministically (campaigns are re-run so the company agent regains its state, but
the designer's proposals are read back from ``new_action_bank.json`` instead of being recomputed), then
continues; the results are identical to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.config import SimulationConfig
from actionbank_env.core.actions import ActionBank
from actionbank_env.core.campaign import CampaignResult
from actionbank_env.core.copywriting import Copywriter, OfflineCopywriter
from actionbank_env.core.io import atomic_write
from actionbank_env.core.observations import ObservationLog
from actionbank_env.core.progress import bar as progress_bar
from actionbank_env.core.progress import progress_bars
from actionbank_env.core.world import World
from actionbank_env.errors import ConfigError
from actionbank_env.logging import MetricLogger
from actionbank_env.protocols import DesignerContext
from actionbank_env.results import RunFolder

__all__ = ["run_simulation", "RunResult", "make_copywriter", "generate_data", "load_data_config", "DATA_FORMAT"]

#: Format tag of ``generate-data`` folders.
DATA_FORMAT = "actionbank-data-v1"
#: Settings a data folder fixes (the world and the users); the algorithm settings stay the caller's.
DATA_FIELDS = (
    "users",
    "iterations",
    "initial_actions",
    "seed",
    "world_seed",
    "embedder",
    "ground_truth_type",
    "base_ctr",
    "personalization",
    "gmm_components",
    "density_scale_factor",
    "min_utility",
    "max_utility",
)

log = logging.getLogger(__name__)

#: TensorBoard / metrics.csv key -> per-iteration row column.
METRIC_KEYS = {
    "env/company_reward": "company_reward",
    "env/deployed_value": "deployed_value",
    "env/regret": "regret",
    "optimizer/bank_value": "bank_value",
    "optimizer/new_bank_value": "new_bank_value",
    "optimizer/oracle_bank_value": "oracle_bank_value",
    "optimizer/improvement_captured": "improvement_captured",
    "optimizer/expected_value": "algorithm_expected_value",
    "optimizer/bank_size": "bank_size",
    "fidelity/spearman": "fidelity_spearman",
    "fidelity/auc": "fidelity_auc",
}

#: Keys of summary.json reported for the final iteration and as per-iteration lists.
SUMMARY_KEYS = (
    "company_reward",
    "deployed_value",
    "bank_value",
    "new_bank_value",
    "oracle_bank_value",
    "improvement_captured",
    "regret",
    "algorithm_expected_value",
)


HEADLINE_MEANINGS = {
    "company_reward": "click rate the company's agent earned on this campaign (observed)",
    "deployed_value": "true click probability of what the agent served, on fresh users",
    "bank_value": "true value of the deployed bank under perfect targeting",
    "new_bank_value": "same for the bank the optimizer proposes next",
    "oracle_bank_value": "same for the ground-truth greedy bank from the same candidate pool",
    "improvement_captured": "(new - old) / (oracle - old): share of the pool's headroom the optimizer took",
    "regret": "best-in-bank minus served true click probability, per user",
}


@dataclass
class RunResult:
    """What ``run_simulation`` produced.

    Attributes:
        path: The run folder.
        config: The configuration that ran.
        iterations: Per-iteration numbers (the rows of ``metrics.csv``).
        summary: The content of ``summary.json``.
    """

    path: Path
    config: SimulationConfig
    iterations: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def headline(self) -> str:
        """The final iteration's numbers from ``summary.json``, each with a few words on what it means."""
        lines = [
            f"summary.json, iteration {self.summary.get('iterations')} (ground truth, {self.config.evaluation_users} fresh users):"
        ]
        for key, meaning in HEADLINE_MEANINGS.items():
            value = self.summary.get(key)
            shown = "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.4f}"
            lines.append(f"  {key:<22} {shown:>8}  {meaning}")
        report = self.path / "report.html"
        lines.append(f"results: {self.path.resolve()}")
        if report.is_file():
            lines.append(f"report:  {report.resolve()}")
        return "\n".join(lines)

    def summary_table(self) -> str:
        """A plain-text table of the per-iteration numbers."""
        cols = (
            "company_reward",
            "deployed_value",
            "bank_value",
            "new_bank_value",
            "oracle_bank_value",
            "improvement_captured",
            "bank_size",
        )
        head = f"{'iter':>4} " + " ".join(f"{c:>20}" for c in cols)
        lines = [head, "-" * len(head)]
        for row in self.iterations:
            cells = []
            for c in cols:
                v = row.get(c)
                cells.append(
                    f"{'n/a':>20}"
                    if v is None or (isinstance(v, float) and not np.isfinite(v))
                    else f"{v:>20.4f}"
                    if isinstance(v, float)
                    else f"{v:>20}"
                )
            lines.append(f"{row['iteration']:>4} " + " ".join(cells))
        return "\n".join(lines)


def make_copywriter(config: SimulationConfig) -> Copywriter:
    """The candidate text source: OpenAI when the embedder is OpenAI and a key is set, offline otherwise.

    The OpenAI copywriter is wrapped in a :class:`~actionbank_env.core.copywriting.FallbackCopywriter`: a
    generation call whose requests still fail after their bounded retries logs a WARNING and is answered by
    the offline copywriter. Embeddings never fall back (the world's embedder is fixed for the whole run; an
    embedding failure stops the run with a ``ServiceError`` and the run folder stays resumable).
    """
    if config.embedder == "openai" and os.environ.get("OPENAI_API_KEY"):
        from actionbank_env.core.copywriting import FallbackCopywriter, OpenAICopywriter

        return FallbackCopywriter(OpenAICopywriter(), OfflineCopywriter())
    return OfflineCopywriter()


@contextlib.contextmanager
def thread_limits(n_threads: int) -> Iterator[None]:
    """Limit BLAS/OpenMP pools (and torch, if loaded later) to ``n_threads`` for the block."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)


_SECRET_FLAGS = ("--openai-api-key", "--openai_api_key")
_SECRET_PATTERN = __import__("re").compile(r"sk-[A-Za-z0-9_-]{6,}")


def redact_argv(argv: list[str]) -> list[str]:
    """``argv`` with API keys replaced by ``<redacted>`` (the value after a key flag, ``--flag=value``, ``sk-...``).

    Example:
        >>> redact_argv(["simulate", "--openai-api-key", "sk-abc123456", "--out", "keys/run"])
        ['simulate', '--openai-api-key', '<redacted>', '--out', 'keys/run']
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("<redacted>")
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if flag in _SECRET_FLAGS:
            out.append(f"{flag}=<redacted>" if eq else flag)
            hide_next = not eq
            continue
        out.append(_SECRET_PATTERN.sub("<redacted>", arg))
    return out


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in (
        "actionbank-env",
        "numpy",
        "gymnasium",
        "torch",
        "lightgbm",
        "scikit-learn",
        "sentence-transformers",
        "stable-baselines3",
        "openai",
        "pandas",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _designer_params(config: SimulationConfig) -> dict[str, Any]:
    params: dict[str, Any] = {
        "action_pool_size": config.action_pool_size,
        "action_bank_size": config.action_bank_size,
        "max_bank_size": config.max_bank_size,
        "diversity_weight": config.diversity_weight,
        "n_representative_users": config.n_representative_users,
        "representative_method": config.representative_method,
    }
    if config.optimizer == "generative":
        rm_params = config.reward_model_params()
        if config.reward_model_type == "lightgbm":
            rm_params["n_threads"] = config.threads
        params.update(
            reward_model=config.reward_model_type,
            reward_model_params=rm_params,
            use_uncertainty=config.use_uncertainty,
            uncertainty_weight=config.uncertainty_weight,
        )
    return params


def _write_csv(path: Path, frame: Any) -> None:
    atomic_write(path, lambda handle: frame.to_csv(handle, index=False, float_format="%.17g"))


class _Simulation:
    """The state of one run (kept in one place so resume and a fresh run share every line)."""

    def __init__(self, config: SimulationConfig, run: RunFolder, *, progress: bool) -> None:
        from actionbank_env.envs.bank_design import BankDesignEnv
        from actionbank_env.registry import make_designer

        self.config, self.run, self.progress = config, run, progress
        self.world = World.build(config.world_config())
        env_seq, designer_seq, eval_seq = np.random.SeedSequence(config.seed).spawn(3)
        self.designer_seqs = designer_seq.spawn(config.iterations)
        eval_rng = np.random.default_rng(eval_seq)
        self.eval_users = self.world.sample_users(config.evaluation_users, rng=eval_rng).features
        self.fidelity_rng_seq = eval_seq.spawn(1)[0]
        max_bank = config.max_bank_size or (config.initial_actions + config.iterations * config.action_bank_size)
        self.env = BankDesignEnv(
            world=self.world,
            users_per_iteration=config.users,
            n_iterations=max(config.iterations - 1, 1),
            max_bank_size=max(max_bank, config.initial_actions),
            company_strategy=config.company_strategy,
            company_params=config.agent_params(),
            campaign_batch_size=config.campaign_batch_size,
            data_dir=config.data_dir,
        )
        self.env_seed = int(env_seq.generate_state(1)[0])
        copywriter = make_copywriter(config)
        self.copywriter_name = copywriter.name
        context = DesignerContext(
            embedder=self.world.embedder,
            copywriter=copywriter,
            d_user=self.world.d_user,
            feature_names=self.world.feature_names,
            ground_truth=self.world.ground_truth if config.optimizer == "oracle" else None,
        )
        self.designer = make_designer(
            config.optimizer, context, rng=np.random.default_rng(designer_seq), **_designer_params(config)
        )
        self.logger = MetricLogger(run.path, tensorboard=config.tensorboard)
        self.bar = progress_bar(config.iterations * 3, "simulate")

    def phase(self, t: int, name: str) -> None:
        """Advance the progress bar to the next phase (quiet when stderr is not a terminal)."""
        self.bar.set_description(f"iteration {t}/{self.config.iterations}: {name}")
        self.bar.update(1)

    # ------------------------------------------------------------------ one iteration

    def evaluate(
        self,
        t: int,
        bank: ActionBank,
        proposal_bank: ActionBank,
        result: CampaignResult,
        diagnostics: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ground-truth numbers of iteration ``t`` (the only place the runner reads the ground truth).

        ``diagnostics`` are the proposal's: its predicted values of the old and new banks give the
        optimizer's-curse ratio (predicted / realised gain).
        """
        from actionbank_env.evaluation import bank_value, gain_diagnostics, improvement_captured

        truth = self.world.ground_truth
        v_old = bank_value(truth, self.eval_users, bank)
        v_new = bank_value(truth, self.eval_users, proposal_bank)
        pool = getattr(self.designer, "last_pool_", None)
        v_oracle = float("nan")
        oracle_texts: list[str] = []
        if pool is not None and len(pool.pool) and self.config.action_bank_size > 0:
            from optimizers.selection import GreedySelector

            pool_true = truth.click_prob(self.eval_users, pool.embeddings)
            bank_true = truth.click_prob(self.eval_users, bank.embeddings)
            picks = GreedySelector().run(pool_true, self.config.action_bank_size, base=bank_true.max(axis=1))
            oracle_texts = [pool.pool.texts[i] for i in picks.indices]
            v_oracle = float(
                np.maximum(bank_true.max(axis=1), pool_true[:, picks.indices].max(axis=1, initial=0.0)).mean()
            )
        evaluation: dict[str, Any] = {
            "deployed_value": result.deployed_value,
            "bank_value_campaign_users": result.bank_value,
            "random_targeting_value": float(result.mean_probs.mean()),
            "regret": result.regret,
            "bank_value": v_old,
            "new_bank_value": v_new,
            "oracle_bank_value": v_oracle,
            "oracle_new_texts": oracle_texts,
            "improvement_captured": improvement_captured(v_new, v_old, v_oracle),
            "evaluation_users": int(self.eval_users.shape[0]),
        }
        if diagnostics is not None and "expected_value_new" in diagnostics:
            evaluation["gain"] = gain_diagnostics(
                diagnostics.get("expected_value_old"), diagnostics.get("expected_value_new"), v_old, v_new
            ).to_dict()
        model = getattr(self.designer, "reward_model_", None)
        if model is not None and pool is not None and len(pool.pool):
            from actionbank_env.evaluation import reward_model_fidelity, uncertainty_calibration

            held_out = self.eval_users[: min(500, self.eval_users.shape[0])]
            cand = pool.embeddings[: min(500, pool.embeddings.shape[0])]
            fid = reward_model_fidelity(model, truth, held_out, cand, rng=np.random.default_rng(self.fidelity_rng_seq))
            evaluation["reward_model_fidelity"] = fid.to_dict()
            from actionbank_env.evaluation import unseen_candidate_fidelity

            # The same model on never-served candidates, beside its ceiling and the action-blind baseline.
            evaluation["unseen_candidate_fidelity"] = unseen_candidate_fidelity(
                model, truth, held_out, cand, rng=np.random.default_rng(self.fidelity_rng_seq), served=bank.embeddings
            ).to_dict()
            sample_users, sample_cands = held_out[:200], cand[:200]
            residual = model.predict(sample_users, sample_cands) - truth.click_prob(sample_users, sample_cands)
            self.logger.histogram("fidelity/r_hat_minus_truth", residual, t)
            if hasattr(model, "predict_with_uncertainty"):
                mean, std = model.predict_with_uncertainty(held_out[:200], cand[:200])
                evaluation["uncertainty_calibration"] = uncertainty_calibration(
                    mean, std, truth.click_prob(held_out[:200], cand[:200])
                ).to_dict()
        return evaluation

    def iteration(
        self, t: int, bank: ActionBank, result: CampaignResult, replay_texts: tuple[str, ...] | None
    ) -> tuple[str, ...]:
        """Write iteration ``t``'s files and return the texts of the next bank."""
        import pandas as pd

        cfg, run = self.config, self.run
        folder = run.iteration_dir(t)
        history = self.env.history
        rng = np.random.default_rng(self.designer_seqs[t - 1])
        origin = f"{cfg.optimizer}:{self.copywriter_name}"
        if replay_texts is not None:  # resume: the proposal is read back, not recomputed
            remember = getattr(getattr(self.designer, "memory", None), "remember", None)
            if remember is not None:
                remember(bank)
            if replay_texts:
                self.env.resolve_bank(replay_texts, origin=origin, iteration=t + 1)
            self.log_row(t, bank, result, fresh=False)
            return replay_texts
        self.phase(t, f"design ({cfg.optimizer})")
        start = time.perf_counter()
        proposal = self.designer.propose(history, bank, rng=rng)
        designer_seconds = time.perf_counter() - start
        proposal_bank = (
            self.env.resolve_bank(proposal.texts, origin=origin, iteration=t + 1) if proposal.texts else bank
        )
        self.phase(t, "evaluate")
        evaluation = self.evaluate(t, bank, proposal_bank, result, proposal.diagnostics)
        _write_csv(folder / "users.csv", pd.DataFrame(self.env.users_history[-1].to_columns()))
        run.write_json(f"iteration_{t}/action_bank.json", bank.to_dict())
        # The env counts its campaigns from 0; the results folders (and this column) count iterations from 1.
        log = result.log
        ObservationLog({**log.columns, "iteration": np.full(len(log), t, dtype=np.int64)}).to_csv(
            folder / "observations.csv"
        )
        diag = dict(proposal.diagnostics)
        algorithm = {
            "iteration": t,
            "optimizer": cfg.optimizer,
            "reward_model_type": cfg.reward_model_type if cfg.optimizer == "generative" else None,
            "algorithm_expected_value": diag.get("expected_value_new"),
            "designer_seconds": designer_seconds,
            "diagnostics": diag,
        }
        run.write_json(f"iteration_{t}/algorithm_results.json", algorithm)
        kept = [a for a in proposal_bank.ids if a in bank]
        evolution = {
            "kept_ids": kept,
            "added_ids": [a for a in proposal_bank.ids if a not in bank],
            "retired_ids": [a for a in bank.ids if a not in proposal_bank],
        }
        run.write_json(
            f"iteration_{t}/ground_truth_evaluation.json", {"iteration": t, **evaluation, "bank_evolution": evolution}
        )
        run.write_json(f"iteration_{t}/new_action_bank.json", proposal_bank.to_dict())
        self.log_row(t, bank, result, fresh=True)
        return proposal.texts

    def log_row(self, t: int, bank: ActionBank, result: CampaignResult, *, fresh: bool) -> None:
        """Metrics of iteration ``t``, read back from its files (so a resumed run logs the same numbers)."""
        row = _read_row(self.run, t)
        lg = self.logger
        for key, column in METRIC_KEYS.items():
            value = row.get(column)
            if value is not None:
                lg.record(key, float(value))
        lg.dump(t, tensorboard=fresh)
        if fresh:
            cols = result.log.columns
            shows = np.bincount(cols["action_index"], minlength=len(bank))
            clicks = np.bincount(cols["action_index"], weights=cols["click"], minlength=len(bank))
            lg.histogram("env/per_action_ctr", clicks[shows > 0] / shows[shows > 0], t)
            lg.text("bank", "\n".join(f"    {a.id}: {a.text}" for a in bank), t)


def _load_bank_texts(run: RunFolder, t: int) -> tuple[str, ...]:
    data = run.read_json(f"iteration_{t}/new_action_bank.json")
    return tuple(a["text"] for a in data["actions"])


def run_simulation(
    config: SimulationConfig | None,
    *,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    resume: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> RunResult:
    """Run the full simulation and write the results folder.

    Args:
        config: The settings (ignored with ``resume``: the run's own ``simulation_config.json`` is used).
        out: Write into exactly this folder instead of ``results_dir/name_timestamp``.
        overwrite: Allow ``out`` to be a non-empty folder.
        resume: An interrupted run folder to continue.
        progress: Show progress bars (only on a terminal).

    Returns:
        The run folder, the per-iteration rows and the summary.
    """
    if config is not None and config.data_dir is not None and resume is None:
        data = load_data_config(config.data_dir)  # raises before any run folder is made
        _check_data_files(config.data_dir, int(data["iterations"]))
        config = config.replace(**{k: data[k] for k in DATA_FIELDS if k in data})
        if config.name == "simulation":
            config = config.replace(name="simulation_from_data")
    if resume is not None:
        run = RunFolder.open(resume)
        config = SimulationConfig.from_dict(
            run.read_json("simulation_config.json"), source=str(run.path / "simulation_config.json")
        )
        done = run.completed_iterations()
        if (run.path / "summary.json").is_file():
            raise ConfigError(f"{run.path} is already complete (summary.json exists); nothing to resume.")
    else:
        if config is None:
            config = SimulationConfig()
        if not isinstance(config, SimulationConfig):
            raise TypeError(f"config must be a SimulationConfig, got {type(config).__name__}.")
        run = RunFolder.create(config.results_dir, config.name, out=out, overwrite=overwrite)
        run.write_json("simulation_config.json", config.to_dict())
        if config.data_dir is not None:
            run.write_json(
                "run_from_data_config.json",
                {"data_dir": str(Path(config.data_dir).resolve()), "algorithm_config": config.to_dict()},
            )
        done = 0
    meta = {
        "versions": _versions(),
        "seed": config.seed,
        "world_seed": config.resolved_world_seed,
        "argv": redact_argv(sys.argv),
        "git_commit": _git_commit(),
        "started_at_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "resumed_from_iteration": done if resume is not None else None,
    }
    run.write_json("meta.json", meta)
    with thread_limits(config.threads), progress_bars(progress):
        sim = _Simulation(config, run, progress=progress)
        try:
            return _loop(sim, done)
        finally:
            sim.logger.close()
            sim.env.close()


def _loop(sim: _Simulation, done: int) -> RunResult:
    cfg, run, env = sim.config, sim.run, sim.env
    start = time.perf_counter()
    sim.phase(1, "campaign")
    _, info = env.reset(seed=sim.env_seed)
    run.write_json("initialization/action_bank.json", env.bank.to_dict())
    run.write_json(
        "initialization/world.json",
        {
            "world_config": cfg.world_config().to_dict(),
            "world": repr(sim.world),
            "ground_truth": repr(sim.world.ground_truth),
        },
    )
    sim.logger.text("config", _markdown_table(cfg.to_dict()), 0)
    result = env.results[-1]
    for t in range(1, cfg.iterations + 1):
        bank = env.bank
        replay = _load_bank_texts(run, t) if t <= done else None
        next_texts = sim.iteration(t, bank, result, replay)
        if replay is None:
            run.mark_complete(t)
        if t < cfg.iterations:
            sim.phase(t + 1, "campaign")
            _, _, _, _, info = env.step(list(next_texts))
            result = env.results[-1]
    sim.bar.close()
    rows = _read_rows(run, cfg.iterations)
    summary: dict[str, Any] = {k: rows[-1].get(k) if rows else None for k in SUMMARY_KEYS}
    summary["per_iteration"] = {k: [r.get(k) for r in rows] for k in SUMMARY_KEYS}
    summary["iterations"] = cfg.iterations
    summary["final_bank_size"] = rows[-1]["new_bank_size"] if rows else None
    run.write_json("summary.json", summary)
    final = {f"final/{k}": v for k, v in summary.items() if isinstance(v, (int, float)) and v is not None}
    sim.logger.hparams({k: v for k, v in cfg.to_dict().items() if v is not None}, final)
    run.write_json(
        "complete_simulation_results.json",
        {"config": cfg.to_dict(), "summary": summary, "iterations": rows, "wall_seconds": time.perf_counter() - start},
    )
    if cfg.report:
        try:
            from actionbank_env.report import write_report
        except ImportError:  # pragma: no cover - report module optional at this stage
            pass
        else:
            write_report(run.path)
    return RunResult(path=run.path, config=cfg, iterations=rows, summary=summary)


def _markdown_table(values: dict[str, Any]) -> str:
    """A two-column markdown table (TensorBoard renders text summaries as markdown)."""
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in values.items())


def _read_rows(run: RunFolder, n: int) -> list[dict[str, Any]]:
    """Per-iteration rows rebuilt from the iteration files (so a resumed run reports every iteration)."""
    return [_read_row(run, t) for t in range(1, n + 1)]


def _read_row(run: RunFolder, t: int) -> dict[str, Any]:
    """The numbers of iteration ``t`` from its files."""
    import pandas as pd

    ev = run.read_json(f"iteration_{t}/ground_truth_evaluation.json")
    alg = run.read_json(f"iteration_{t}/algorithm_results.json")
    obs_bank = run.read_json(f"iteration_{t}/action_bank.json")
    new_bank = run.read_json(f"iteration_{t}/new_action_bank.json")
    clicks = pd.read_csv(run.file(f"iteration_{t}/observations.csv"), usecols=["click"])["click"]
    fid = ev.get("reward_model_fidelity") or {}
    evolution = ev.get("bank_evolution", {})
    return {
        "iteration": t,
        "company_reward": float(clicks.mean()),
        "deployed_value": ev["deployed_value"],
        "bank_value": ev["bank_value"],
        "new_bank_value": ev["new_bank_value"],
        "oracle_bank_value": ev["oracle_bank_value"],
        "improvement_captured": ev["improvement_captured"],
        "regret": ev["regret"],
        "algorithm_expected_value": alg.get("algorithm_expected_value"),
        "bank_size": obs_bank["n_actions"],
        "new_bank_size": new_bank["n_actions"],
        "n_added": len(evolution.get("added_ids", [])),
        "n_retired": len(evolution.get("retired_ids", [])),
        "fidelity_spearman": fid.get("spearman"),
        "fidelity_auc": fid.get("auc"),
    }


def _check_data_files(data_dir: str | os.PathLike[str], iterations: int) -> None:
    root = Path(data_dir)
    needed = ["initialization/action_bank.json"] + [
        f"iteration_{t}/users.csv" for t in range(1, max(iterations, 2) + 1)
    ]
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        raise ConfigError(f"--data_dir {root} is missing {', '.join(missing[:3])}; regenerate it with generate-data.")


def load_data_config(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings stored in a ``generate-data`` folder.

    Raises:
        ConfigError: If the folder or its ``data_config.json`` is missing or of another format.
    """
    root = Path(data_dir)
    path = root / "data_config.json"
    if not path.is_file():
        raise ConfigError(f"--data_dir {root} is not a generate-data folder (no data_config.json).")
    from actionbank_env.core.io import read_json

    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != DATA_FORMAT:
        raise ConfigError(
            f"{path} must have format {DATA_FORMAT!r}, got {data.get('format') if isinstance(data, dict) else data!r}."
        )
    return dict(data["settings"])


def generate_data(
    config: SimulationConfig, *, out: str | os.PathLike[str] | None = None, overwrite: bool = False
) -> Path:
    """Write a reproducible data folder: fixed users per iteration and the initial bank.

    Layout: ``data_config.json`` (format and settings), ``initialization/action_bank.json`` and
    ``iteration_<t>/users.csv`` for ``t = 1 .. max(iterations, 2)`` (users of results iteration ``t``). Several
    algorithms then run on the same data with ``run-from-data --data_dir``.

    Args:
        config: World and size settings (``users``, ``iterations``, ``initial_actions``, ``seed``, world fields).
        out: The folder (default ``data/simulation_data/data_seed<seed>_<hash>`` of the settings).
        overwrite: Allow a non-empty ``out``.
    """
    import hashlib
    import json

    import pandas as pd

    settings = {k: getattr(config, k) for k in DATA_FIELDS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    if out is None:
        out = Path("data/simulation_data") / f"data_seed{config.seed}_{digest}"
    folder = RunFolder.create(".", "data", out=out, overwrite=overwrite)
    world = World.build(config.world_config())
    users_rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(4)[3])
    folder.write_json("data_config.json", {"format": DATA_FORMAT, "settings": settings, "id": digest})
    folder.write_json("initialization/action_bank.json", world.initial_bank.to_dict())
    first_id = 0
    for t in range(1, max(config.iterations, 2) + 1):
        users = world.sample_users(config.users, rng=users_rng, first_id=first_id)
        first_id += len(users)
        _write_csv(folder.iteration_dir(t) / "users.csv", pd.DataFrame(users.to_columns()))
    return folder.path
