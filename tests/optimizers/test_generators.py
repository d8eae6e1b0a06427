"""Candidate generation: ratios, parents, traits, deduplication, and the OpenAI path on the fake server."""

from __future__ import annotations

import numpy as np
import pytest

from actionbank_env.core.actions import normalize_text
from actionbank_env.core.campaign import run_campaign
from actionbank_env.core.copywriting import OfflineCopywriter, OpenAICopywriter
from actionbank_env.core.observations import ObservationLog
from actionbank_env.core.users import FEATURE_NAMES
from actionbank_env.errors import ServiceError
from actionbank_env.registry import make_agent
from optimizers._common import GenerativeConfig
from optimizers.generators import (
    CopywriterCandidateGenerator,
    allocate,
    best_parents,
    click_trait_scores,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.worlds import hashing_world


@pytest.fixture(scope="module")
def logged() -> tuple[object, ObservationLog]:
    world = hashing_world()
    rng = np.random.default_rng(0)
    agent = make_agent("random", world, rng=rng)
    agent.set_bank(world.initial_bank)
    users = world.sample_users(2000, rng=rng)
    return world.initial_bank, run_campaign(world.ground_truth, world.initial_bank, agent, users, rng=rng).log


@pytest.mark.parametrize("n", [0, 1, 7, 10, 99, 1000])
@pytest.mark.parametrize("ratios", [(0.4, 0.3, 0.3), (1.0, 0.0, 0.0), (0.2, 0.5, 0.3), (1.0, 1.0, 1.0)])
def test_allocate_sums_to_n_and_is_within_one_of_the_ratio(n: int, ratios: tuple[float, float, float]) -> None:
    shares = dict(zip(("exploit", "explore", "targeted"), ratios, strict=True))
    counts = allocate(n, shares)
    assert sum(counts.values()) == n
    total = sum(ratios)
    for mode, r in shares.items():
        assert abs(counts[mode] - n * r / total) < 1.0


def test_click_trait_scores_finds_a_planted_trait() -> None:
    rng = np.random.default_rng(0)
    users = rng.random((5000, 8))
    clicks = (rng.random(5000) < 0.02 + 0.2 * users[:, 3]).astype(float)
    scores = click_trait_scores(users, clicks)
    assert int(np.argmax(scores)) == 3 and scores[3] > 0.1
    assert np.all(np.abs(np.delete(scores, 3)) < 0.05)


def test_best_parents_shrinks_small_samples() -> None:
    log = ObservationLog()
    ids = np.array(["A1"] * 2 + ["A2"] * 1000 + ["A3"] * 1000, dtype=object)
    clicks = np.concatenate([[1, 1], (np.arange(1000) < 300), (np.arange(1000) < 100)]).astype(int)
    n = ids.size
    log.append(
        iteration=0,
        step=np.arange(n),
        user_id=np.arange(n),
        users=np.full((n, 8), 0.5),
        action_ids=ids,
        action_index=np.zeros(n, dtype=np.int64),
        propensity=np.ones(n),
        click=clicks,
    )
    texts = {"A1": "lucky", "A2": "proven", "A3": "weak"}
    assert best_parents(log, texts, 2, prior_strength=50.0) == ["proven", "lucky"]
    assert best_parents(log, texts, 1, prior_strength=0.0) == ["lucky"]  # raw CTR 1.0 wins without the prior


def test_pool_honours_ratios_and_dedupes(logged: tuple[object, ObservationLog]) -> None:
    bank, log = logged
    config = GenerativeConfig(exploit_ratio=0.5, explore_ratio=0.2, targeted_ratio=0.3, n_parents=3)
    gen = CopywriterCandidateGenerator(OfflineCopywriter(), config)
    pool = gen.generate(bank, log, 200, rng=np.random.default_rng(1))  # type: ignore[arg-type]
    assert pool.counts() == {"exploit": 100, "explore": 40, "targeted": 60}
    assert pool.requested == pool.counts()
    keys = [normalize_text(t) for t in pool.texts]
    assert len(set(keys)) == len(keys) == 200
    assert not set(keys) & {normalize_text(t) for t in bank.texts}  # type: ignore[attr-defined]
    assert len(pool.parents) == 3 and set(pool.parents) <= set(bank.texts)  # type: ignore[attr-defined]
    assert 1 <= len(pool.segment_traits) <= config.n_segment_traits
    assert set(pool.segment_traits) <= set(FEATURE_NAMES)
    again = gen.generate(bank, log, 200, rng=np.random.default_rng(1))  # type: ignore[arg-type]
    assert again.texts == pool.texts  # deterministic for one rng state
    assert gen.propose(bank, log, 20, rng=np.random.default_rng(2)) == list(  # type: ignore[arg-type]
        gen.generate(bank, log, 20, rng=np.random.default_rng(2)).texts  # type: ignore[arg-type]
    )


def test_empty_log_gives_explore_only_and_exclude_is_honoured() -> None:
    gen = CopywriterCandidateGenerator(OfflineCopywriter())
    first = gen.generate(None, ObservationLog(), 30, rng=np.random.default_rng(0))
    assert first.counts() == {"exploit": 0, "explore": 30, "targeted": 0}
    second = gen.generate(None, ObservationLog(), 30, rng=np.random.default_rng(0), exclude=first.texts)
    assert not {normalize_text(t) for t in first.texts} & {normalize_text(t) for t in second.texts}


def test_trait_scores_override_the_log(logged: tuple[object, ObservationLog]) -> None:
    bank, log = logged
    gen = CopywriterCandidateGenerator(OfflineCopywriter(), GenerativeConfig(n_segment_traits=1))
    scores = np.zeros(8)
    scores[FEATURE_NAMES.index("tech_savviness")] = 1.0
    pool = gen.generate(bank, log, 10, rng=np.random.default_rng(0), trait_scores=scores)  # type: ignore[arg-type]
    assert pool.segment_traits == ("tech_savviness",)


def _openai(server: FakeOpenAIServer, **kwargs: object) -> OpenAICopywriter:
    options: dict[str, object] = {
        "api_key": "sk-test-generators",
        "base_url": server.base_url,
        "timeout": 2.0,
        "backoff": 0.0,
        "batch_size": 20,
        "max_retries": 3,
    }
    options.update(kwargs)
    return OpenAICopywriter(**options)  # type: ignore[arg-type]


def test_openai_pool_survives_malformed_json_and_429(
    fake_openai: FakeOpenAIServer, logged: tuple[object, ObservationLog]
) -> None:
    bank, log = logged
    fake_openai.queue_fault("malformed")
    fake_openai.queue_fault("429", retry_after=0.0)
    fake_openai.queue_fault("bad_content")
    with _openai(fake_openai) as writer:
        gen = CopywriterCandidateGenerator(writer, GenerativeConfig())
        pool = gen.generate(bank, log, 40, rng=np.random.default_rng(0))  # type: ignore[arg-type]
    assert fake_openai.pending_faults == 0
    assert len(pool) == 40
    assert pool.counts() == {"exploit": 16, "explore": 12, "targeted": 12}
    keys = [normalize_text(t) for t in pool.texts]
    assert len(set(keys)) == 40
    assert not set(keys) & {normalize_text(t) for t in bank.texts}  # type: ignore[attr-defined]
    chats = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert len(chats) >= 3 + 3  # three faulty answers retried, at least one call per mode
    prompts = "\n".join(str(r.body["messages"][1]["content"]) for r in chats if isinstance(r.body, dict))
    assert "Example lines:" in prompts and "Target segment:" in prompts  # exploit parents and targeted traits


def test_openai_generator_raises_after_bounded_retries(
    fake_openai: FakeOpenAIServer, logged: tuple[object, ObservationLog]
) -> None:
    bank, log = logged
    fake_openai.queue_fault("429", retry_after=0.0, times=3)
    with _openai(fake_openai, max_retries=2) as writer:
        gen = CopywriterCandidateGenerator(writer)
        with pytest.raises(ServiceError):
            gen.generate(bank, log, 10, rng=np.random.default_rng(0))  # type: ignore[arg-type]
