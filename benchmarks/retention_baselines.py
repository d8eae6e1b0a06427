"""Lifetime clicks and unsubscribes of the Retention-v0 baselines on unseen world seeds, PPO against oracle-myopic.

For each world seed (default 7301-7305, used by no test) on the default world (MiniLM embedder, 30 messages,
default :class:`~actionbank_env.core.retention.RetentionDynamics`) and 26-week lifetimes:

- oracle-myopic (the best message of the week by ground truth, every week), oracle-resting (the same, but only
  when it is worth at least 0.4 of what it is to a rested subscriber), fixed cadences (the same message
  every 2 and every 3 weeks), LinUCB and bootstrapped DQN through the targeting protocol (one decision per
  week, learning from clicks; one cohort of ``--subscribers`` to learn from, then the measured cohort, still
  learning) and SB3 PPO (trained on ``--ppo-timesteps`` subscriber-weeks of its own training stream);
- every policy meets the same measured cohort (``--subscribers`` subscribers drawn with the cohort seed).

Printed: each policy's mean +- 95 % t-interval over the world seeds of clicks per subscriber, unsubscribe rate
(per subscriber and per email) and emails per subscriber, and the paired differences PPO - oracle-myopic,
PPO - LinUCB and oracle-resting - oracle-myopic (the headroom a far-sighted sender with perfect targeting has).

Run from the repository root (about 6 minutes per seed on two shared cores, most of it PPO):
``nice -n 10 python -m benchmarks.retention_baselines [--ppo-config NAME] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from scipy import stats

from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.retention import RetentionVectorEnv
from agents.retention import (
    FixedCadencePolicy,
    OracleMyopicPolicy,
    OracleRestingPolicy,
    SB3RetentionPolicy,
    TargetingAgentPolicy,
    run_lifetimes,
    train_sb3,
)
from benchmarks.retention_ppo_tuning import (
    CONFIGS,
    DEFAULT_BANK_OBS_DIM,
    LOG_SUBSCRIBERS,
    add_policy_arguments,
    fit_click_model,
)

WORLD_SEEDS = (7301, 7302, 7303, 7304, 7305)
METRICS = ("clicks_per_subscriber", "unsubscribe_rate", "unsubscribes_per_email", "emails_per_subscriber")


def _is_policy(value: Any) -> bool:
    """Whether a per-seed record's entry is a policy's lifetime summary (not, e.g., the click model's summary)."""
    return isinstance(value, dict) and "clicks_per_subscriber" in value


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return float(arr.mean()), float("nan")
    return float(arr.mean()), float(stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))


