"""Property tests over the core: every input either computes a well-formed answer or raises the documented error.

Also the loading rules: nothing in the packages unpickles (no ``pickle``/``joblib``/``dill`` loads, every
``torch.load`` with ``weights_only=True``, every ``np.load`` with ``allow_pickle=False``), checked with ``ast``.
"""

from __future__ import annotations

import ast
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from actionbank_env.core.actions import MAX_TEXT_LENGTH, ActionCatalog, clean_text, normalize_text
from actionbank_env.core.copywriting import sanitize_lines
from actionbank_env.core.embedders import HashingEmbedder
from actionbank_env.core.users import FEATURE_NAMES, UserPopulation
from actionbank_env.core.world import World, WorldConfig
from actionbank_env.errors import ConfigError
from tests.worlds import minilm_world

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
D_USER = len(FEATURE_NAMES)
_POPULATION = UserPopulation()


@pytest.fixture(scope="module", params=["mixture_of_experts", "gmm", "semantic"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "semantic":  # needs a semantic embedder
        return minilm_world(initial_actions=4, n_reference_texts=64)
    return World.build(
        WorldConfig(
            embedder="hashing",
            embedding_dim=32,
            ground_truth=request.param,
            initial_actions=4,
            n_reference_texts=64,
            n_reference_users=256,
        )
    )


@FUZZ
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1), first_id=st.integers(0, 10**12))
def test_population_sample_shapes_dtypes_and_ranges(n: int, seed: int, first_id: int) -> None:
    users = UserPopulation().sample(n, rng=np.random.default_rng(seed), first_id=first_id)
    assert users.features.shape == (n, D_USER) and users.features.dtype == np.float64
    assert users.ids.dtype == np.int64 and users.ids.tolist() == list(range(first_id, first_id + n))
    assert np.all((users.features > 0.0) & (users.features < 1.0))
    assert not users.features.flags.writeable


@FUZZ
@given(n=st.integers(-(10**6), -1) | st.floats(allow_nan=True) | st.text(max_size=3))
def test_population_sample_rejects_bad_counts(n: object) -> None:
    with pytest.raises((ConfigError, TypeError), match="n_users must be an int"):
        _POPULATION.sample(n, rng=np.random.default_rng(0))  # type: ignore[arg-type]


@FUZZ
@given(data=st.data())
def test_click_prob_is_a_probability_matrix_for_any_finite_input(world: World, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 12))
    m = data.draw(st.integers(0, 12))
    d = world.initial_bank.d_embed
    users = data.draw(hnp.arrays(np.float64, (n, D_USER), elements=st.floats(0.0, 1.0)))
    embeddings = data.draw(hnp.arrays(np.float32, (m, d), elements=st.floats(-10.0, 10.0, width=32)))
    probs = world.ground_truth.click_prob(users, embeddings)
    assert probs.shape == (n, m) and probs.dtype == np.float64
    assert np.all(np.isfinite(probs)) and np.all((probs >= 0.0) & (probs <= 1.0))
    if n and m:  # a pure function of its inputs, row by row: no batch statistics
        np.testing.assert_allclose(world.ground_truth.click_prob(users[:1], embeddings), probs[:1], rtol=1e-12)


@FUZZ
@given(data=st.data(), bad=st.sampled_from([np.nan, np.inf, -np.inf]), where=st.sampled_from(["users", "embeddings"]))
def test_non_finite_inputs_raise_the_documented_config_error(
    world: World, data: st.DataObject, bad: float, where: str
) -> None:
    d = world.initial_bank.d_embed
    users = np.full((3, D_USER), 0.5)
    embeddings = np.asarray(world.initial_bank.embeddings[:2], dtype=np.float64).copy()
    target = users if where == "users" else embeddings
    i = data.draw(st.integers(0, target.shape[0] - 1))
    j = data.draw(st.integers(0, target.shape[1] - 1))
    target[i, j] = bad
    with pytest.raises(ConfigError, match=f"{where} must contain only finite values, got 1 NaN/inf"):
        world.ground_truth.click_prob(users, embeddings)
    with pytest.raises(ConfigError, match="must"):
        world.ground_truth.click_prob(np.full((3, D_USER + 1), 0.5), embeddings[:, :d])


