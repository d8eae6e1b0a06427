"""run_simulation(config) -> RunResult: the README's "The loop", with its "Results folder".

::

    obs, info = env.reset(seed)                        # iteration 1: the initial bank deployed, its log collected
    for t in 1 .. iterations:
        proposal = designer.propose(info["history"], info["bank"], rng=designer_rng[t])   # texts of bank t+1
        evaluation = evaluate_iteration(..., proposal, ...)                                # against the ground truth
        run.write_iteration(t, ...); logger.record(...)
        if t < iterations: obs, reward, terminated, truncated, info = env.step(proposal.texts)

Iteration ``t`` deploys bank ``t`` with the company's targeting agent on fresh users (``env.reset`` deploys bank 1,
each ``env.step`` the next), lets the designer propose bank ``t+1`` from the logs so far, and scores both banks on
a fixed sample of evaluation users; the last proposal is evaluated, not deployed, so a run of ``iterations``
iterations takes ``iterations - 1`` env steps. The env counts iterations from 1, like the ``iteration_<t>`` folders.
What the runner needs from the env comes from ``reset`` / ``step`` / ``info``, what it needs from the designer from
the :class:`~actionbank_env.protocols.Proposal`; the ground truth is read only by :mod:`actionbank_env.evaluation`.

Seeding: ``SeedSequence(seed)`` is split into the episode stream (users, clicks, company agent), the designer
stream (one child per iteration) and the evaluation stream; the world comes from ``world_seed``. Same config ->
byte-identical results files except timestamps and durations (``meta.json``, ``*_seconds``).

Resume: iterations are marked complete only after all their files are written. ``--resume`` replays the completed
iterations deterministically (campaigns are re-run so the company agent regains its state, the designer is told the
deployed banks with ``remember``, and the proposals are read back from ``new_action_bank.json`` instead of being
recomputed), then continues; the results are identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.config import SimulationConfig
from actionbank_env.core.copywriting import Copywriter
from actionbank_env.core.progress import bar as progress_bar
from actionbank_env.core.progress import progress_bars
from actionbank_env.core.world import World
from actionbank_env.errors import ActionBankError, ConfigError, ConfigTypeError
from actionbank_env.metrics import MetricLogger
from actionbank_env.provenance import run_meta
from actionbank_env.results import (
    COMPLETE_FILE,
    CONFIG_FILE,
    EVALUATION_FILE,
    FROM_DATA_FILE,
    INITIAL_BANK_FILE,
    META_FILE,
    REPORT_FILE,
    SUMMARY_FILE,
    WORLD_CARD_FILE,
    WORLD_FILE,
    RunFolder,
    iteration_file,
    summarize_rows,
)
from actionbank_env.runtime import thread_limits

__all__ = ["run_simulation", "RunResult", "make_copywriter", "load_config"]

#: The SQLite file of cached chat responses, in the folder of the embedding cache (``$ACTIONBANK_CACHE_DIR``).
CHAT_CACHE_FILE = "chat_responses.sqlite"
#: Logged users (the last campaign's first rows) the designer's predictions for new texts are made on when the
#: company agent wants a prior for them (LinUCB's ``new_action_prior``).
ACTION_PRIOR_USERS = 2000

#: TensorBoard / metrics.csv key -> per-iteration row column.
METRIC_KEYS = {
    "env/company_reward": "company_reward",
    "env/deployed_value": "deployed_value",
    "env/regret": "regret",
    "optimizer/bank_value": "bank_value",
    "optimizer/new_bank_value": "new_bank_value",
    "optimizer/oracle_bank_value": "oracle_bank_value",
    "optimizer/improvement_captured": "improvement_captured",
    "optimizer/delta_value": "delta_value",
    "optimizer/expected_value": "algorithm_expected_value",
    "optimizer/bank_size": "bank_size",
    "fidelity/spearman": "fidelity_spearman",
    "fidelity/auc": "fidelity_auc",
}


#: TensorBoard's "Custom Scalars" tab: the numbers read together, on one chart each.
TENSORBOARD_LAYOUT: dict[str, dict[str, list[str]]] = {
    "bank design": {
        "value: deployed, bank, proposed, oracle": [
            "env/deployed_value",
            "optimizer/bank_value",
            "optimizer/new_bank_value",
            "optimizer/oracle_bank_value",
        ],
        "company reward vs deployed value": ["env/company_reward", "env/deployed_value"],
    },
    "reward model fidelity": {
        "AUC vs its ceiling (0.5: chance)": ["fidelity/auc", "fidelity/auc_ceiling"],
        "log loss vs its ceiling": ["fidelity/log_loss", "fidelity/log_loss_ceiling"],
        "rank correlation": ["fidelity/spearman", "fidelity/pearson"],
    },
}


#: Summary entries that describe the run rather than measure it (kept out of TensorBoard's hparams metrics).
_NOT_METRICS = frozenset({"iterations", "n_iterations"})


HEADLINE_MEANINGS = {
    "company_reward": "click rate the company's agent earned on this campaign (observed)",
    "deployed_value": "true click probability of what the agent served, on fresh users",
    "bank_value": "true value of the deployed bank under perfect targeting",
    "new_bank_value": "same for the bank the optimizer proposes next",
    "oracle_bank_value": "same for the ground-truth greedy bank from the same candidate pool",
    "improvement_captured": "(new - old) / (oracle - old): share of the pool's headroom the optimizer took",
    "regret": "best-in-bank minus served true click probability, per user",
}


#: With lifetimes (``retention``): what changes meaning, and the lifetime numbers (``summary.json``).
LIFETIME_HEADLINE = {
    "deployed_value": "expected clicks per subscriber over its lifetime (fatigue, novelty, unsubscribes)",
    "regret": "per subscriber lifetime: best-in-bank minus served click probability, summed over its weeks",
    "lifetime_clicks_per_subscriber": "clicks per subscriber over the lifetime (realised)",
    "unsubscribe_rate": "share of the campaign's subscribers who unsubscribed before the horizon",
    "weeks_subscribed": "mean weeks a subscriber stayed (emails received per subscriber)",
}

#: Keys of ``ground_truth_evaluation.json``'s ``"lifetime"`` block logged as ``lifetime/<key>`` (metrics.csv).
LIFETIME_KEYS = (
    "expected_clicks_per_subscriber",
    "clicks_per_subscriber",
    "unsubscribe_rate",
    "weeks_subscribed",
)


def lifetime_record(info: dict[str, Any], horizon: int) -> dict[str, float]:
    """The lifetime numbers of a campaign run as subscribers' lifetimes (the env's ``info``), for
    ``ground_truth_evaluation.json``: ``horizon``, ``subscribers``, ``expected_clicks_per_subscriber`` (the deployed
    value: expected clicks over the lifetime), ``clicks_per_subscriber`` (realised), ``unsubscribe_rate``,
    ``weeks_subscribed`` (emails per subscriber) and ``ctr`` (clicks per email)."""
    summary = info["summary"]
    subscribers = summary["subscribers"]
    clicks = float(np.sum(info["log"].columns["click"]))
    return {
        "horizon": horizon,
        "subscribers": int(subscribers),
        "expected_clicks_per_subscriber": float(info["deployed_value"]),
        "clicks_per_subscriber": clicks / subscribers if subscribers else float("nan"),
        "unsubscribe_rate": float(summary["unsubscribe_rate"]),
        "weeks_subscribed": float(summary["weeks_subscribed"]),
        "ctr": float(summary["company_reward"]),
    }


def lifetime_summary(evaluations: list[dict[str, Any]]) -> dict[str, Any]:
    """``summary.json`` entries of a run with lifetimes, from its iterations' evaluation files: the last
    iteration's ``retention_horizon``, ``lifetime_clicks_per_subscriber``, ``unsubscribe_rate`` and
    ``weeks_subscribed``, and their values per iteration (under ``per_iteration_lifetime``, merged into the
    summary's ``per_iteration`` by the runner)."""
    blocks = [e["lifetime"] for e in evaluations]
    names = {
        "lifetime_clicks_per_subscriber": "clicks_per_subscriber",
        "unsubscribe_rate": "unsubscribe_rate",
        "weeks_subscribed": "weeks_subscribed",
    }
    out: dict[str, Any] = {"retention_horizon": blocks[-1]["horizon"] if blocks else None}
    out.update({key: blocks[-1][name] if blocks else None for key, name in names.items()})
    out["per_iteration_lifetime"] = {key: [b[name] for b in blocks] for key, name in names.items()}
    return out


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
            f"summary.json, iteration {self.summary.get('iterations')} (ground truth, {self.config.run.evaluation_users} fresh users):"
        ]
        meanings = dict(HEADLINE_MEANINGS)
        if self.config.retention is not None:
            meanings.update(LIFETIME_HEADLINE)
            lines[0] += f" campaigns ran as {self.config.retention.horizon}-week subscriber lifetimes"
        for key, meaning in meanings.items():
            value = self.summary.get(key)
            shown = "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.4f}"
            lines.append(f"  {key:<22} {shown:>8}  {meaning}")
        report = self.path / REPORT_FILE
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