def print_paired(per_seed: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> None:
    """Print policy a minus policy b, paired by world: mean ± 95 % t-interval, ratio of means, per seed."""
    for a, b in pairs:
        for metric in ("clicks_per_subscriber", "unsubscribe_rate"):
            diffs = [r[a][metric] - r[b][metric] for r in per_seed]
            mean, half = interval(diffs)
            ratio = np.mean([r[a][metric] for r in per_seed]) / np.mean([r[b][metric] for r in per_seed])
            print(
                f"{a} - {b}, {metric}: {mean:+.4f} +- {half:.4f} (95 % CI [{mean - half:+.4f}, "
                f"{mean + half:+.4f}]; ratio of means {ratio:.3f}; per seed {np.round(diffs, 4).tolist()})"
            )


def measure_world(
    world_seed: int,
    *,
    subscribers: int,
    ppo_timesteps: int,
    cohort_seed: int,
    dqn: bool = True,
    linucb: bool = True,
    ppo_config: str = "defaults",
    oracle_features: bool = False,
    policy: str = "mlp",
    bank_obs_dim: int = DEFAULT_BANK_OBS_DIM,
    estimated_features: bool = False,
    log_subscribers: int = LOG_SUBSCRIBERS,
) -> dict[str, Any]:
    """Every policy's lifetime summary on one world (same measured cohort for all).

    ``oracle_features`` trains and evaluates PPO on the privileged observation (``RetentionConfig.oracle_features``)
    and records it as ``ppo_oracle_features``; the oracles and learners meet the same cohort either way (the
    observation draws nothing). ``policy="slots"`` trains :class:`~agents.slot_policy.SlotScoringPolicy` (shared
    weights over the message slots, on the ``Dict`` observation) and records it as ``ppo_slots`` (or
    ``ppo_slots_oracle_features``); ``bank_obs_dim`` is the features per message of its bank observation.
    ``estimated_features`` (with ``policy="slots"``) fits a click model on a logging cohort of ``log_subscribers``
    (:func:`benchmarks.retention_ppo_tuning.fit_click_model`: its own seeds, apart from the measured cohort and the
    training stream) and trains and evaluates PPO on its estimates (``ppo_slots_estimated_features``; deployable).
    """
    from agents.bootstrapped_dqn import BootstrappedDQNAgent
    from agents.linucb import LinUCBAgent

    world = World.build(WorldConfig(world_seed=world_seed))
    envs = RetentionVectorEnv(subscribers, world=world)
    agent_rng, dqn_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(world_seed).spawn(2))
    out: dict[str, Any] = {"world_seed": world_seed}
    out["oracle_myopic"] = run_lifetimes(envs, OracleMyopicPolicy(), seed=cohort_seed).summary()
    for every in (2, 3):
        out[f"cadence_{every}"] = run_lifetimes(envs, FixedCadencePolicy(every), seed=cohort_seed).summary()
    out["oracle_resting_0.4"] = run_lifetimes(envs, OracleRestingPolicy(0.4), seed=cohort_seed).summary()
    learners: list[tuple[str, Any, np.random.Generator]] = []
    if linucb:
        learners.append(("linucb", lambda c, r: LinUCBAgent(c, rng=r), agent_rng))
    if dqn:  # scores every (subscriber, message) pair with 10 heads: minutes per world on one core
        learners.append(("bootstrapped_dqn", lambda c, r: BootstrappedDQNAgent(c, rng=r), dqn_rng))
    for name, make, rng in learners:
        policy = TargetingAgentPolicy(envs, make, rng=rng)
        run_lifetimes(envs, policy, seed=cohort_seed + 1)  # the cohort it learns from first
        out[name] = run_lifetimes(envs, policy, seed=cohort_seed).summary()
    if ppo_timesteps:
        start = time.perf_counter()
        click_model = None
        if estimated_features:
            if policy != "slots" or oracle_features:
                raise ValueError("--estimated-features needs --policy slots and no --oracle-features.")
            click_model, out["click_model"] = fit_click_model(
                world, world_seed, log_subscribers=log_subscribers, bank_obs_dim=bank_obs_dim
            )
        algo_kwargs, normalize_reward = CONFIGS[ppo_config]
        cpu_start = time.process_time()
        model = train_sb3(
            {"world": world, "oracle_features": oracle_features, "bank_obs_dim": bank_obs_dim},
            total_timesteps=ppo_timesteps,
            seed=world_seed,
            algo_kwargs=algo_kwargs,
            normalize_reward=normalize_reward,
            policy=policy,
            click_model=click_model,
        )
        out["ppo_train_s"] = time.perf_counter() - start
        out["ppo_train_cpu_s"] = time.process_time() - cpu_start
        slots = policy == "slots"
        ppo_envs = (
            RetentionVectorEnv(
                subscribers, world=world, oracle_features=oracle_features, observe_bank=slots, bank_obs_dim=bank_obs_dim
            )
            if oracle_features or slots
            else envs
        )
        if click_model is not None:
            from agents.retention_estimates import EstimatedFeaturesVector

            ppo_envs = EstimatedFeaturesVector(ppo_envs, click_model)
        name = "ppo" + ("_slots" if slots else "") + ("_oracle_features" if oracle_features else "")
        name += "_estimated_features" if estimated_features else ""
        out[name] = run_lifetimes(ppo_envs, SB3RetentionPolicy(model), seed=cohort_seed).summary()
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(WORLD_SEEDS))
    parser.add_argument("--subscribers", type=int, default=10_000, help="subscribers per cohort")
    parser.add_argument("--ppo-timesteps", type=int, default=3_000_000, help="0 skips PPO")
    parser.add_argument(
        "--ppo-config",
        choices=sorted(CONFIGS),
        default="defaults",
        help="PPO settings (benchmarks.retention_ppo_tuning.CONFIGS; chosen there on development worlds 7201-7203)",
    )
    parser.add_argument("--cohort-seed", type=int, default=1)
    parser.add_argument("--skip-dqn", action="store_true", help="leave out bootstrapped DQN (the slowest baseline)")
    parser.add_argument("--skip-linucb", action="store_true", help="leave out LinUCB")
    parser.add_argument(
        "--oracle-features",
        action="store_true",
        help="train and evaluate PPO with the privileged true click probabilities (RetentionConfig.oracle_features), "
        "reported as ppo_oracle_features",
    )
    add_policy_arguments(parser)  # reported as ppo, ppo_slots or ppo_slots_estimated_features
    parser.add_argument("--json", default=None, help="also write the per-seed results here")
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        help="print the table of earlier --json files (seeds run apart, or other policies on the same seeds and cohorts)",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        # Files of different seeds add worlds; files of the same seeds (e.g. two PPO policies on the same cohorts)
        # add policies to those worlds, so that they are compared paired by world.
        by_world: dict[int, dict[str, Any]] = {}
        for path in args.from_json:
            with open(path) as f:
                data = json.load(f)
            for record in data["per_seed"]:
                by_world.setdefault(record["world_seed"], {}).update(record)
            args.subscribers, args.ppo_timesteps = data["args"]["subscribers"], data["args"]["ppo_timesteps"]
        per_seed = [by_world[seed] for seed in sorted(by_world)]
        args.seeds = sorted(by_world)
        report(per_seed, args)
        return 0
    import torch

    torch.set_num_threads(1)  # a shared machine; the env and PPO's small MLP gain little from more
    per_seed = []
    for seed in args.seeds:
        start = time.perf_counter()
        per_seed.append(
            measure_world(
                seed,
                subscribers=args.subscribers,
                ppo_timesteps=args.ppo_timesteps,
                cohort_seed=args.cohort_seed,
                dqn=not args.skip_dqn,
                linucb=not args.skip_linucb,
                ppo_config=args.ppo_config,
                oracle_features=args.oracle_features,
                policy=args.policy,
                bank_obs_dim=args.bank_obs_dim,
                estimated_features=args.estimated_features,
                log_subscribers=args.log_subscribers,
            )
        )
        print(f"world {seed} done in {time.perf_counter() - start:.0f} s: "
              + json.dumps({k: v["clicks_per_subscriber"] for k, v in per_seed[-1].items() if _is_policy(v)}),
              flush=True)  # fmt: skip
        if args.json:  # after every seed, so a long run keeps what it measured
            with open(args.json, "w") as f:
                algo_kwargs, normalize_reward = CONFIGS[args.ppo_config]
                ppo = {**algo_kwargs, "normalize_reward": normalize_reward}
                json.dump({"args": vars(args), "ppo_kwargs": ppo, "per_seed": per_seed}, f, indent=2)
    report(per_seed, args)
    return 0


