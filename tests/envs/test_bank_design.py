"""ActionBank/BankDesign-v0 and the fixed-catalog action wrapper."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.error import InvalidAction, ResetNeeded
from gymnasium.utils.env_checker import check_env

from actionbank_env.core.actions import MAX_TEXT_LENGTH
from actionbank_env.envs.bank_design import BankDesignEnv
from actionbank_env.envs.wrappers import FixedCatalogActionWrapper
from actionbank_env.errors import ConfigError
from tests.envs.helpers import world


def make(**kwargs: Any) -> BankDesignEnv:
    env = gym.make(
        "ActionBank/BankDesign-v0", world=world(), **{"users_per_iteration": 200, "max_bank_size": 12, **kwargs}
    )
    return env.unwrapped


def wrapped(**kwargs: Any) -> FixedCatalogActionWrapper:
    return FixedCatalogActionWrapper(make(**kwargs), list(world().reference_texts[:16]), bank_size=4)


def test_gymnasium_check_env() -> None:
    check_env(make(render_mode="ansi"))


def test_gymnasium_check_env_on_the_wrapped_env() -> None:
    with warnings.catch_warnings():
        # check_env notes that the env is wrapped; wrapping is the point of this test.
        warnings.filterwarnings("ignore", message=".*is different from the unwrapped version", category=UserWarning)
        check_env(wrapped())


def test_reset_deploys_the_initial_bank_as_iteration_zero() -> None:
    env = make()
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    assert info["iteration"] == 0 and len(info["log"]) == 200 and info["history"] == [info["log"]]
    assert info["bank"] == world().initial_bank and info["bank_ids"] == world().initial_bank.ids
    assert obs["impressions"].sum() == 200 and obs["clicks"].sum() == info["log"].clicks.sum()
    assert info["company_reward"] == pytest.approx(info["log"].ctr)
    assert info["regret"] == pytest.approx(info["bank_value"] - info["deployed_value"])
    assert set(info["summary"]) >= {"company_reward", "deployed_value", "bank_value", "regret"}


def test_step_keeps_ids_and_statistics_of_retained_texts() -> None:
    env = make()
    obs0, info0 = env.reset(seed=0)
    keep = list(world().initial_bank.texts[:3])
    obs, reward, terminated, truncated, info = env.step(keep + ["A fresh subject line for everyone"])
    assert info["bank_ids"][:3] == world().initial_bank.ids[:3] and info["bank_ids"][3] == "A00010"
    assert reward == pytest.approx(info["deployed_value"]) and not terminated and not truncated
    # impressions accumulate over the episode for retained ids
    assert obs["impressions"][:3].sum() > obs0["impressions"][:3].sum()
    assert obs["impressions"].sum() == 200 + obs0["impressions"][:3].sum()
    assert info["log"].columns["user_id"].min() == 200  # fresh users, ids unique across iterations
    assert len(info["history"]) == 2 and obs["iteration"][0] == 1


def test_episode_ends_after_n_iterations() -> None:
    env = make(n_iterations=2)
    env.reset(seed=0)
    assert env.step(())[2] is False
    assert env.step(())[2:4] == (True, False)
    with pytest.raises(ResetNeeded):
        env.step(())


@pytest.mark.parametrize(
    ("action", "expected_ids", "kept", "skipped"),
    [
        ((), None, True, 0),
        (("", "   ", "\t"), None, True, 3),
        (("Hello there", "hello   THERE", "", "Second text"), ("A00010", "A00011"), False, 1),
        (np.array(["Hello there"], dtype=object), ("A00010",), False, 0),
    ],
    ids=["empty", "blank", "duplicates", "ndarray"],
)
def test_every_sequence_of_texts_is_a_valid_action(
    action: Any, expected_ids: tuple[str, ...] | None, kept: bool, skipped: int
) -> None:
    env = make()
    env.reset(seed=0)
    _, _, _, _, info = env.step(action)
    assert info["bank_ids"] == (expected_ids or world().initial_bank.ids)
    assert info["kept_bank"] is kept and info["skipped_texts"] == skipped


def test_oversized_bank_is_truncated_to_max_bank_size() -> None:
    env = make()
    env.reset(seed=0)
    texts = [f"Subject line number {i}" for i in range(20)]
    obs, _, _, _, info = env.step(texts)
    assert info["bank_texts"] == tuple(texts[:12]) and info["dropped_texts"] == 8
    assert obs["bank_mask"].sum() == 12


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("one text", "action must be a sequence of texts"),
        (42, "action must be a sequence of texts"),
        (("fine", 3), "action[1] must be a str"),
        (("fine", float("nan")), "action[1] must be a str"),
        (("x" * (MAX_TEXT_LENGTH + 1),), f"action[0] must be at most {MAX_TEXT_LENGTH} characters"),
        (np.zeros((2, 2)), "1-D sequence of texts"),
    ],
)
def test_actions_outside_the_space_raise_and_env_stays_usable(action: Any, message: str) -> None:
    env = make()
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match=re.escape(message)):
        env.step(action)
    _, _, _, _, info = env.step(("Still works",))
    assert info["iteration"] == 1 and info["bank_texts"] == ("Still works",)


def test_seeded_episodes_are_identical() -> None:
    def run(seed: int) -> list[pd.DataFrame]:
        env = make()
        _, info = env.reset(seed=seed)
        env.step(list(world().initial_bank.texts[:5]) + ["New idea"])
        _, _, _, _, info = env.step(())
        return [log.to_pandas() for log in info["history"]]

    for a, b in zip(run(4), run(4), strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert not run(4)[0].equals(run(5)[0])


def test_replay_from_data_dir(tmp_path: Path) -> None:
    bank = world().initial_bank
    (tmp_path / "initialization").mkdir()
    (tmp_path / "initialization" / "action_bank.json").write_text(json.dumps(bank.to_dict()))
    rng = np.random.default_rng(0)
    for t in range(3):
        (tmp_path / f"iteration_{t + 1}").mkdir()
        users = world().sample_users(50, rng=rng, first_id=1000 * t)
        pd.DataFrame(users.to_columns()).to_csv(tmp_path / f"iteration_{t + 1}" / "users.csv", index=False)
    env = make(data_dir=str(tmp_path), n_iterations=2)
    _, info = env.reset(seed=0)
    assert info["log"].columns["user_id"].tolist() == list(range(50))
    _, _, _, _, info = env.step(())
    assert info["log"].columns["user_id"].tolist() == list(range(1000, 1050))
    assert env.observation_space["impressions"].high.max() == 150

    (tmp_path / "iteration_3" / "users.csv").unlink()
    with pytest.raises(ConfigError, match=re.escape("data_dir is missing iteration_3/users.csv")):
        make(data_dir=str(tmp_path), n_iterations=2)
    outside = tmp_path.parent / f"{tmp_path.name}_outside.csv"
    outside.write_text("user_id\n")
    (tmp_path / "iteration_3" / "users.csv").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside data_dir"):
        make(data_dir=str(tmp_path), n_iterations=2)
    with pytest.raises(ConfigError, match="must be an existing folder"):
        make(data_dir=str(tmp_path / "nope"))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_iterations": -1}, ValueError, "BankDesignConfig.n_iterations must be"),
        ({"max_bank_size": 5}, ConfigError, "max_bank_size=5 must be >= the initial bank size 10"),
        ({"company_params": [1]}, TypeError, "BankDesignConfig.company_params must be a mapping"),
        ({"users_per_iteraton": 3}, TypeError, "Did you mean 'users_per_iteration'?"),
    ],
)
def test_bad_kwargs(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        BankDesignEnv(world=world(), **kwargs)


def test_company_strategy_and_params_are_used() -> None:
    env = make(company_strategy="random")
    _, info = env.reset(seed=0)
    assert type(env._agent).__name__ == "RandomAgent"
    assert info["deployed_value"] == pytest.approx(info["random_targeting_value"], abs=0.02)


def test_wrapper_maps_scores_to_the_top_k_texts() -> None:
    env = wrapped()
    env.reset(seed=0)
    scores = np.linspace(-1, 1, 16, dtype=np.float32)
    _, reward, _, _, info = env.step(scores)
    assert info["bank_texts"] == tuple(world().reference_texts[15:11:-1])
    assert reward == pytest.approx(info["deployed_value"])
    for bad in (np.full(16, np.nan, dtype=np.float32), np.zeros(3, dtype=np.float32), np.array(["a"] * 16)):
        with pytest.raises(InvalidAction):
            env.step(bad)
    with pytest.raises(ConfigError, match="distinct texts"):
        FixedCatalogActionWrapper(make(), ["a", "A "], bank_size=1)


@pytest.mark.slow
def test_sb3_ppo_trains_on_the_wrapped_env() -> None:
    from stable_baselines3 import PPO

    env = wrapped(users_per_iteration=50, n_iterations=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unconventional shape", category=UserWarning)
        model = PPO("MultiInputPolicy", env, n_steps=32, batch_size=16, n_epochs=1, seed=0, device="cpu")
        model.learn(96)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_action_prior_reaches_only_new_actions_of_an_agent_that_wants_it() -> None:
    calls: list[tuple[int, int]] = []

    def predict(users: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
        calls.append((users.shape[0], embeddings.shape[0]))
        return np.full((users.shape[0], embeddings.shape[0]), 0.08)

    keep = list(world().initial_bank.texts[:3])
    new = ["A fresh subject line for everyone", "Another fresh subject line"]
    primed = make(company_params={"new_action_prior": 100.0})
    _, info0 = primed.reset(seed=0)
    primed.set_action_prior(predict, info0["log"].users)
    primed.step(keep + new)
    assert calls == [(200, 2)]  # the two new texts, on the logged users
    agent = primed._agent
    assert agent.new_action_indices.tolist() == [3, 4]
    x = np.column_stack([info0["log"].users, np.ones(200)])
    # after a campaign of real clicks the primed means still sit near the prediction
    assert np.abs(x @ agent._phi[3:5].T - 0.08).mean() < 0.05
    # the prior is used once: the next step without a new one primes nothing
    primed.step(keep + new + ["A third fresh subject line"])
    assert calls == [(200, 2)]

    # An agent that wants no prior (the default) is not asked, and the run is the same as without the call.
    plain, plain_with_call = make(), make()
    _, a = plain.reset(seed=0)
    _, b = plain_with_call.reset(seed=0)
    plain_with_call.set_action_prior(predict, b["log"].users)
    _, reward_a, *_ = plain.step(keep + new)
    _, reward_b, *_ = plain_with_call.step(keep + new)
    assert calls == [(200, 2)] and reward_a == reward_b
    with pytest.raises(TypeError, match="predict must be callable"):
        plain.set_action_prior("not a model", b["log"].users)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="users"):
        plain.set_action_prior(predict, np.zeros((3, 2)))
