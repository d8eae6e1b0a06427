"""Choose PPO's settings for Retention-v0 on development worlds (7201-7203), never on the measurement worlds.

One run trains one named configuration of :data:`CONFIGS` on one world and evaluates the policy every
``--eval-every`` subscriber-weeks on a fixed cohort (``--subscribers`` subscribers, cohort seed 1), paired with
oracle-myopic and oracle-resting on the same cohort, so the learning curve shows whether more training would
still pay. Runs are independent processes (so two can share the machine's cores); ``--from-json`` prints the
table of their JSON files: for each configuration and checkpoint, PPO minus oracle-myopic in clicks per
subscriber per world and the mean.

Run from the repository root, e.g. ``nice -n 15 python -m benchmarks.retention_ppo_tuning --config lambda08_normrew
--world-seed 7201 --json out.json`` and ``python -m benchmarks.retention_ppo_tuning --from-json out*.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs.retention import RetentionConfig, RetentionVectorEnv
from agents.retention import (
    PPO_DEFAULTS,
    SB3_POLICIES,
    OracleMyopicPolicy,
    OracleRestingPolicy,
    SB3RetentionPolicy,
    run_lifetimes,
    train_sb3,
)

#: The env's own bank observation width (``RetentionConfig.bank_obs_dim``): run names mark any other.
DEFAULT_BANK_OBS_DIM = RetentionConfig().bank_obs_dim

DEV_WORLD_SEEDS = (7201, 7202, 7203)

#: Subscribers of the logging cohort whose random-exploration log fits the click model of ``--estimated-features``.
LOG_SUBSCRIBERS = 300_000


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """The PPO policy flags both retention benchmarks take: ``--policy``, ``--bank-obs-dim``,
    ``--estimated-features`` and ``--log-subscribers``."""
    parser.add_argument(
        "--policy",
        choices=SB3_POLICIES,
        default="mlp",
        help="PPO's policy: mlp (SB3's MlpPolicy on the flat observation) or slots (SlotScoringPolicy, shared "
        "weights over the message slots)",
    )
    parser.add_argument(
        "--bank-obs-dim",
        type=int,
        default=DEFAULT_BANK_OBS_DIM,
        help="features per message of the bank observation (RetentionConfig.bank_obs_dim; read by --policy slots)",
    )
    parser.add_argument(
        "--estimated-features",
        action="store_true",
        help="with --policy slots: train and evaluate PPO on a click model's estimates (fitted on a logging cohort "
        "under random exploration, seeded apart from the measured cohort) in place of the oracle features; "
        "deployable",
    )
    parser.add_argument("--log-subscribers", type=int, default=LOG_SUBSCRIBERS, help="logging cohort's subscribers")


def fit_click_model(
    world: World, world_seed: int, *, log_subscribers: int = LOG_SUBSCRIBERS, bank_obs_dim: int = DEFAULT_BANK_OBS_DIM
) -> tuple[Any, dict[str, Any]]:
    """Log a cohort of ``log_subscribers`` under random exploration, fit the click model, measure its targeting.

    The logging cohort, the exploration, the fit and the held-out cohort each get a stream spawned from
    ``SeedSequence(world_seed)`` (children 2-5; ``retention_baselines`` uses children 0-1 for LinUCB and DQN), so
    none of them is an evaluation cohort (seed ``--cohort-seed``, default 1) or the PPO training stream.

    Returns:
        The fitted :class:`~agents.retention_estimates.RetentionClickModel` and a summary: rows logged, fit CPU
        seconds, and on 4,096 held-out subscribers the targeting quality
        (:func:`~agents.retention_estimates.targeting_quality`) when rested (week 0) and after 3 weeks of random mail.
    """
    import torch

    from agents.retention_estimates import RetentionClickModel, log_exploration, targeting_quality

    log_seq, explore_seq, fit_seq, held_seq = np.random.SeedSequence(world_seed).spawn(6)[2:]
    cpu_start = time.process_time()
    envs = RetentionVectorEnv(log_subscribers, world=world, observe_bank=True, bank_obs_dim=bank_obs_dim)
    log = log_exploration(envs, seed=int(log_seq.generate_state(1)[0]), rng=np.random.default_rng(explore_seq))
    del envs
    with torch.random.fork_rng(devices=[]):
        model = RetentionClickModel().fit(log, rng=np.random.default_rng(fit_seq))
    summary: dict[str, Any] = {
        "log_subscribers": log_subscribers,
        "log_rows": int(log.slots.size),
        "log_click_rate": float(log.clicks.mean()),
        "log_unsubscribes_per_email": float(log.unsubscribed.mean()),
        "fit_cpu_s": time.process_time() - cpu_start,
    }
    held = RetentionVectorEnv(4096, world=world, observe_bank=True, bank_obs_dim=bank_obs_dim)
    obs, _ = held.reset(seed=int(held_seq.generate_state(1)[0]))
    k = len(held.bank)
    summary["held_out_rested"] = targeting_quality(model, obs["subscriber"], held.current_click_probs()[:, :k])
    rng = np.random.default_rng(held_seq.spawn(1)[0])
    for _ in range(3):
        obs, *_ = held.step(np.where(rng.random(4096) < 0.4, k, rng.integers(0, k, 4096)))
    summary["held_out_week3"] = targeting_quality(model, obs["subscriber"], held.current_click_probs()[:, :k])
    return model, summary


#: Named candidates: (PPO keyword arguments, normalise rewards).
CONFIGS: dict[str, tuple[dict[str, Any], bool]] = {
    "defaults": (PPO_DEFAULTS, False),
    "normrew": (PPO_DEFAULTS, True),
    "lambda08_normrew": ({**PPO_DEFAULTS, "gae_lambda": 0.8}, True),
}


def train_and_track(
    config: str,
    world_seed: int,
    *,
    timesteps: int,
    eval_every: int,
    subscribers: int,
    seed: int,
    oracle_features: bool = False,
    policy: str = "mlp",
    bank_obs_dim: int = DEFAULT_BANK_OBS_DIM,
    estimated_features: bool = False,
    log_subscribers: int = LOG_SUBSCRIBERS,
) -> dict[str, Any]:
    """Train ``config`` on world ``world_seed`` and return the oracles' and PPO's summaries at each checkpoint.

    ``oracle_features`` trains and evaluates PPO on the privileged observation (``RetentionConfig.oracle_features``:
    the true click probabilities the oracles read); the oracles' cohort is the same either way. ``policy`` is
    :func:`~agents.retention.train_sb3`'s (``"slots"``: shared weights over the message slots, on the ``Dict``
    observation; its runs are named ``<config>+slots``, with ``+bank<d>`` when ``bank_obs_dim`` is not the env's
    default: the principal components of the bank features the slots policy scores). ``estimated_features`` (slots
    only) fits :func:`fit_click_model` on a logging cohort of ``log_subscribers`` and trains and evaluates PPO with
    its estimates in place of the oracle's (``+estimated_features``; deployable).
    """
    from stable_baselines3.common.callbacks import BaseCallback

    algo_kwargs, normalize_reward = CONFIGS[config]
    world = World.build(WorldConfig(world_seed=world_seed))
    env_kwargs: dict[str, Any] = {"world": world, "oracle_features": oracle_features, "bank_obs_dim": bank_obs_dim}
    envs = RetentionVectorEnv(subscribers, observe_bank=policy == "slots", **env_kwargs)
    click_model, click_summary = None, None
    if estimated_features:
        if policy != "slots" or oracle_features:
            raise ValueError("--estimated-features needs --policy slots and no --oracle-features.")
        click_model, click_summary = fit_click_model(
            world, world_seed, log_subscribers=log_subscribers, bank_obs_dim=bank_obs_dim
        )
        print(f"click model world {world_seed}: {json.dumps(click_summary)}", flush=True)
    ppo_envs: Any = envs
    if click_model is not None:
        from agents.retention_estimates import EstimatedFeaturesVector

        ppo_envs = EstimatedFeaturesVector(envs, click_model)
    name = (
        config
        + ("+slots" if policy == "slots" else "")
        + ("" if bank_obs_dim == DEFAULT_BANK_OBS_DIM else f"+bank{bank_obs_dim}")
    )
    name += "+oracle_features" if oracle_features else ""
    name += "+estimated_features" if estimated_features else ""
    out: dict[str, Any] = {
        "click_model": click_summary,
        "config": name,
        "oracle_features": oracle_features,
        "policy": policy,
        "world_seed": world_seed,
        "oracle_myopic": run_lifetimes(envs, OracleMyopicPolicy(), seed=1).summary(),
        "oracle_resting_0.4": run_lifetimes(envs, OracleRestingPolicy(0.4), seed=1).summary(),
        "checkpoints": [],
    }
    start = time.perf_counter()
    cpu_start = time.process_time()

    class Checkpoints(BaseCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.next_at = eval_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_at:
                self.next_at += eval_every
                summary = run_lifetimes(ppo_envs, SB3RetentionPolicy(self.model), seed=1).summary()
                summary["timesteps"] = self.num_timesteps
                summary["wall_s"] = time.perf_counter() - start
                summary["cpu_s"] = time.process_time() - cpu_start
                out["checkpoints"].append(summary)
                diff = summary["clicks_per_subscriber"] - out["oracle_myopic"]["clicks_per_subscriber"]
                print(f"{out['config']} world {world_seed} at {self.num_timesteps:,}: PPO - oracle-myopic {diff:+.4f} "
                      f"({summary['emails_per_subscriber']:.1f} emails, {summary['wall_s']:.0f} s)", flush=True)  # fmt: skip
            return True

    train_sb3(
        env_kwargs,
        total_timesteps=timesteps,
        seed=seed,
        algo_kwargs=algo_kwargs,
        normalize_reward=normalize_reward,
        callback=Checkpoints(),
        policy=policy,
        click_model=click_model,
    )
    return out


def report(runs: list[dict[str, Any]]) -> None:
    """PPO minus oracle-myopic (clicks per subscriber) per configuration, checkpoint and world."""
    by_config: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_config.setdefault(r["config"], []).append(r)
    for config, rs in sorted(by_config.items()):
        rs.sort(key=lambda r: r["world_seed"])
        print(f"\n{config}: PPO - oracle-myopic (oracle-resting - oracle-myopic) in clicks per subscriber")
        worlds = [r["world_seed"] for r in rs]
        print(f"{'timesteps':>12}" + "".join(f"{w:>18}" for w in worlds) + f"{'mean':>10}")
        headroom = [
            r["oracle_resting_0.4"]["clicks_per_subscriber"] - r["oracle_myopic"]["clicks_per_subscriber"] for r in rs
        ]
        print(f"{'(resting)':>12}" + "".join(f"{h:>+18.4f}" for h in headroom) + f"{np.mean(headroom):>+10.4f}")
        n_points = min(len(r["checkpoints"]) for r in rs)
        for i in range(n_points):
            diffs = [
                r["checkpoints"][i]["clicks_per_subscriber"] - r["oracle_myopic"]["clicks_per_subscriber"] for r in rs
            ]
            emails = [r["checkpoints"][i]["emails_per_subscriber"] for r in rs]
            cells = "".join(f"{d:>+11.4f} ({e:4.1f})" for d, e in zip(diffs, emails, strict=True))
            print(f"{rs[0]['checkpoints'][i]['timesteps']:>12,}" + cells + f"{np.mean(diffs):>+10.4f}")


def main(argv: list[str] | None = None) -> int:
    """Run one configuration on one world, or print the table of earlier runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="defaults")
    parser.add_argument("--world-seed", type=int, default=DEV_WORLD_SEEDS[0])
    parser.add_argument("--timesteps", type=int, default=2_000_000)
    parser.add_argument("--eval-every", type=int, default=500_000)
    parser.add_argument("--subscribers", type=int, default=4096, help="subscribers of the evaluation cohort")
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO's training stream and network")
    parser.add_argument(
        "--oracle-features",
        action="store_true",
        help="train and evaluate PPO with the privileged true click probabilities (RetentionConfig.oracle_features)",
    )
    add_policy_arguments(parser)
    parser.add_argument("--json", default=None)
    parser.add_argument("--from-json", nargs="+", default=None)
    args = parser.parse_args(argv)
    if args.from_json:
        runs = []
        for path in args.from_json:
            with open(path) as f:
                runs.append(json.load(f))
        report(runs)
        return 0
    import torch

    torch.set_num_threads(1)
    result = train_and_track(
        args.config,
        args.world_seed,
        timesteps=args.timesteps,
        eval_every=args.eval_every,
        subscribers=args.subscribers,
        seed=args.seed,
        oracle_features=args.oracle_features,
        policy=args.policy,
        bank_obs_dim=args.bank_obs_dim,
        estimated_features=args.estimated_features,
        log_subscribers=args.log_subscribers,
    )
    result["args"] = vars(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    report([result])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
