"""Off-policy estimators against the exact truth: bias, RMSE and interval coverage per estimator and logger.

One trial per (world seed, logging policy): the logger serves the world's initial bank to ``--users`` users
(iteration 1), the generative designer (default settings) proposes the next bank from that log, and every
estimator of :mod:`actionbank_env.ope` estimates the value of the proposed bank as the designer would use it
(each logged user gets the bank's best action under the designer's reward model, cross-fitted over
``--folds`` folds of the log). The direct method ``dm`` uses that same cross-fitted model: the designer's
default reward model unless ``--dm-model`` names another (``--dm-model lightgbm`` reproduces the tables
measured while LightGBM was the default). The truth is the target policy's exact value on the same users. The designer, its pool and its model do not depend on the
estimators, so every estimator is judged on the same proposals.

Run (the README table):

    python -m benchmarks.bench_ope --embedder minilm --seeds 1000-1009 --jobs 2 --out benchmarks/ope_minilm1000.json

Issue 17's Must show (the default logger only; prints the best estimator with >= 85 % coverage, its RMSE
ratio to DM's with a paired bootstrap interval, and the clicks' noise floor):

    python -m benchmarks.bench_ope --embedder minilm --seeds 1000-1009 --loggers linucb_default --jobs 2 \
        --out benchmarks/ope_minilm1000_default.json

Seeds 1000-1009 are used by no test and by no development run (development used 0-9 with the hashing
embedder).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from actionbank_env.config import SimulationConfig
from actionbank_env.core.campaign import run_campaign
from actionbank_env.core.copywriting import OfflineCopywriter
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.evaluation import policy_value
from actionbank_env.ope import BanditData, OPEConfig, estimate_all
from actionbank_env.ope.policies import ProbabilityRecorder, crossfit_greedy_policy, greedy_policy
from actionbank_env.ope.posterior import estimate_with_posterior
from actionbank_env.ope.run import POSTERIOR_MODEL_PARAMS, chosen_settings
from actionbank_env.registry import make_agent, make_designer, make_reward_model

#: What a default ``actionbank simulate`` uses (LinUCB's alpha and PCA, campaign batch, designer settings).
SIMULATE_DEFAULTS = SimulationConfig()
#: Logging policies: label -> (registry name, hyperparameters). The LinUCB loggers take the simulation's agent
#: settings; ``linucb_default`` is exactly the company agent of a default run.
LOGGERS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniform": ("random", {}),
    "epsilon_greedy": ("epsilon_greedy", {"epsilon": 0.1}),
    "linucb_default": ("linucb", SIMULATE_DEFAULTS.agent.kwargs()),
    "linucb_softmax": ("linucb", {**SIMULATE_DEFAULTS.agent.kwargs(), "exploration": "softmax"}),
    "linucb_deterministic": ("linucb", {**SIMULATE_DEFAULTS.agent.kwargs(), "exploration": "none"}),
}


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` or ``"1,5,7"`` -> a list of ints."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return out


@dataclass
class Trial:
    """One logged campaign and the designer's proposal: everything an estimator may see, and the truth.

    Attributes:
        world: The world. logger: The logging policy's label. seed: The trial's seed.
        result: The campaign (its log and deployed value). bank: The logged bank. new_bank: The proposed bank.
        proposal: The designer's proposal. data: The log as :class:`BanditData` (with the recorded logger
            distributions). reference: The unlabelled texts' embeddings a reward model may use (the
            designer's candidate pool and both banks). design_seconds: The designer's time.
    """

    world: World
    logger: str
    seed: int
    result: Any
    bank: Any
    new_bank: Any
    proposal: Any
    data: BanditData
    reference: np.ndarray
    design_seconds: float
    ope_seq: np.random.SeedSequence


def prepare_trial(world: World, logger: str, seed: int, *, n_users: int, designer_params: dict[str, Any]) -> Trial:
    """Log one campaign of the world's initial bank with ``logger`` and let the designer propose the next bank."""
    agent_seq, click_seq, user_seq, designer_seq, ope_seq = np.random.SeedSequence([seed, 17]).spawn(5)
    name, params = LOGGERS[logger]
    users = world.sample_users(n_users, rng=np.random.default_rng(user_seq))
    agent = ProbabilityRecorder(
        make_agent(name, world, rng=np.random.default_rng(agent_seq), **params), campaign_users=users.features
    )
    bank = world.initial_bank
    agent.set_bank(bank)
    result = run_campaign(
        world.ground_truth,
        bank,
        agent,
        users,
        rng=np.random.default_rng(click_seq),
        batch_size=SIMULATE_DEFAULTS.campaign.campaign_batch_size,
    )
    log = result.log
    designer = make_designer(
        "generative", world, copywriter=OfflineCopywriter(), rng=np.random.default_rng(designer_seq), **designer_params
    )
    start = time.perf_counter()
    proposal = designer.propose([log], bank, rng=np.random.default_rng(designer_seq.spawn(1)[0]))
    design_seconds = time.perf_counter() - start
    new_bank = world.new_catalog().bank(proposal.texts, world.embedder, origin="proposal", iteration=2)
    data = BanditData(
        users=log.users,
        actions=log.columns["action_index"],
        propensities=log.propensities,
        clicks=log.clicks.astype(np.float64),
        embeddings=bank.embeddings,
        action_ids=bank.ids,
        logging_probs=agent.logging_probs,
        mean_logging_probs=agent.mean_logging_probs,
    )
    parts = [bank.embeddings, new_bank.embeddings]
    if proposal.candidates is not None:
        parts.append(proposal.candidates.embeddings)
    reference = np.concatenate([np.asarray(e, dtype=np.float32) for e in parts])
    return Trial(world, logger, seed, result, bank, new_bank, proposal, data, reference, design_seconds, ope_seq)


