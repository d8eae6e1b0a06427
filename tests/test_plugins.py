"""Plugin agents from the command line (issue 19, item 7): found from their own folder, clear errors, checked up front.

Every failing run here must leave ``results`` empty: validation happens before any folder or TensorBoard run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actionbank_env.cli import main
from tests.test_experiment import SMALL

AGENT_MODULE = textwrap.dedent(
    """
    import numpy as np
    from actionbank_env.protocols import Decision


    class FirstAction:
        def __init__(self, context, *, rng, bias=0.0):
            self.rng = rng

        def set_bank(self, bank):
            self.n = len(bank)

        def act(self, users):
            return Decision(np.zeros(len(users), dtype=np.int64), np.ones(len(users)))

        def update(self, users, actions, rewards):
            return {}


    class ReturnsArray(FirstAction):
        def act(self, users):
            return np.zeros(len(users), dtype=np.int64)
    """
)

#: Runs ``actionbank`` as the console script does: the script's folder on sys.path, not the working directory.
CONSOLE_SCRIPT = (
    "import os, sys; sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]; "
    "from actionbank_env.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _results(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "results").glob("*")) if (tmp_path / "results").exists() else []


def test_console_script_finds_an_agent_module_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "my_agent.py").write_text(AGENT_MODULE, encoding="utf-8")
    argv = ["simulate", *SMALL, "--iterations", "1", "--company-strategy", "my_agent:FirstAction", "--quiet"]
    argv += ["--results-dir", "results", "--no-tensorboard"]
    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_SCRIPT, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(_results(tmp_path)) == 1


def test_missing_module_error_explains_the_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["simulate", *SMALL, "--company-strategy", "not_there:Agent", "--results-dir", "results", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "module 'not_there' cannot be imported" in err and "run it from the folder that holds not_there.py" in err
    assert not _results(tmp_path)
    assert str(tmp_path) not in sys.path  # main leaves sys.path as it found it


def test_bad_agent_parameter_is_a_clear_error_before_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (tmp_path / "my_agent.py").write_text(AGENT_MODULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["simulate", *SMALL, "--company-strategy", "my_agent:FirstAction", "--company-params", '{"bais": 1}']
    assert main([*argv, "--results-dir", "results", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "agent 'my_agent:FirstAction' cannot take the parameters ['bais']" in err
    assert "its parameters are ['bias']. Did you mean 'bias'?" in err
    assert not _results(tmp_path)


def test_act_returning_an_array_names_the_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    (tmp_path / "my_agent.py").write_text(AGENT_MODULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["simulate", *SMALL, "--company-strategy", "my_agent:ReturnsArray", "--results-dir", "results"]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "ReturnsArray.act must return a Decision(actions, propensities)" in err and "got ndarray" in err


def test_fixed_size_sb3_policy_under_a_growing_designer_fails_up_front(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    from actionbank_env.config import SimulationConfig
    from actionbank_env.errors import ConfigError
    from actionbank_env.experiment import run_simulation
    from actionbank_env.training import train

    world = {"embedder": "hashing", "initial_actions": 5}
    model = train(
        "ppo",
        total_timesteps=64,
        seed=0,
        out=tmp_path / "model",
        env_kwargs={"users_per_episode": 16, **world},
        algo_kwargs={"n_steps": 64, "batch_size": 32, "n_epochs": 1},
        n_eval_episodes=1,
        eval_freq=0,
        tensorboard=False,
    ).model_path
    config = SimulationConfig.from_settings(
        {
            **world,
            "iterations": 2,
            "users_per_iteration": 100,
            "evaluation_users": 100,
            "results_dir": str(tmp_path / "results"),
            "agent": "sb3",
            "agent.params": {"model_path": str(model)},
            "designer.action_bank_size": 3,
            "designer.action_pool_size": 20,
        }
    )
    with pytest.raises(ConfigError, match=r"fixed Discrete\(5\) action space .* set designer.max_bank_size=5"):
        run_simulation(config)
    assert not _results(tmp_path)
