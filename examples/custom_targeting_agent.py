"""Plug your own targeting agent into ``BankDesign-v0`` and ``run_simulation``: Thompson sampling vs LinUCB.

An agent is any class with ``set_bank(bank)``, ``act(users (B, 8)) -> Decision`` and ``update(users, actions,
rewards) -> dict``, built as ``Agent(context, rng=rng, **params)`` (see ``actionbank_env.protocols``). Pass the
class itself to ``gym.make("ActionBank/BankDesign-v0", company_strategy=...)``, or ``"module:Class"`` to
``SimulationConfig.from_settings({"agent": ...})`` / ``actionbank simulate --agent module:Class``.

Run (about 30 s; hashing embedder for speed, ``--embedder minilm`` for the semantic default one)::

    python examples/custom_targeting_agent.py [--users 2000] [--embedder minilm] [--results_dir results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import actionbank_env  # noqa: F401  (registers the env ids)
from actionbank_env.config import SimulationConfig
from actionbank_env.core.actions import ActionBank
from actionbank_env.experiment import run_simulation
from actionbank_env.protocols import AgentContext, Decision


class ThompsonSamplingAgent:
    """Non-personalised Bernoulli Thompson sampling: a Beta(a, b) posterior per action id.

    Posteriors survive bank changes (kept per id). The propensity of the served action is its chance of winning
    a posterior draw, estimated from the batch's draws plus ``n_propensity_draws`` more.
    """

    def __init__(
        self, context: AgentContext, *, rng: np.random.Generator, prior_ctr: float = 0.05, prior_weight: float = 20.0
    ) -> None:
        self.rng = rng
        self.prior = np.array([prior_ctr * prior_weight, (1.0 - prior_ctr) * prior_weight])
        self.posteriors: dict[str, np.ndarray] = {}  # action id -> [a, b]
        self.ids: tuple[str, ...] = ()
        self.ab = np.zeros((0, 2))  # (K, 2) for the current bank

    def set_bank(self, bank: ActionBank) -> None:
        self.posteriors.update(zip(self.ids, self.ab.copy(), strict=True))
        self.ids = tuple(bank.ids)
        self.ab = np.array([self.posteriors.get(i, self.prior) for i in self.ids], dtype=np.float64)

    def act(self, users: np.ndarray) -> Decision:
        n = users.shape[0]
        draws = self.rng.beta(self.ab[:, 0], self.ab[:, 1], size=(n + 256, len(self.ids)))
        winners = draws.argmax(axis=1)
        win_prob = np.bincount(winners, minlength=len(self.ids)) / winners.size
        actions = winners[:n].astype(np.int64)
        return Decision(actions, win_prob[actions])

    def update(self, users: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> dict[str, float]:
        k = len(self.ids)
        self.ab[:, 0] += np.bincount(actions, weights=rewards, minlength=k)
        self.ab[:, 1] += np.bincount(actions, weights=1.0 - rewards, minlength=k)
        return {"posterior_mean_max": float((self.ab[:, 0] / self.ab.sum(axis=1)).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="users per iteration")
    parser.add_argument("--embedder", default="hashing", choices=("hashing", "minilm"))
    parser.add_argument("--results_dir", default="results")
    args = parser.parse_args()

    # 1. The outer env with the class itself as the company's agent; the designer here just keeps the bank.
    print("BankDesign-v0, 3 campaigns on the initial bank: mean per-user regret (lower is better)")
    for label, strategy in (("thompson (yours)", ThompsonSamplingAgent), ("linucb", "linucb")):
        env = gym.make(
            "ActionBank/BankDesign-v0",
            company_strategy=strategy,
            embedder=args.embedder,
            users_per_iteration=args.users,
            n_iterations=2,
            initial_actions=10,
        )
        _, info = env.reset(seed=0)
        regrets = [info["regret"]]
        while True:
            _, _, terminated, _, info = env.step([])  # [] keeps the current bank
            regrets.append(info["regret"])
            if terminated:
                break
        print(f"  {label:18s} regret per campaign {np.round(regrets, 4).tolist()}  mean {np.mean(regrets):.4f}")

    # 2. The full simulation with "module:Class" (this file's folder is on sys.path when run as a script).
    spec = f"{Path(__file__).stem}:ThompsonSamplingAgent"
    print(f"\nrun_simulation(company_strategy={spec!r}) vs linucb, optimizer 'keep'")
    for strategy in (spec, "linucb"):
        config = SimulationConfig.from_settings(
            {
                "iterations": 2,
                "users_per_iteration": args.users,
                "initial_actions": 10,
                "embedder": args.embedder,
                "agent": strategy,
                "designer": "keep",
                "evaluation_users": 500,
                "results_dir": args.results_dir,
                "tensorboard": False,
                "report": False,
            }
        )
        result = run_simulation(config)
        regret = result.summary["per_iteration"]["regret"]
        print(f"  {strategy:44s} regret {np.round(regret, 4).tolist()}  -> {result.path}")


if __name__ == "__main__":
    main()