def run_trial(
    world: World,
    logger: str,
    seed: int,
    *,
    n_users: int,
    n_folds: int,
    designer_params: dict[str, Any],
    ope_config: OPEConfig,
    cluster_grid: tuple[int, ...] = (),
    bayes_model: str = "bayesian_bilinear",
    bayes_params: dict[str, Any] | None = None,
    dm_model: tuple[str, dict[str, Any]] | None = None,  # (registry name, parameters); None: the designer's
    dm_settings: str = "designer",
) -> dict[str, Any]:
    """One logged campaign, one proposal, every estimate and the truth."""
    trial = prepare_trial(world, logger, seed, n_users=n_users, designer_params=designer_params)
    bank, new_bank, data, result, model = (
        trial.bank,
        trial.new_bank,
        trial.data,
        trial.result,
        trial.proposal.reward_model,
    )
    log, design_seconds, ope_seq = result.log, trial.design_seconds, trial.ope_seq
    # The direct method's model and the target policy's: the designer's reward model at its settings (the
    # default one unless --dm-model says otherwise), given the same unlabelled texts as the designer had.
    dm_name, dm_params = dm_model or (designer_params["reward_model"], dict(designer_params["reward_model_params"]))
    reference = trial.reference if dm_name != "lightgbm" else np.concatenate([bank.embeddings, new_bank.embeddings])
    # As simulate does: the hyperparameters the designer's model chose on this log, fixed in the cross-fit
    # ("designer"), or chosen again by the cross-fit's own tuning on the whole log ("own", before session 9).
    use_designer = dm_settings == "designer" and dm_name == designer_params["reward_model"]
    settings = chosen_settings(model, SIMULATE_DEFAULTS) if use_designer else None
    dm_params = {**dm_params, **(settings or {})}

    def factory(rng: np.random.Generator) -> Any:
        return make_reward_model(dm_name, rng=rng, reference_embeddings=reference, **dm_params)

    fit_seq, ope_seq = ope_seq.spawn(2)
    cross = crossfit_greedy_policy(
        factory, data, new_bank.embeddings, new_bank.ids, n_folds=n_folds, rng=np.random.default_rng(fit_seq)
    )
    policy, q_target, q_logged = cross.policy, cross.q_hat_target, cross.q_hat_logged
    # The designer's own claim: its model (fitted on every row) on its own greedy policy, in-sample.
    insample, insample_q = greedy_policy(model, data.users, new_bank.embeddings, new_bank.ids)
    estimates: dict[str, Any] = {}
    variants = {
        "balanced": data,
        "decision": data.without("mean_logging_probs"),
        "logged": data.without("mean_logging_probs", "logging_probs"),
    }
    for variant, variant_data in variants.items():
        for k, v in estimate_all(
            variant_data,
            policy,
            q_hat_target=q_target,
            q_hat_logged=q_logged,
            config=ope_config,
            rng=np.random.default_rng(ope_seq),
        ).items():
            if variant == "logged":
                estimates[k] = v  # what `actionbank ope` computes from a run folder
            elif k in ("mips", "snmips", "mdr") or (variant == "balanced" and k in ("ips", "snips", "dr")):
                estimates[f"{k}[{variant}]"] = v
    # The Bayesian bilinear reward model, fitted on every logged row with the designer's unlabelled texts
    # (its pool and both banks) as reference: its posterior, not cross-fitting, carries its error.
    bayes_seq = np.random.SeedSequence([seed, 17, 2])
    fit_rng, draw_rng = (np.random.default_rng(s) for s in bayes_seq.spawn(2))
    start = time.perf_counter()
    bayes = make_reward_model(bayes_model, rng=fit_rng, reference_embeddings=trial.reference, **(bayes_params or {}))
    bayes.fit(data.users, np.asarray(data.embeddings, np.float32)[data.actions], data.clicks)
    estimates.update(estimate_with_posterior(bayes, variants["logged"], policy, config=ope_config, rng=draw_rng))
    bayes_seconds = time.perf_counter() - start
    truth = policy_value(world.ground_truth, data.users, new_bank.embeddings, policy.probs)
    # The clicks' own noise: the logged clicks against their exact expectations (the floor of any estimator
    # that reads them: sd of the mean click given the users and served actions).
    served_truth = np.asarray(world.ground_truth.click_prob(data.users, bank.embeddings))[
        np.arange(data.n_rounds), data.actions
    ]
    designer_truth = policy_value(world.ground_truth, data.users, new_bank.embeddings, insample.probs)
    new_ids = set(new_bank.ids) - set(bank.ids)
    served_new = float(policy.probs[:, [j for j, a in enumerate(new_bank.ids) if a in new_ids]].sum(axis=1).mean())
    row: dict[str, Any] = {
        "world_seed": world.config.world_seed,
        "logger": logger,
        "truth": truth,
        "designer_claim": float(np.einsum("ij,ij->i", insample.probs, insample_q).mean()),
        "designer_policy_truth": designer_truth,
        "deployed_value": result.deployed_value,
        "logged_ctr": log.ctr,
        "share_of_users_on_new_texts": served_new,
        "design_seconds": design_seconds,
        "bayes_seconds": bayes_seconds,
        "click_noise_sd": float(np.sqrt(np.sum(served_truth * (1.0 - served_truth))) / data.n_rounds),
        "click_noise": float(data.clicks.mean() - served_truth.mean()),
        "dm_settings": settings,
        "estimates": {k: v.to_dict() for k, v in estimates.items()},
    }
    for n_clusters in cluster_grid:
        grid = estimate_all(
            variants["logged"],
            policy,
            q_hat_target=q_target,
            q_hat_logged=q_logged,
            estimators=("mips", "snmips", "mdr"),
            config=replace(ope_config, n_clusters=n_clusters),
            rng=np.random.default_rng(ope_seq),
        )
        for k, v in grid.items():
            row["estimates"][f"{k}_c{n_clusters}"] = v.to_dict()
    return row


