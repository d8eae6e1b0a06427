"""Throughput of the environments, each next to a baseline measured in the same run.

- ``Targeting-v0`` (single env, steps/s) next to a trivial Gymnasium env with the same spaces (user
  features in, a dot-product Bernoulli click out).
- The native vector env (user-steps/s at ``num_envs`` 1, 64 and 1024) next to the same computation as one
  plain numpy batch (users, ground-truth logits and click uniforms drawn in the same block sizes,
  no env API), in both autoreset modes: ``NEXT_STEP`` (the default) spends one step per episode on resetting.
- SB3: :class:`~actionbank_env.integrations.sb3_vec_env.TargetingSB3VecEnv` (the native env as an SB3
  ``VecEnv``) next to SB3's ``DummyVecEnv`` of single envs, at ``num_envs`` 16 (user-steps/s through
  ``step_async`` / ``step_wait``).

Run ``python -m benchmarks.bench_envs`` from the repository root; ``run(repeats)`` returns the rows as dicts
(median, min and max over ``repeats`` timings after one warm-up run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from threadpoolctl import threadpool_limits

from actionbank_env.core.ground_truth import monotone_scores
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.envs._common import cached_world
from actionbank_env.envs.targeting import TargetingEnv
from actionbank_env.envs.targeting_vector import _BLOCK_USERS, TargetingVectorEnv

USERS_PER_EPISODE = 1000
VECTOR_SIZES = (1, 64, 1024)


def _world() -> World:
    return cached_world(WorldConfig(embedder="hashing", embedding_dim=128, initial_actions=30, cache_embeddings=False))


class TrivialEnv(gym.Env[np.ndarray, int]):
    """The same spaces as Targeting-v0; reward ``Bernoulli(sigmoid(user . w_a))``, users uniform."""

    def __init__(self, n_actions: int, d_user: int = 8, users_per_episode: int = USERS_PER_EPISODE) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, shape=(d_user,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_actions)
        self._weights = np.random.default_rng(0).normal(size=(n_actions, d_user)) - 2.0
        self._horizon = users_per_episode
        self._t = 0
        self._user = np.zeros(d_user, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        self._user = self.np_random.random(self.observation_space.shape[0], dtype=np.float32)
        return self._user, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        p = 1.0 / (1.0 + np.exp(-float(self._user @ self._weights[action])))
        reward = float(self.np_random.random() < p)
        self._t += 1
        self._user = self.np_random.random(self.observation_space.shape[0], dtype=np.float32)
        return self._user, reward, self._t == self._horizon, False, {"click_prob": p}


def _time(fn: Callable[[], int], repeats: int) -> tuple[float, float, float]:
    """Warm-up once, then ``repeats`` timings; returns (median, min, max) of units per second."""
    fn()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = fn()
        rates.append(units / (time.perf_counter() - start))
    return float(np.median(rates)), float(np.min(rates)), float(np.max(rates))


def _single_loop(env: gym.Env[Any, Any], n_episodes: int) -> Callable[[], int]:
    actions = np.random.default_rng(0).integers(env.action_space.n, size=USERS_PER_EPISODE).tolist()

    def loop() -> int:
        env.reset(seed=0)
        for _ in range(n_episodes):
            for a in actions:
                env.step(a)
            env.reset()
        return n_episodes * USERS_PER_EPISODE

    return loop


def _vector_loop(env: TargetingVectorEnv, n_steps: int) -> Callable[[], int]:
    actions = np.random.default_rng(0).integers(env.single_action_space.n, size=(n_steps, env.num_envs))

    def loop() -> int:
        env.reset(seed=0)
        for row in actions:
            env.step(row)
        return n_steps * env.num_envs

    return loop


def _sb3_loop(venv: Any, n_steps: int) -> Callable[[], int]:
    actions = np.random.default_rng(0).integers(venv.action_space.n, size=(n_steps, venv.num_envs))

    def loop() -> int:
        venv.seed(0)
        venv.reset()
        for row in actions:
            venv.step_async(row)
            venv.step_wait()
        return n_steps * venv.num_envs

    return loop


def _plain_loop(world: World, num_envs: int, n_steps: int) -> Callable[[], int]:
    """The vector env's computation without the env: block draws (users, logits, uniforms), then per step
    one gather and the sigmoid of the served and best logits."""
    embeddings = world.initial_bank.embeddings
    n_actions = len(world.initial_bank)
    actions = np.random.default_rng(0).integers(n_actions, size=(n_steps, num_envs))
    rng = np.random.default_rng(0)
    arange = np.arange(num_envs)

    def loop() -> int:
        block = max(1, _BLOCK_USERS // num_envs)
        for start in range(0, n_steps, block):
            stop = min(start + block, n_steps)
            users = world.sample_users((stop - start) * num_envs, rng=rng).features
            scores, link = monotone_scores(world.ground_truth, users, embeddings)
            scores = scores.reshape(stop - start, num_envs, n_actions)
            uniforms = rng.random((stop - start, num_envs))
            obs = users.astype(np.float32).reshape(stop - start, num_envs, -1)  # noqa: F841 - same work as the env
            best = link(scores.max(axis=2))
            for row in range(stop - start):
                served = link(scores[row, arange, actions[start + row]])
                clicks = (uniforms[row] < served).astype(np.float64)  # noqa: F841
                regret = best[row] - served  # noqa: F841
        return n_steps * num_envs

    return loop


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Measure every row; returns dicts with ``name``, ``num_envs``, ``unit``, ``median``, ``min``, ``max``,
    ``baseline``, ``baseline_median`` and ``ratio`` (env median / baseline median)."""
    world = _world()
    rows: list[dict[str, Any]] = []
    with threadpool_limits(1):
        env = TargetingEnv(world=world, users_per_episode=USERS_PER_EPISODE)
        trivial = TrivialEnv(len(world.initial_bank))
        ours = _time(_single_loop(env, 5), repeats)
        base = _time(_single_loop(trivial, 5), repeats)
        rows.append(_row("Targeting-v0 (single)", 1, "steps/s", ours, "trivial env, same spaces", base))
        for num_envs in VECTOR_SIZES:
            n_steps = max(USERS_PER_EPISODE, 64_000 // num_envs)  # at least one whole episode
            base = _time(_plain_loop(world, num_envs, n_steps), repeats)
            for mode in ("next_step", "same_step"):
                venv = TargetingVectorEnv(
                    num_envs, world=world, users_per_episode=USERS_PER_EPISODE, autoreset_mode=mode
                )
                ours = _time(_vector_loop(venv, n_steps), repeats)
                rows.append(_row(f"vector, {mode}", num_envs, "user-steps/s", ours, "plain numpy batch", base))
        rows.append(_sb3_row(world, 16, repeats))
    return rows


def _sb3_row(world: World, num_envs: int, repeats: int) -> dict[str, Any]:
    """The native env as an SB3 VecEnv next to SB3's DummyVecEnv of single envs (what make_vec_env builds)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from actionbank_env.integrations.sb3_vec_env import TargetingSB3VecEnv

    n_steps = 2 * USERS_PER_EPISODE
    native = TargetingSB3VecEnv(num_envs, world=world, users_per_episode=USERS_PER_EPISODE)
    dummy = DummyVecEnv(
        [lambda: TargetingEnv(world=world, users_per_episode=USERS_PER_EPISODE) for _ in range(num_envs)]
    )
    ours = _time(_sb3_loop(native, n_steps), repeats)
    base = _time(_sb3_loop(dummy, n_steps), repeats)
    return _row("SB3 VecEnv (native)", num_envs, "user-steps/s", ours, "SB3 DummyVecEnv", base)


def _row(
    name: str,
    num_envs: int,
    unit: str,
    ours: tuple[float, float, float],
    baseline: str,
    base: tuple[float, float, float],
) -> dict[str, Any]:
    return {
        "name": name,
        "num_envs": num_envs,
        "unit": unit,
        "median": ours[0],
        "min": ours[1],
        "max": ours[2],
        "baseline": baseline,
        "baseline_median": base[0],
        "ratio": ours[0] / base[0],
    }


def main() -> None:
    """Print the table."""
    rows = run()
    print(f"{'env':<24}{'num_envs':>9}{'median':>14}{'min..max':>26}  {'baseline':<26}{'baseline':>14}{'ratio':>7}")
    for r in rows:
        spread = f"{r['min']:,.0f}..{r['max']:,.0f}"
        print(
            f"{r['name']:<24}{r['num_envs']:>9}{r['median']:>14,.0f}{spread:>26}  {r['baseline']:<26}"
            f"{r['baseline_median']:>14,.0f}{r['ratio']:>7.2f}   ({r['unit']})"
        )


if __name__ == "__main__":
    main()
