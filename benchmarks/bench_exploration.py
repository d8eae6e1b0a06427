"""What LinUCB's exploration costs the company and what it buys the analyst, paired by world seed.

For each world seed, LinUCB (the simulation's agent settings and campaign batch) serves the initial bank to ``--users`` users
once per exploration setting, with the same users and the same click uniforms. Reported per setting: the
deployed value (mean true click probability of what was served, the company's expected earnings), its paired
difference to the non-exploring agent (mean and 95 % t-interval over seeds, and the ratio of means), and what
the log offers off-policy evaluation: the share of rows whose propensity is 1, the smallest propensity, and the
smallest probability any action had for any user (``min_action_prob``: 0 means some actions could never
have been logged for some users).

    python -m benchmarks.bench_exploration --embedder minilm --seeds 1000-1009
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from actionbank_env.core.campaign import run_campaign
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.ope.policies import ProbabilityRecorder
from actionbank_env.registry import make_agent
from benchmarks.bench_ope import SIMULATE_DEFAULTS, parse_seeds

SETTINGS: dict[str, dict[str, Any]] = {
    "none": {"exploration": "none"},
    "epsilon_0.05": {"exploration": "epsilon", "epsilon": 0.05},
    "epsilon_0.1": {"exploration": "epsilon", "epsilon": 0.1},
    "epsilon_0.2": {"exploration": "epsilon", "epsilon": 0.2},
    "epsilon_0.3": {"exploration": "epsilon", "epsilon": 0.3},
    "uniform": {"exploration": "epsilon", "epsilon": 1.0},
    "softmax_0.01": {"exploration": "softmax", "temperature": 0.01},
    "softmax_0.02": {"exploration": "softmax", "temperature": 0.02},
    "softmax_0.05": {"exploration": "softmax", "temperature": 0.05},
    "softmax_0.1": {"exploration": "softmax", "temperature": 0.1},
    "default": {},
}


def t_interval(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t-interval."""
    from scipy.stats import t

    m = float(np.mean(x))
    half = float(t.ppf(0.975, df=x.size - 1) * np.std(x, ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("inf")
    return m, m - half, m + half


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1000-1009")
    parser.add_argument("--embedder", default="minilm", choices=("minilm", "hashing"))
    parser.add_argument("--users", type=int, default=SIMULATE_DEFAULTS.campaign.users_per_iteration)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    args = parser.parse_args(argv)
    settings = args.settings.split(",")
    values: dict[str, list[float]] = {s: [] for s in settings}
    ones: dict[str, list[float]] = {s: [] for s in settings}
    min_prop: dict[str, list[float]] = {s: [] for s in settings}
    min_any: dict[str, list[float]] = {s: [] for s in settings}
    for seed in parse_seeds(args.seeds):
        world = World.build(WorldConfig(world_seed=seed, embedder=args.embedder))
        users = world.sample_users(args.users, rng=np.random.default_rng([seed, 1]))
        for setting in settings:
            agent = ProbabilityRecorder(
                make_agent(
                    "linucb",
                    world,
                    rng=np.random.default_rng([seed, 2]),
                    **{**SIMULATE_DEFAULTS.agent.kwargs(), **SETTINGS[setting]},
                )
            )
            agent.set_bank(world.initial_bank)
            result = run_campaign(
                world.ground_truth,
                world.initial_bank,
                agent,
                users,
                rng=np.random.default_rng([seed, 3]),
                batch_size=SIMULATE_DEFAULTS.campaign.campaign_batch_size,
            )
            props = result.log.propensities
            values[setting].append(result.deployed_value)
            ones[setting].append(float(np.mean(props >= 1.0 - 1e-12)))
            min_prop[setting].append(float(props.min()))
            min_any[setting].append(float(agent.logging_probs.min()))
        print(f"seed {seed}: " + "  ".join(f"{s} {values[s][-1]:.4f}" for s in settings), file=sys.stderr, flush=True)
    base = np.array(values["none"]) if "none" in values else None
    print(
        "| exploration | deployed value (mean) | paired diff to none, 95 % CI | ratio of means | share p=1 |"
        " min propensity | min action prob |"
    )
    print("|---|---|---|---|---|---|---|")
    for setting in settings:
        v = np.array(values[setting])
        if base is not None:
            m, lo, hi = t_interval(v - base)
            diff = f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]"
            ratio = f"{v.mean() / base.mean():.3f}"
        else:
            diff, ratio = "n/a", "n/a"
        print(
            f"| {setting} | {v.mean():.4f} | {diff} | {ratio} | {np.mean(ones[setting]):.1%} | "
            f"{np.min(min_prop[setting]):.2g} | {np.min(min_any[setting]):.2g} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