def _seed_rows(job: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Every logger's trial on one world seed (one process; BLAS and torch limited to one thread)."""
    from actionbank_env.experiment import thread_limits

    (
        seed,
        loggers,
        embedder,
        n_users,
        n_folds,
        designer_params,
        ope_config,
        grid,
        dm_model,
        bayes_params,
        dm_settings,
    ) = job
    out = []
    with thread_limits(1):
        world = World.build(WorldConfig(world_seed=seed, embedder=embedder))
        for logger in loggers:
            start = time.perf_counter()
            r = run_trial(
                world,
                logger,
                seed,
                n_users=n_users,
                n_folds=n_folds,
                designer_params=designer_params,
                ope_config=ope_config,
                cluster_grid=grid,
                dm_model=dm_model,
                bayes_params=bayes_params,
                dm_settings=dm_settings,
            )
            out.append(r)
            print(
                f"seed {seed} {logger:>22}: truth {r['truth']:.4f}  "
                + "  ".join(
                    f"{k} {v['value'] - r['truth']:+.4f}"
                    for k, v in r["estimates"].items()
                    if "[" not in k and not re.search(r"_c\d+$", k)
                )
                + f"  ({time.perf_counter() - start:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per logger and estimator: bias, RMSE, coverage and mean interval width over the trials, and the RMSE's
    ratio to the direct method's (with a 95 % percentile bootstrap over trials, resampled in pairs)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for logger in dict.fromkeys(r["logger"] for r in rows):
        sub = [r for r in rows if r["logger"] == logger]
        names = list(sub[0]["estimates"])
        table: dict[str, dict[str, float]] = {}
        truth = np.array([r["truth"] for r in sub])
        dm_sq = np.square(np.array([r["estimates"]["dm"]["value"] for r in sub]) - truth)
        # Trials resampled together for every estimator (paired by world seed): the RMSE ratio's interval.
        boot = np.random.default_rng(0).integers(0, len(sub), size=(10_000, len(sub)))
        for name in names:
            est = np.array([r["estimates"][name]["value"] for r in sub])
            low = np.array([r["estimates"][name]["ci_low"] for r in sub])
            high = np.array([r["estimates"][name]["ci_high"] for r in sub])
            err = est - truth
            ratio_draws = np.sqrt(np.mean(err[boot] ** 2, axis=1) / np.maximum(np.mean(dm_sq[boot], axis=1), 1e-300))
            table[name] = {
                "bias": float(np.mean(err)),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "coverage": float(np.mean((low <= truth) & (truth <= high))),
                "mean_width": float(np.mean(high - low)),
                "n_trials": len(sub),
                "rmse_ratio_to_dm": float(np.sqrt(np.mean(err**2) / max(float(np.mean(dm_sq)), 1e-300))),
                "rmse_ratio_to_dm_ci95": [float(q) for q in np.quantile(ratio_draws, [0.025, 0.975])],
            }
        claim = np.array([r["designer_claim"] - r["designer_policy_truth"] for r in sub])
        table["designer_claim"] = {  # the designer's in-sample DM of its own greedy policy (no interval)
            "bias": float(np.mean(claim)),
            "rmse": float(np.sqrt(np.mean(claim**2))),
            "coverage": float("nan"),
            "mean_width": float("nan"),
            "n_trials": len(sub),
        }
        table["_truth"] = {"mean": float(np.mean([r["truth"] for r in sub]))}
        if all("click_noise_sd" in r for r in sub):
            noise = np.array([r["click_noise"] for r in sub])
            table["_floor"] = {  # the clicks' noise: expected (RMS of its sd) and realised (RMS of ȳ - E[ȳ])
                "expected_rmse": float(np.sqrt(np.mean([r["click_noise_sd"] ** 2 for r in sub]))),
                "realised_rmse": float(np.sqrt(np.mean(noise**2))),
            }
        out[logger] = table
    return out


#: Rows of the README table: what ``actionbank ope`` computes from a run folder, then MIPS with the logger's
#: recorded (campaign-averaged) distribution, then the designer's own in-sample claim.
README_ROWS = ("dm", "ips", "snips", "dr", "switch_dr", "dr_os", "mips", "snmips", "mdr", "mips[balanced]",
               "snmips[balanced]", "bayes_dm", "bayes_cdm", "bayes_dr", "bayes_switch_dr", "bayes_dr_os", "bayes_mdr",
               "designer_claim")  # fmt: skip


def markdown(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """The README table: one row per estimator, one column per logger, cells ``bias / RMSE / coverage``."""
    loggers = list(summary)
    lines = ["| estimator | " + " | ".join(loggers) + " |", "|---|" + "---|" * len(loggers)]
    for name in README_ROWS:
        cells = []
        for logger in loggers:
            s = summary[logger].get(name)
            if s is None:
                cells.append("-")
                continue
            coverage = "-" if np.isnan(s["coverage"]) else f"{s['coverage']:.0%}"
            cells.append(f"{s['bias']:+.3f} / {s['rmse']:.3f} / {coverage}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("| mean truth | " + " | ".join(f"{summary[g]['_truth']['mean']:.3f}" for g in loggers) + " |")
    if all("_floor" in summary[g] for g in loggers):
        cells = [
            f"{summary[g]['_floor']['expected_rmse']:.4f} ({summary[g]['_floor']['realised_rmse']:.4f})"
            for g in loggers
        ]
        lines.append("| click-noise floor: RMSE expected (realised) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def must_show(summary: dict[str, dict[str, dict[str, Any]]], *, min_coverage: float = 0.85) -> str:
    """Per logger, the lowest-RMSE estimator whose intervals covered the truth in >= ``min_coverage`` of the
    trials, with its RMSE ratio to the direct method's (issue 17's Must show: <= 0.5 and >= 85 %)."""
    lines = []
    for logger, table in summary.items():
        ok = {k: v for k, v in table.items() if "rmse_ratio_to_dm" in v and v["coverage"] >= min_coverage}
        if not ok:
            lines.append(f"{logger}: no estimator covered the truth in >= {min_coverage:.0%} of the trials")
            continue
        name = min(ok, key=lambda k: ok[k]["rmse"])
        s = ok[name]
        low, high = s["rmse_ratio_to_dm_ci95"]
        floor = table.get("_floor", {}).get("expected_rmse", float("nan"))
        lines.append(
            f"{logger}: best {name}: RMSE {s['rmse']:.4f} = {s['rmse_ratio_to_dm']:.2f}x dm's {table['dm']['rmse']:.4f} "
            f"(95 % CI {low:.2f}-{high:.2f}), coverage {s['coverage']:.0%}; click-noise floor {floor:.4f} "
            f"= {floor / table['dm']['rmse']:.2f}x dm's"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1000-1009", help="world seeds, e.g. 0-9 or 1,4,7")
    parser.add_argument("--loggers", default=",".join(LOGGERS), help=f"comma list of {list(LOGGERS)}")
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hashing"))
    parser.add_argument(
        "--users",
        type=int,
        default=SIMULATE_DEFAULTS.campaign.users_per_iteration,
        help="logged users (simulate's default)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=SIMULATE_DEFAULTS.designer.kwargs()["action_pool_size"],
        help="designer's candidates",
    )
    parser.add_argument("--jobs", type=int, default=1, help="world seeds run in parallel processes")
    parser.add_argument("--out", default=None, help="write rows and summary as JSON here")
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds of the target policy's model")
    parser.add_argument(
        "--dm-model",
        default=SIMULATE_DEFAULTS.designer.kwargs()["reward_model"],
        choices=("bayesian_bilinear", "lightgbm", "linear"),
        help="reward model of the direct method and the target policy (default: the designer's default model)",
    )
    parser.add_argument(
        "--dm-settings",
        default="designer",
        choices=("designer", "own"),
        help="hyperparameters of the cross-fitted model: those the designer's model chose on the log (what simulate "
        "does) or chosen again by the cross-fit's tuning on the whole log",
    )
    parser.add_argument(
        "--bayes-prior-selection",
        default=None,
        choices=("grouped_cv", "evidence", "fixed"),
        help="prior_selection of the posterior estimators' Bayesian model (default: actionbank ope's, evidence)",
    )
    parser.add_argument("--cluster-grid", default="", help="extra MIPS rows for these cluster counts (development)")
    parser.add_argument("--n-clusters", type=int, default=OPEConfig().n_clusters)
    parser.add_argument("--table-from", default=None, help="print the table of an earlier --out JSON and exit")
    args = parser.parse_args(argv)
    if args.table_from:
        stored = json.loads(Path(args.table_from).read_text())["summary"]
        print(markdown(stored))
        print(must_show(stored))
        return 0
    loggers = [s for s in args.loggers.split(",") if s]
    unknown = [s for s in loggers if s not in LOGGERS]
    if unknown:
        parser.error(f"--loggers must be among {list(LOGGERS)}, got {unknown}")
    ope_config = OPEConfig(n_clusters=args.n_clusters)
    grid = tuple(int(c) for c in args.cluster_grid.split(",") if c)
    designer_params = {**SIMULATE_DEFAULTS.designer.kwargs(), "action_pool_size": args.pool}
    bayes = dict(POSTERIOR_MODEL_PARAMS)
    if args.bayes_prior_selection:
        bayes["prior_selection"] = args.bayes_prior_selection
    if args.dm_model == designer_params["reward_model"]:
        dm_model = (args.dm_model, dict(designer_params["reward_model_params"]))
    else:
        dm_model = (args.dm_model, {})
    jobs = [
        (
            seed,
            loggers,
            args.embedder,
            args.users,
            args.folds,
            designer_params,
            ope_config,
            grid,
            dm_model,
            bayes,
            args.dm_settings,
        )
        for seed in parse_seeds(args.seeds)
    ]
    rows: list[dict[str, Any]] = []
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for seed_rows in pool.map(_seed_rows, jobs):
                rows.extend(seed_rows)
    else:
        for job in jobs:
            rows.extend(_seed_rows(job))
    summary = summarise(rows)
    print(markdown(summary))
    print(must_show(summary))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        payload = {"argv": sys.argv, "ope_config": asdict(ope_config), "summary": summary, "rows": rows}
        Path(args.out).write_text(json.dumps(payload, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