def make_copywriter(config: SimulationConfig, api_key: str | None = None) -> Copywriter:
    """The candidate text source: OpenAI when the world embeds with OpenAI, offline otherwise.

    The OpenAI copywriter is wrapped in a :class:`~actionbank_env.core.copywriting.FallbackCopywriter`: a
    generation call whose requests still fail after their bounded retries logs a WARNING and is answered by
    the offline copywriter. Embeddings never fall back (the world's embedder is fixed for the whole run; an
    embedding failure stops the run with a ``ServiceError`` and the run folder stays resumable).

    Args:
        config: The run's settings (``world.embedder`` decides).
        api_key: The OpenAI key (default: the ``OPENAI_API_KEY`` environment variable, as the OpenAI embedder's).
    """
    from actionbank_env.core.copywriting import FallbackCopywriter, OfflineCopywriter, OpenAICopywriter
    from actionbank_env.core.embedding_cache import default_cache_path

    if config.world.embedder == "openai":
        # Chat responses are cached beside the embeddings (keyed by model, prompt, seed and temperature), so a
        # rerun or a resumed run sends no chat request it has sent before.
        cache = default_cache_path().with_name(CHAT_CACHE_FILE)
        return FallbackCopywriter(OpenAICopywriter(api_key=api_key, cache_path=cache), OfflineCopywriter())
    return OfflineCopywriter()


