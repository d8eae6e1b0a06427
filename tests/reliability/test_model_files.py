"""Model files are data: a Stable-Baselines3 ``model.zip`` is rebuilt without unpickling anything from it.

SB3's own ``.load`` runs ``cloudpickle.loads`` on every ``:serialized:`` entry of the zip's ``data``; a crafted file
runs its payload there. The tests craft such a file (each pickled entry replaced by a payload that writes a canary
file), show that SB3's ``.load`` does run it (so the payload is live), and that every way this package loads a model
(the agent, ``--company-params``, ``gym.make``) neither runs it nor needs it.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actionbank_env.cli import main
from actionbank_env.errors import DataError, MissingFileError

pytest.importorskip("stable_baselines3")

WORLD = {
    "embedder": "hashing",
    "initial_actions": 5,
    "embedding_dim": 64,
    "n_reference_texts": 64,
    "n_reference_users": 256,
}


class _Payload:
    """Unpickling this writes ``canary`` (``pathlib.Path.write_text`` is importable, so pickle refers to it)."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.canary, "payload ran"))


def _save(model: Any, path: Path) -> Path:
    model.save(path)
    return path


def _rewrite(src: Path, dst: Path, edit: Any) -> Path:
    """Copy the zip ``src`` to ``dst``, passing each entry's bytes through ``edit(name, data) -> bytes | None``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = edit(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
    return dst


def _poison(src: Path, dst: Path, canary: Path) -> Path:
    """Every ``:serialized:`` entry of ``data`` replaced by the payload (spaces, policy class, schedules...)."""
    payload = base64.b64encode(pickle.dumps(_Payload(canary))).decode()

    def edit(name: str, data: bytes) -> bytes:
        if name != "data":
            return data
        content = json.loads(data)
        for value in content.values():
            if isinstance(value, dict) and ":serialized:" in value:
                value[":serialized:"] = payload
        return json.dumps(content).encode()

    return _rewrite(src, dst, edit)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN, PPO

    import actionbank_env  # noqa: F401

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("models")
    plain_env = gym.make("ActionBank/Targeting-v0", users_per_episode=4, **WORLD)
    dict_env = gym.make("ActionBank/Targeting-v0", users_per_episode=4, observe_bank=True, max_bank_size=8, **WORLD)
    out = {
        "ppo": PPO("MlpPolicy", plain_env, seed=0, device="cpu", policy_kwargs={"net_arch": [16]}),
        "ppo_dict": PPO(
            "MultiInputPolicy",
            dict_env,
            seed=0,
            device="cpu",
            policy_kwargs={"net_arch": [16], "activation_fn": torch.nn.ReLU},
        ),
        "dqn": DQN("MlpPolicy", plain_env, seed=0, device="cpu", buffer_size=10, policy_kwargs={"net_arch": [16]}),
    }
    paths = {name: _save(model, folder / f"{name}.zip") for name, model in out.items()}
    return {"models": out, "paths": paths, "world": plain_env.unwrapped.world, "dict_env": dict_env}


def test_sb3_load_runs_the_payload_but_load_sb3_model_does_not(models: dict[str, Any], tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from agents.sb3 import load_sb3_model

    canary = tmp_path / "canary"
    poisoned = _poison(models["paths"]["ppo"], tmp_path / "poisoned.zip", canary)
    load_sb3_model("ppo", poisoned)  # the file's plain declarations are all it needs
    assert not canary.exists()
    with warnings.catch_warnings():  # SB3 may warn about what the payload left in place of a space
        warnings.simplefilter("ignore")
        try:
            PPO.load(poisoned, device="cpu")
        except Exception:  # noqa: BLE001  (whatever SB3 makes of it, the payload has run by then)
            pass
    assert canary.read_text() == "payload ran", "the crafted payload is not live; the test proves nothing"


@pytest.mark.parametrize("name", ["ppo", "ppo_dict", "dqn"])
def test_the_rebuilt_policy_computes_what_the_saved_model_does(models: dict[str, Any], name: str) -> None:
    import torch

    from agents.sb3 import load_sb3_model

    model = models["models"][name]
    loaded = load_sb3_model(name.split("_")[0], models["paths"][name])
    space = model.observation_space
    rng = np.random.default_rng(0)
    if name == "ppo_dict":
        obs = {k: rng.random((6, *space[k].shape)).astype(np.float32) for k in space}
    else:
        obs = rng.random((6, *space.shape)).astype(np.float32)
    with torch.no_grad():
        a, b = model.policy.obs_to_tensor(obs)[0], loaded.policy.obs_to_tensor(obs)[0]
        if name == "dqn":
            np.testing.assert_allclose(model.policy.q_net(a).numpy(), loaded.policy.q_net(b).numpy(), rtol=1e-6)
            assert loaded.exploration_rate == pytest.approx(model.exploration_rate)
        else:
            np.testing.assert_allclose(
                model.policy.get_distribution(a).distribution.probs.numpy(),
                loaded.policy.get_distribution(b).distribution.probs.numpy(),
                rtol=1e-6,
            )


def test_poisoned_model_through_the_cli_and_gym_make_runs_nothing(
    models: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--company-params '{"model_path": ...}'`` and ``gym.make(..., company_strategy="sb3")``."""
    import gymnasium as gym

    canary = tmp_path / "canary"
    poisoned = _poison(models["paths"]["ppo"], tmp_path / "poisoned.zip", canary)
    args = [
        "simulate",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
        "--iterations",
        "1",
        "--users",
        "40",
        "--evaluation-users",
        "40",
        "--no-report",
        "--no-tensorboard",
        "--designer",
        "keep",
        "--company-strategy",
        "sb3",
        "--company-params",
        json.dumps({"model_path": str(poisoned)}),
        *[f"--{k.replace('_', '-')}={v}" for k, v in WORLD.items()],
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert not canary.exists()
    env = gym.make(
        "ActionBank/BankDesign-v0", company_strategy="sb3", company_params={"model_path": str(poisoned)}, **WORLD
    )
    env.reset(seed=0)
    env.close()
    assert not canary.exists()


def _custom_extractor(name: str, data: bytes) -> bytes:
    if name != "data":
        return data
    content = json.loads(data)
    content["policy_kwargs"] = {
        ":type:": "<class 'dict'>",
        ":serialized:": "AAAA",
        "features_extractor_class": "<class 'evil.Extractor'>",
    }
    return json.dumps(content).encode()


def _torch_payload(canary: Path) -> Any:
    def edit(name: str, data: bytes) -> bytes:
        if name != "policy.pth":
            return data
        import torch

        buffer = io.BytesIO()
        torch.save({"weights": _Payload(canary)}, buffer)
        return buffer.getvalue()

    return edit


BAD_MODEL_FILES: list[tuple[str, Any, str]] = [
    ("not-a-zip", lambda n, d: None, "is not a readable zip archive"),
    ("no-data-entry", lambda n, d: None if n == "data" else d, "has no 'data' entry"),
    ("no-weights", lambda n, d: None if n == "policy.pth" else d, "has no 'policy.pth' entry"),
    ("data-not-json", lambda n, d: b"{not json" if n == "data" else d, "'data' entry that is not valid JSON"),
    ("data-not-utf8", lambda n, d: b"\xff\xfe\x00" if n == "data" else d, "'data' entry that is not valid JSON"),
    ("data-a-list", lambda n, d: b"[1, 2]" if n == "data" else d, "'data' entry of type list"),
    ("custom-extractor-class", _custom_extractor, "features_extractor_class"),
    ("weights-of-another-net", None, "do not load into the declared policy"),
    ("weights-hold-a-pickle", None, "do not load into the declared policy"),
    (
        "space-a-tuple",
        lambda n, d: d.replace(b"gymnasium.spaces.box.Box", b"gymnasium.spaces.tuple.Tuple") if n == "data" else d,
        "not supported",
    ),
    (
        "policy-from-elsewhere",
        lambda n, d: d.replace(b"stable_baselines3.common.policies", b"evil.policies") if n == "data" else d,
        "declares a policy class from module 'evil.policies'",
    ),
]


@pytest.mark.parametrize(("case", "edit", "message"), BAD_MODEL_FILES, ids=[r[0] for r in BAD_MODEL_FILES])
def test_bad_model_files_are_refused_with_the_file_named(
    models: dict[str, Any], tmp_path: Path, case: str, edit: Any, message: str
) -> None:
    from agents.sb3 import load_sb3_model

    canary = tmp_path / "canary"
    target = tmp_path / "bad.zip"
    if case == "not-a-zip":
        target.write_bytes(b"PK\x03\x04 truncated")
    elif case == "weights-of-another-net":
        other = _save(models["models"]["dqn"], tmp_path / "dqn.zip")
        with zipfile.ZipFile(other) as z:
            foreign = z.read("policy.pth")
        _rewrite(models["paths"]["ppo"], target, lambda n, d: foreign if n == "policy.pth" else d)
    elif case == "weights-hold-a-pickle":
        _rewrite(models["paths"]["ppo"], target, _torch_payload(canary))
    else:
        _rewrite(models["paths"]["ppo"], target, edit)
    with pytest.raises(DataError, match=message) as info:
        load_sb3_model("ppo", target)
    assert str(target) in str(info.value)
    assert not canary.exists()


def test_a_missing_model_is_a_usage_error_not_a_write_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.sb3 import load_sb3_model

    with pytest.raises(MissingFileError, match="does not exist"):
        load_sb3_model("ppo", tmp_path / "missing.zip")
    args = [
        "simulate",
        "--quiet",
        "--out",
        str(tmp_path / "run"),
        "--company-strategy",
        "sb3",
        "--company-params",
        json.dumps({"model_path": str(tmp_path / "missing.zip")}),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.zip" in err[0] and "does not exist" in err[0] and "cannot write" not in err[0]


def test_no_package_code_calls_an_sb3_load() -> None:
    """``PPO.load`` / ``sb3_class(...).load`` unpickle; the packages read model files only through
    :func:`agents.sb3.load_sb3_model`."""
    import ast

    root = Path(__file__).resolve().parents[2]
    problems = []
    for path in [p for pkg in ("actionbank_env", "agents", "optimizers") for p in (root / pkg).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                receiver = node.func.value
                name = receiver.id if isinstance(receiver, ast.Name) else ""
                called = (
                    receiver.func.id if isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Name) else ""
                )
                if name in ("PPO", "A2C", "DQN", "cls", "algo_class", "model_class") or called == "sb3_class":
                    problems.append(f"{path}:{node.lineno}")
    assert problems == []
