from __future__ import annotations

import re

import numpy as np
import pytest

from actionbank_env.core.campaign import run_campaign
from actionbank_env.core.observations import LOG_COLUMNS, ObservationLog
from actionbank_env.core.world import World, WorldConfig, spawn_generators
from actionbank_env.errors import ConfigError, UnknownComponentError
from actionbank_env.protocols import Decision
from actionbank_env.registry import make_agent
from tests.worlds import hashing_world


def test_world_is_a_function_of_its_config() -> None:
    a = hashing_world(3)
    b = World.build(a.config)
    assert a.initial_bank.texts == b.initial_bank.texts
    np.testing.assert_array_equal(a.initial_bank.embeddings, b.initial_bank.embeddings)
    assert a.reference_texts == b.reference_texts
    assert hashing_world(4).initial_bank.texts != a.initial_bank.texts
    assert WorldConfig(**a.config.to_dict()) == a.config


def test_new_catalog_continues_after_the_initial_bank() -> None:
    world = hashing_world()
    catalog = world.new_catalog()
    kept = catalog.resolve([world.initial_bank.texts[0]], world.embedder)[0]
    assert kept.id == world.initial_bank.ids[0]
    fresh = catalog.resolve(["A text nobody wrote before"], world.embedder)[0]
    assert fresh.id == f"A{len(world.initial_bank):05d}"
    assert len(world.new_catalog()) == len(world.initial_bank)  # the world's own catalog is untouched


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"initial_actions": 1}, ConfigError, "WorldConfig.initial_actions must be an int >= 2 and <= 10000, got 1."),
        ({"embedder": "hashng"}, UnknownComponentError, "Did you mean 'hashing'?"),
        (
            {"ground_truth": "moe"},
            ConfigError,
            "WorldConfig.ground_truth must be one of ['gmm', 'mixture_of_experts', 'semantic'], got 'moe'.",
        ),
        ({"world_seed": -1}, ConfigError, "WorldConfig.world_seed must be an int >= 0, got -1."),
        ({"world_seed": 1.5}, TypeError, "WorldConfig.world_seed must be an int, got 1.5"),
        ({"base_ctr": 2.0}, ConfigError, "GroundTruthConfig.base_ctr must be a float > 0.0 and < 1.0, got 2.0."),
        (
            {"initial_actions": 40, "n_reference_texts": 20},
            ConfigError,
            "WorldConfig.n_reference_texts=20 must be >= initial_actions=40.",
        ),
        ({"cache_embeddings": "yes"}, TypeError, "WorldConfig.cache_embeddings must be a bool, got 'yes'"),
    ],
)
def test_bad_world_config(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        WorldConfig(**kwargs)  # type: ignore[arg-type]


def _campaign(world: World, agent_name: str, seed: int, n_users: int = 3000, batch_size: int = 64):  # type: ignore[no-untyped-def]
    users_rng, agent_rng, click_rng = spawn_generators(seed, 3)
    agent = make_agent(agent_name, world, rng=agent_rng)
    agent.set_bank(world.initial_bank)
    users = world.sample_users(n_users, rng=users_rng)
    return run_campaign(world.ground_truth, world.initial_bank, agent, users, rng=click_rng, batch_size=batch_size)


def test_campaign_is_deterministic_and_seed_dependent() -> None:
    world = hashing_world()
    a, b, c = _campaign(world, "linucb", 0), _campaign(world, "linucb", 0), _campaign(world, "linucb", 1)
    assert a.log == b.log
    np.testing.assert_array_equal(a.served_probs, b.served_probs)
    assert a.log != c.log


def test_random_targeting_realises_the_mean_click_prob() -> None:
    result = _campaign(hashing_world(), "random", 5, n_users=20_000)
    ctr, mean = result.log.ctr, result.served_probs.mean()
    se = np.sqrt(mean * (1 - mean) / 20_000)
    assert abs(ctr - mean) < 4 * se
    assert abs(result.deployed_value - result.mean_probs.mean()) < 0.01
    assert np.all(result.log.propensities == pytest.approx(1 / 10))


def test_click_draws_do_not_depend_on_the_batch_size_for_a_fixed_policy() -> None:
    world = hashing_world()
    a, b = _campaign(world, "oracle", 2, batch_size=1), _campaign(world, "oracle", 2, batch_size=500)
    assert a.log == b.log


def test_learning_agents_beat_random_and_oracle_has_no_regret() -> None:
    world = hashing_world()
    oracle, rand, linucb = (_campaign(world, n, 7, n_users=6000) for n in ("oracle", "random", "linucb"))
    assert oracle.regret == pytest.approx(0.0, abs=1e-12)
    # LinUCB captures a real share of the per-user targeting gain (0.31 measured with best_lift 2).
    assert linucb.deployed_value - rand.deployed_value > 0.2 * (oracle.deployed_value - rand.deployed_value)
    assert oracle.bank_value == pytest.approx(rand.bank_value)  # same users, same bank


def test_campaign_rejects_an_agent_that_returns_bad_indices() -> None:
    class Broken:
        def set_bank(self, bank):  # type: ignore[no-untyped-def]
            pass

        def act(self, users):  # type: ignore[no-untyped-def]
            return Decision(np.full(len(users), 99), np.ones(len(users)))

        def update(self, users, actions, rewards):  # type: ignore[no-untyped-def]
            return {}

    world = hashing_world()
    users = world.sample_users(3, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=re.escape("agent.act must return 3 action indices in [0, 10)")):
        run_campaign(world.ground_truth, world.initial_bank, Broken(), users, rng=np.random.default_rng(0))


def test_log_round_trips_csv_parquet_and_exports_obp(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = hashing_world()
    log = _campaign(world, "random", 3, n_users=500).log
    log.to_csv(tmp_path / "obs.csv")
    log.to_parquet(tmp_path / "obs.parquet")
    assert ObservationLog.from_csv(tmp_path / "obs.csv") == log
    assert ObservationLog.from_parquet(tmp_path / "obs.parquet") == log
    assert list(log.to_pandas().columns) == list(LOG_COLUMNS)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    obp = log.to_obp({a.id: a.embedding for a in world.initial_bank})
    assert obp["n_rounds"] == 500 and obp["context"].shape == (500, 8)
    served = np.asarray(obp["action_ids"])[obp["action"]]
    np.testing.assert_array_equal(served, log.action_ids.astype(str))
    assert obp["action_context"].shape == (obp["n_actions"], world.d_embed)


def test_log_is_append_only_and_validated() -> None:
    world = hashing_world()
    first = _campaign(world, "random", 1, n_users=10).log
    both = ObservationLog.concat([first, first])
    assert len(both) == 20 and both.iteration(0) == both
    per = both.per_action()
    assert sum(s for s, _ in per.values()) == 20
    with pytest.raises(ConfigError, match=re.escape("observation log propensity must be in (0, 1].")):
        ObservationLog({**first.columns, "propensity": np.zeros(10)})
    with pytest.raises(ConfigError, match="missing \\['click'\\]"):
        ObservationLog({k: v for k, v in first.columns.items() if k != "click"})


class _SpyAgent:
    """Records the context the registry hands a real (not evaluation-only) agent."""

    seen: list[object] = []

    def __init__(self, context: object, *, rng: np.random.Generator) -> None:
        _SpyAgent.seen.append(context)


def test_agents_never_see_the_ground_truths_reference_texts() -> None:
    world = hashing_world()
    truth_texts = set(world.ground_truth_reference_texts)
    assert len(truth_texts) == world.config.n_reference_texts
    assert not truth_texts & set(world.reference_texts)  # an independent draw, no text in common
    company_emb = np.asarray(world.embedder.embed(list(world.reference_texts)), dtype=np.float32)
    _SpyAgent.seen.clear()
    make_agent(_SpyAgent, world, rng=np.random.default_rng(0))
    for context in (_SpyAgent.seen[0], world.agent_context()):
        ref = np.asarray(context.reference_embeddings)  # type: ignore[attr-defined]
        assert context.ground_truth is None  # type: ignore[attr-defined]
        np.testing.assert_array_equal(ref, world.reference_embeddings)  # the company's own sample
        # What the agent is shown are the embeddings of the company's texts, none of which is a truth text.
        np.testing.assert_allclose(ref, company_emb, rtol=1e-5, atol=1e-6)