def load_config(run: RunFolder) -> SimulationConfig:
    """The settings a run folder ran with (a version-1 ``simulation_config.json`` is migrated)."""
    return SimulationConfig.from_dict(run.read_json(CONFIG_FILE), source=str(run.path / CONFIG_FILE))


class _Simulation:
    """The state of one run (kept in one place so resume and a fresh run share every line)."""

    def __init__(self, config: SimulationConfig, *, api_key: str | None) -> None:
        """Build the world, the env, the designer and a probe of the agent: every setting is checked here, before
        :meth:`attach` gives the run a folder (a run that fails validation leaves no folder or TensorBoard run)."""
        from actionbank_env.envs.bank_design import MAX_BANK_SLOTS, BankDesignConfig, BankDesignEnv
        from actionbank_env.registry import check_agent_fits, make_designer

        self.config = config
        n = config.run.iterations
        self.world = World.build(config.world, api_key=api_key)
        env_seq, designer_seq, eval_seq = np.random.SeedSequence(config.run.seed).spawn(3)
        self.designer_seqs = designer_seq.spawn(n)
        self.eval_users = self.world.sample_users(
            config.run.evaluation_users, rng=np.random.default_rng(eval_seq)
        ).features
        self.fidelity_seq = eval_seq.spawn(1)[0]
        self.ope_seed = int(eval_seq.spawn(1)[0].generate_state(1)[0])
        self.env_seed = int(env_seq.generate_state(1)[0])
        copywriter = make_copywriter(config, api_key)
        self.origin = f"{config.designer.name}:{copywriter.name}"
        self.env = BankDesignEnv(
            BankDesignConfig(
                campaign=config.campaign,
                n_iterations=n - 1,
                max_bank_size=MAX_BANK_SLOTS,  # the designer keeps its own cap; the runner reads no observation
                company_strategy=config.agent.name,
                company_params=config.agent.kwargs(),
                data_dir=config.run.data_dir,
                first_iteration=1,
                origin=self.origin,
                retention=config.retention,
            ),
            world=self.world,
        )
        self.designer = make_designer(
            config.designer.name,
            self.world,
            copywriter=copywriter,
            rng=np.random.default_rng(designer_seq),
            **config.designer.kwargs(),
        )
        # Evaluation only: the reference designer proposing from the same logs and pool (run.same_logs_reference).
        # Its own copywriter, built the same way, so the designer's calls leave its pool draws untouched.
        self.reference = None
        if config.run.same_logs_reference:
            if config.designer.name != "generative":
                raise ConfigError(
                    "run.same_logs_reference compares the generative designer with the reference designer on the same "
                    f"logs and pool; it needs designer='generative', got designer={config.designer.name!r}."
                )
            self.reference = make_designer(
                "reference",
                self.world,
                copywriter=make_copywriter(config, api_key),
                rng=np.random.default_rng(designer_seq),
                **config.designer.kwargs(),
            )
        check_agent_fits(
            config.agent.name,
            config.agent.kwargs(),
            self.world,
            self.designer,
            designer_name=config.designer.name,
            check_initial_bank=config.run.data_dir is None,
        )
        if config.run.tracker == "mlflow":
            from actionbank_env.integrations.mlflow import require_mlflow

            require_mlflow()  # a missing extra fails now, not after the run

    def attach(self, run: RunFolder) -> None:
        """Give the run its folder: the metric logger (CSV, TensorBoard) and the progress bar start here."""
        self.run = run
        self.logger = MetricLogger(run.path, tensorboard=self.config.run.tensorboard)
        self.logger.custom_scalars(TENSORBOARD_LAYOUT)
        self.bar = progress_bar(self.config.run.iterations * 3, "simulate")

    def phase(self, t: int, name: str) -> None:
        """Advance the progress bar to the next phase (quiet when stderr is not a terminal)."""
        self.bar.set_description(f"iteration {t}/{self.config.run.iterations}: {name}")
        self.bar.update(1)

    def close(self) -> None:
        """Close the logger and the env."""
        self.logger.close()
        self.env.close()

    # ------------------------------------------------------------------ the loop

    def loop(self, done: int) -> RunResult:
        """Run (or, up to iteration ``done``, replay) every iteration; write the summary and the report."""
        cfg, run = self.config, self.run
        n = cfg.run.iterations
        start = time.perf_counter()
        self.phase(1, "campaign")
        _, info = self.env.reset(seed=self.env_seed)
        run.write_json(INITIAL_BANK_FILE, info["bank"].to_dict())
        run.write_json(
            WORLD_FILE,
            {
                "world_config": cfg.world.to_dict(),
                "world": repr(self.world),
                "ground_truth": repr(self.world.ground_truth),
            },
        )
        card = self.world.card().to_dict()
        del card["seconds"]  # wall time: run folders are deterministic (a resumed run matches an uninterrupted one)
        run.write_json(WORLD_CARD_FILE, card)
        settings = cfg.settings()
        self.logger.text("config", _markdown_table(settings), 0)
        for t in range(1, n + 1):
            if t <= done:  # resume: the proposal is read back, not recomputed
                self.designer.remember(info["bank"])
                if self.reference is not None:
                    self.reference.remember(info["bank"])
                texts = run.proposed_texts(t)
                self.log_row(t, info, fresh=False)
            else:
                texts = self.iteration(t, info)
                run.mark_complete(t)
            if t < n:
                self.phase(t + 1, "campaign")
                _, _, _, _, info = self.env.step(list(texts))
        self.bar.close()
        rows = run.read_rows(n)
        summary = summarize_rows(rows)
        if cfg.retention is not None:
            summary.update(
                lifetime_summary([run.read_json(iteration_file(t, EVALUATION_FILE)) for t in range(1, n + 1)])
            )
            summary["per_iteration"].update(summary.pop("per_iteration_lifetime"))
        final = {
            f"final/{k}": v
            for k, v in summary.items()
            if isinstance(v, (int, float)) and v is not None and k not in _NOT_METRICS
        }
        self.logger.hparams(settings, final)
        run.write_json(
            COMPLETE_FILE,
            {
                "config": cfg.to_dict(),
                "summary": summary,
                "iterations": rows,
                "wall_seconds": time.perf_counter() - start,
            },
        )
        if cfg.run.report:
            from actionbank_env.report import write_report

            write_report(run.path, summary=summary)
        # Written last: a run folder with summary.json is complete; one without it resumes (a run killed while
        # writing the final files or the report, e.g. on a full disk, is finished by --resume).
        run.write_json(SUMMARY_FILE, summary)
        return RunResult(path=run.path, config=cfg, iterations=rows, summary=summary)

    def designer_rng(self, t: int) -> np.random.Generator:
        """A generator of iteration ``t``'s designer stream in its initial state, whoever asks first.

        Built on a fresh copy of the stream's SeedSequence: ``Generator.spawn`` advances the SeedSequence a
        generator was built from, so a second generator on the shared one would draw a different pool.
        """
        seq = self.designer_seqs[t - 1]
        return np.random.default_rng(
            np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key, pool_size=seq.pool_size)
        )

    def iteration(self, t: int, info: dict[str, Any]) -> tuple[str, ...]:
        """Propose bank ``t+1`` from the logs, evaluate it, write iteration ``t``'s files; returns its texts."""
        import pandas as pd

        from actionbank_env.evaluation import bank_evolution, evaluate_iteration

        bank = info["bank"]
        designer_name = self.config.designer.name
        self.phase(t, f"design ({designer_name})")
        start = time.perf_counter()
        proposal = self.designer.propose(info["history"], bank, rng=self.designer_rng(t))
        designer_seconds = time.perf_counter() - start
        if proposal.reward_model is not None and info["history"]:
            # The company agent may start the new texts from the designer's predictions (LinUCB's new_action_prior).
            users = np.asarray(info["history"][-1].users, dtype=np.float64)[:ACTION_PRIOR_USERS]
            self.env.unwrapped.set_action_prior(proposal.reward_model.predict, users)
        new_bank = (
            info["catalog"].bank(proposal.texts, self.world.embedder, origin=self.origin, iteration=t + 1)
            if proposal.texts
            else bank
        )
        self.phase(t, "evaluate")
        evaluation = evaluate_iteration(
            self.world.ground_truth,
            self.eval_users,
            bank,
            new_bank,
            info,
            proposal,
            rng=np.random.default_rng(self.fidelity_seq),
        )
        if self.reference is not None:
            from actionbank_env.evaluation import same_logs_reference

            reference = self.reference.propose(info["history"], bank, rng=self.designer_rng(t))
            evaluation.record["same_logs_reference"] = same_logs_reference(
                self.world.ground_truth,
                self.eval_users,
                bank,
                proposal,
                reference,
                v_old=evaluation.record["bank_value"],
                v_oracle=evaluation.record["oracle_bank_value"],
                rng=np.random.default_rng(self.fidelity_seq),  # the designer's fidelity clicks
            )
        log = info["log"]
        if self.config.retention is not None:
            evaluation.record["lifetime"] = lifetime_record(info, self.config.retention.horizon)
        # the pre-deployment estimate, beside its truth (run.ope: a benchmark that does not compare it skips it).
        # Not with lifetimes: the log's clicks are those of tired subscribers, while the truth it is checked against
        # is one email to a rested user, so the comparison would measure the dynamics, not the estimator.
        # The hyperparameters the designer's reward model chose on the logs (recorded with the designer's results):
        # OPE's cross-fit takes them rather than choosing again on (nearly) the same log.
        from actionbank_env.ope.run import SETTINGS_KEY, chosen_settings, estimate_proposal

        settings = chosen_settings(proposal.reward_model, self.config)
        if self.config.run.ope and self.config.retention is None and len(log) >= 10 and new_bank.ids != bank.ids:
            evaluation.record["ope"] = estimate_proposal(
                log,
                bank,
                new_bank,
                self.config,
                self.world.ground_truth,
                seed=self.ope_seed,
                iteration=t,
                settings=settings,
            )
        if evaluation.residuals is not None:
            self.logger.histogram("fidelity/r_hat_minus_truth", evaluation.residuals, t)
        diag = dict(proposal.diagnostics)
        self.run.write_iteration(
            t,
            users=pd.DataFrame(info["users"].to_columns()),
            bank=bank.to_dict(),
            observations=info["log"],
            algorithm={
                "iteration": t,
                "optimizer": designer_name,
                "reward_model_type": diag.get("reward_model"),
                "algorithm_expected_value": diag.get("expected_value_new"),
                "designer_seconds": designer_seconds,
                "diagnostics": diag,
                **({SETTINGS_KEY: settings} if settings else {}),
            },
            evaluation={"iteration": t, **evaluation.record, "bank_evolution": bank_evolution(bank, new_bank)},
            new_bank=new_bank.to_dict(),
        )
        self.log_row(t, info, fresh=True)
        return proposal.texts

    def log_row(self, t: int, info: dict[str, Any], *, fresh: bool) -> None:
        """Metrics of iteration ``t``, read back from its files (so a resumed run logs the same numbers)."""
        row = self.run.read_row(t)
        lg = self.logger
        for key, column in METRIC_KEYS.items():
            value = row.get(column)
            if value is not None:
                lg.record(key, float(value))
        # Every number of the reward model's fidelity report (the AUC is read against its ceiling), not two of them.
        evaluation = self.run.read_json(iteration_file(t, EVALUATION_FILE))
        fidelity = evaluation.get("reward_model_fidelity") or {}
        lg.record_many({k: v for k, v in fidelity.items() if v is not None}, prefix="fidelity/")
        reference = evaluation.get("same_logs_reference")
        if reference is not None:  # run.same_logs_reference: the designer's capture and AUC have this beside them
            reference_fidelity = reference.get("unseen_candidate_fidelity") or {}
            lg.record_many(
                {
                    "new_bank_value": reference["new_bank_value"],
                    "improvement_captured": reference["improvement_captured"],
                    **{f"fidelity/{k}": reference_fidelity.get(k) for k in ("auc", "mean_ratio")},
                },
                prefix="same_logs_reference/",
            )
        lifetime = evaluation.get("lifetime")
        if lifetime is not None:  # lifetimes: one column each in metrics.csv (and the report's table)
            lg.record_many({k: lifetime[k] for k in LIFETIME_KEYS}, prefix="lifetime/")
        if fresh:  # what the company's agent returned from update() ("train/td_loss", ...), averaged over the campaign
            lg.record_many({k: v for k, v in info["summary"].items() if "/" in k})
        lg.dump(t, tensorboard=fresh)
        if fresh:
            bank, cols = info["bank"], info["log"].columns
            shows = np.bincount(cols["action_index"], minlength=len(bank))
            clicks = np.bincount(cols["action_index"], weights=cols["click"], minlength=len(bank))
            lg.histogram("env/per_action_ctr", clicks[shows > 0] / shows[shows > 0], t)
            lg.text("bank", "\n".join(f"    {a.id}: {a.text}" for a in bank), t)