def report(per_seed: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the table and the paired differences."""
    # Policies every seed measured (files run apart may differ, e.g. one run with --skip-dqn).
    policies = [k for k, v in per_seed[0].items() if _is_policy(v) and all(k in r for r in per_seed)]
    print(f"\n{len(args.seeds)} world seeds {args.seeds}, {args.subscribers} subscribers per cohort, 26-week lifetimes, "
          f"PPO {args.ppo_timesteps:,} timesteps; mean +- 95 % t-interval over world seeds")  # fmt: skip
    print(f"{'policy':<22}" + "".join(f"{m:>28}" for m in METRICS))
    for name in policies:
        cells = []
        for metric in METRICS:
            mean, half = interval([r[name][metric] for r in per_seed])
            cells.append(f"{mean:.4f} +- {half:.4f}")
        print(f"{name:<22}" + "".join(f"{c:>28}" for c in cells))
    pairs = [
        ("ppo_slots_estimated_features", "oracle_myopic"),
        ("ppo_slots_estimated_features", "oracle_resting_0.4"),
        ("ppo_slots_estimated_features", "ppo_slots_oracle_features"),
        ("ppo_slots_estimated_features", "linucb"),
        ("ppo_slots", "oracle_myopic"),
        ("ppo_slots", "linucb"),
        ("ppo_slots_oracle_features", "oracle_myopic"),
        ("ppo_slots_oracle_features", "oracle_resting_0.4"),
        ("ppo_slots", "ppo"),
        ("ppo_slots_oracle_features", "ppo_oracle_features"),
        ("ppo", "oracle_myopic"),
        ("ppo", "linucb"),
        ("ppo_oracle_features", "oracle_myopic"),
        ("ppo_oracle_features", "oracle_resting_0.4"),
        ("oracle_resting_0.4", "oracle_myopic"),
    ]
    print_paired(per_seed, [(a, b) for a, b in pairs if a in policies and b in policies])


if __name__ == "__main__":
    raise SystemExit(main())