def test_empty_and_huge_banks(world: World) -> None:
    users = world.sample_users(50, rng=np.random.default_rng(0)).features
    d = world.initial_bank.d_embed
    assert world.ground_truth.click_prob(users, np.zeros((0, d), np.float32)).shape == (50, 0)
    huge = np.random.default_rng(1).standard_normal((5000, d)).astype(np.float32)
    huge /= np.linalg.norm(huge, axis=1, keepdims=True)
    probs = world.ground_truth.click_prob(users, huge)
    assert probs.shape == (50, 5000) and np.all((probs >= 0.0) & (probs <= 1.0))


def test_catalog_builds_empty_and_5000_action_banks() -> None:
    bank = ActionCatalog().bank([f"Offer number {i}: {i}% off" for i in range(5000)], HashingEmbedder(dim=32))
    assert len(bank) == 5000 and bank.embeddings.shape == (5000, 32) and len(set(bank.ids)) == 5000
    empty = ActionCatalog().bank([], HashingEmbedder(dim=32))
    assert len(empty) == 0


_EMBEDDER = HashingEmbedder(dim=16)


@FUZZ
@given(texts=st.lists(st.text(max_size=260), max_size=8))
def test_catalog_resolve_any_unicode_text(texts: list[str]) -> None:
    catalog = ActionCatalog()
    cleaned = [clean_text(t) for t in texts]
    if any(not c or len(c) > MAX_TEXT_LENGTH for c in cleaned):
        with pytest.raises(ConfigError, match=r"texts\[\d+\] must be"):
            catalog.resolve(texts, _EMBEDDER)
        assert len(catalog) == 0  # nothing half-added
        return
    actions = catalog.resolve(texts, _EMBEDDER)
    assert [a.text for a in actions] == cleaned
    for a, b, ta, tb in zip(actions, actions[1:], texts, texts[1:], strict=False):
        assert (a.id == b.id) == (normalize_text(ta) == normalize_text(tb))
    again = catalog.resolve(texts, _EMBEDDER)  # the same text always resolves to the same id
    assert [a.id for a in again] == [a.id for a in actions]
    for a in actions:
        assert a.embedding.shape == (16,) and a.embedding.dtype == np.float32 and np.all(np.isfinite(a.embedding))


@FUZZ
@given(lines=st.lists(st.text(max_size=300) | st.integers() | st.none(), max_size=10), max_len=st.integers(1, 200))
def test_sanitize_lines_output_always_obeys_the_rules(lines: list[object], max_len: int) -> None:
    out = sanitize_lines(lines, max_len=max_len)
    assert len({normalize_text(x) for x in out}) == len(out)
    for line in out:
        assert 0 < len(line) <= max_len and line == line.strip()
        assert not any(unicodedata.category(ch)[0] == "C" for ch in line if ch not in "\t\n ")
        assert any(ch.isalnum() for ch in line)


# --------------------------------------------------------------------------------------------------------------
# Loading: nothing untrusted is unpickled
# --------------------------------------------------------------------------------------------------------------


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                f"{func.value.id}.{func.attr}"
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            out.append((name, node))
    return out


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def test_no_package_code_unpickles() -> None:
    files = [p for pkg in ("actionbank_env", "agents", "optimizers") for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 20
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(
                    n and n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve")
                    for n in names
                ):
                    problems.append(f"{path}: imports {names}")
        for name, call in _calls(tree):
            if name == "torch.load" and _keyword(call, "weights_only") is not True:
                problems.append(f"{path}:{call.lineno}: torch.load without weights_only=True")
            if name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not False:
                problems.append(f"{path}:{call.lineno}: np.load without allow_pickle=False")
            if name in ("pd.read_pickle", "pandas.read_pickle"):
                problems.append(f"{path}:{call.lineno}: read_pickle")
    assert problems == []