_ENTRY_POINT = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _entry_points(value: Any) -> set[str]:
    """Every string in a JSON value shaped like a ``module:Class`` entry point (what a config would import)."""
    if isinstance(value, str):
        return {value} if _ENTRY_POINT.fullmatch(value) else set()
    if isinstance(value, dict):
        return set().union(*(_entry_points(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_entry_points(v) for v in value)) if value else set()
    return set()


def run_simulation(
    config: SimulationConfig | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    resume: str | os.PathLike[str] | None = None,
    progress: bool = False,
    api_key: str | None = None,
    trust_plugins: bool = False,
) -> RunResult:
    """Run the full simulation and write the results folder.

    Args:
        config: The settings (default: the defaults; ignored with ``resume``: the run's own
            ``simulation_config.json`` is used).
        out: Write into exactly this folder instead of ``results_dir/name_timestamp``.
        overwrite: Allow ``out`` to be a non-empty folder.
        resume: An interrupted run folder to continue.
        progress: Show progress bars (only on a terminal).
        api_key: The OpenAI key when the world embeds with OpenAI (never written anywhere; default: the
            ``OPENAI_API_KEY`` environment variable).
        trust_plugins: With ``resume``, import the ``module:Class`` components the run folder's
            ``simulation_config.json`` names; without it they are refused (a run folder from elsewhere could name
            any module, and importing it runs its code).

    Returns:
        The run folder, the per-iteration rows and the summary.
    """
    from actionbank_env.data import with_data

    for name, value in (("out", out), ("resume", resume)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ConfigTypeError(
                f"run_simulation {name} must be a path (str or os.PathLike), got {type(value).__name__}."
            )
    if resume is not None and out is not None:
        raise ConfigError("run_simulation: pass out= or resume=, not both (a run resumes in its own folder).")
    if resume is not None:
        run = RunFolder.open(resume)
        plugins = sorted(_entry_points(run.read_json(CONFIG_FILE)))  # before parsing it: parsing imports them
        if plugins and not trust_plugins:
            raise ConfigError(
                f"{run.path / CONFIG_FILE} names module:Class components {plugins}; importing them runs their code. "
                "Resume it only if you trust that folder: pass --trust-plugins."
            )
        config = load_config(run)
        done = run.completed_iterations()
        if run.exists(SUMMARY_FILE):
            raise ConfigError(f"{run.path} is already complete ({SUMMARY_FILE} exists); nothing to resume.")
        for t in range(1, done + 1):  # the banks the resumed run replays: a damaged one is refused before any write
            run.proposed_texts(t)
        run.remove_temp_files()  # what a kill in the middle of an atomic write left behind
        with thread_limits(config.run.threads), progress_bars(progress):
            sim = _Simulation(config, api_key=api_key)
    else:
        config = SimulationConfig() if config is None else config
        if not isinstance(config, SimulationConfig):
            raise ConfigTypeError(f"config must be a SimulationConfig, got {type(config).__name__}.")
        config = with_data(config)  # raises before any run folder is made
        if out is not None:
            RunFolder.check_out(out, overwrite=overwrite)
        fresh = out is None or not Path(out).exists()
        with thread_limits(config.run.threads), progress_bars(progress):
            sim = _Simulation(config, api_key=api_key)  # so does every component's validation
        run = RunFolder.create(config.run.results_dir, config.run.name, out=out, overwrite=overwrite)
        run.write_json(CONFIG_FILE, config.to_dict())
        if config.run.data_dir is not None:
            run.write_json(
                FROM_DATA_FILE,
                {"data_dir": str(Path(config.run.data_dir).resolve()), "algorithm_config": config.to_dict()},
            )
        done = 0
    run.write_json(
        META_FILE,
        run_meta(
            seed=config.run.seed,
            world_seed=config.run.resolved_world_seed,
            resumed_from_iteration=done if resume is not None else None,
            secrets=(api_key,),
        ),
    )
    attached = False
    try:
        with thread_limits(config.run.threads), progress_bars(progress):
            sim.attach(run)
            attached = True
            try:
                result = sim.loop(done)
            finally:
                sim.close()
    except BaseException as exc:
        run.discard()  # a run built to replace another (--overwrite) never half-replaces it
        if resume is None and fresh and not attached and isinstance(exc, ActionBankError):
            shutil.rmtree(run.path, ignore_errors=True)  # settings refused while building leave no folder behind
        raise
    result.path = run.commit()
    if config.run.tracker == "mlflow":
        from actionbank_env.integrations.mlflow import default_tracking_uri, log_run_to_mlflow

        log_run_to_mlflow(
            result.path,
            params=config.to_dict(),
            rows=result.iterations,
            summary=result.summary,
            tracking_uri=config.run.tracking_uri or default_tracking_uri(config.run.results_dir),
        )
    return result


def _markdown_table(values: dict[str, Any]) -> str:
    """A two-column markdown table (TensorBoard renders text summaries as markdown)."""
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in values.items())
