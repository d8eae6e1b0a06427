"""Every script in examples/ runs as a new user would run it: a subprocess, from another folder, at tiny sizes.

The classic scripts (``run_full_simulation.py`` & co.) must accept the original commands verbatim: their
docstrings hold those commands, and every one is parsed here by the real ``actionbank`` parser. Runs append
size flags after the verbatim flags (argparse keeps the last value), write under ``tmp_path`` and never into
the repository. The default pass keeps to the cheap runs; the heavier ones are marked slow.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from actionbank_env.cli import ALIASES, _simulation_config, build_parser
from actionbank_env.config import SimulationConfig
from tests.fakes.openai_server import FakeOpenAIServer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Classic script -> the ``actionbank`` subcommand it wraps.
CLASSIC = {
    "run_full_simulation.py": "simulate",
    "generate_simulation_data.py": "generate-data",
    "run_simulation_from_data.py": "run-from-data",
    "test_preference_model.py": "compare-models",
}

#: The original commands of the seed README ("Quick Start", "Reproducible Data Workflow", "Development").
ORIGINAL_COMMANDS = (
    "python run_full_simulation.py --iterations 3 --users 100 --initial_actions 10",
    "python run_full_simulation.py --iterations 4 --users 10000 --initial_actions 30 --company_strategy linucb "
    "--reward_model_type lightgbm --action_bank_size 0",
    "python run_full_simulation.py --iterations 4 --users 10000 --initial_actions 30 --action_bank_size 10 "
    "--company_strategy linucb --reward_model_type bayesian_neural --bnn_mc_samples 30 --use_pca --pca_components 128",
    "python generate_simulation_data.py --users 10000 --iterations 4 --initial_actions 30",
    "python generate_simulation_data.py --users 1000 --iterations 5 --initial_actions 25 --openai_api_key your_api_key",
    "python run_simulation_from_data.py --data_dir data/simulation_data/<unique_id> --company_strategy linucb "
    "--reward_model_type lightgbm --use_pca --pca_components 128 --action_bank_size 0",
    "python run_simulation_from_data.py --data_dir data/simulation_data/<unique_id> --company_strategy linucb "
    "--reward_model_type lightgbm --use_pca --pca_components 128 --action_bank_size 5",
    "python test_preference_model.py --model_type compare_all",
    "python test_preference_model.py --model_type neural --users 500",
    # Flags of the "Configuration Options" section.
    "python run_full_simulation.py --results_dir out --lgb_n_estimators 50 --lgb_learning_rate 0.1 "
    "--lgb_num_leaves 15 --alpha 0.5 --ground_truth_type gmm --gmm_components 4 --density_scale_factor 2.0 "
    "--min_utility 0.01 --max_utility 0.4 --diversity_weight 0.2 --action_pool_size 500 --action_bank_size 20 "
    "--use_uncertainty --uncertainty_weight 0.2 --reward_model_type gaussian_process",
    "python run_full_simulation.py --company_strategy bootstrapped_dqn --use_pca --pca_components 64",
    "python run_full_simulation.py --company_strategy legacy --reward_model_type ft_transformer",
)

#: Quick settings appended to a classic command (hashing embedder, small pool and evaluation sample).
QUICK = (
    "--embedder hashing --action_pool_size 50 --evaluation_users 300 --n_representative_users 64 "
    "--lgb_n_estimators 20 --no-report --quiet"
).split()


def run_example(script: str, *args: str, cwd: Path, timeout: float = 180, env: dict[str, str] | None = None):
    """``python examples/<script> <args>`` in ``cwd``; returns the completed process (any exit code)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # never reach a real key
    base.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    base.update(ACTIONBANK_CACHE_DIR=str(cwd / ".cache"), MPLBACKEND="Agg", **(env or {}))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a run that must have succeeded."""
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


def docstring_commands(script: str) -> list[list[str]]:
    """The ``python examples/<script> ...`` commands of a script's docstring, continuations joined, as argv."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / script).read_text(encoding="utf-8"))) or ""
    joined = re.sub(r"\\\n\s*", " ", doc)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith(f"python examples/{script}"):
            commands.append(shlex.split(line.split("#")[0])[2:])
    return commands


def parse_classic(script: str, argv: list[str]) -> dict[str, object]:
    """Parse ``argv`` as ``script`` would and build its configuration; returns the parsed values."""
    full = [CLASSIC[script], *argv]
    parser = build_parser(full)
    args = parser.parse_args(full)
    values = vars(args)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[CLASSIC[script]]
    dests = {option: action.dest for action in sub._actions for option in action.option_strings}
    for token in argv:
        if token.startswith("--"):
            flag = token.split("=")[0]
            assert flag in dests, f"{script}: {token} is not a flag"
            # a legacy flag the chosen component lacks is ignored with a note, as in the original system
            assert dests[flag] in values or flag.removeprefix("--") in ALIASES, f"{script}: {token} was not parsed"
    config = _simulation_config(args)
    assert isinstance(config, SimulationConfig)
    return values


# --------------------------------------------------------------------------- parsing (cheap, default pass)


@pytest.mark.parametrize("command", ORIGINAL_COMMANDS)
def test_original_commands_parse_and_validate(command: str) -> None:
    script, *argv = shlex.split(command)[1:]
    values = parse_classic(script, argv)
    if "--use_pca" in argv:
        assert values["agent.use_pca"] is True
    if "--users" in argv:
        assert values["users_per_iteration"] == int(argv[argv.index("--users") + 1])


@pytest.mark.parametrize("script", sorted(CLASSIC))
def test_classic_docstrings_hold_parsable_commands(script: str) -> None:
    commands = docstring_commands(script)
    assert len(commands) >= 2, commands
    for argv in commands:
        parse_classic(script, argv)


def test_classic_docstrings_hold_the_original_commands() -> None:
    documented = {(script, tuple(argv)) for script in CLASSIC for argv in docstring_commands(script)}
    for command in ORIGINAL_COMMANDS[:9]:
        script, *argv = shlex.split(command)[1:]
        assert (script, tuple(argv)) in documented, command


def test_every_example_is_listed_in_the_examples_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in sorted(p.name for p in EXAMPLES.glob("*.py")):
        assert f"python examples/{script}" in readme, script


def test_every_example_reads_its_command_line() -> None:
    """``python examples/X.py --help`` must print help, not run: every script parses its arguments (argparse, or the
    ``actionbank`` command it wraps), so a flag it does not have is an error rather than silently ignored. (Two
    scripts once ignored the command line, and ``--help`` trained a model into ``results/``.)"""
    import ast

    for path in sorted(EXAMPLES.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom) for a in node.names}
        calls = {
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        wraps_cli = "main" in names and any(isinstance(n, ast.Attribute) and n.attr == "argv" for n in ast.walk(tree))
        assert ("argparse" in names and "parse_args" in calls) or wraps_cli, path.name


# --------------------------------------------------------------------------- classic scripts (subprocess)


def test_run_full_simulation_simple_test_run(tmp_path: Path) -> None:
    argv = "--iterations 3 --users 100 --initial_actions 10".split()
    out = ok(run_example("run_full_simulation.py", *argv, *QUICK, "--iterations", "2", cwd=tmp_path))
    runs = list((tmp_path / "results").glob("simulation_*"))
    assert len(runs) == 1 and f"results: {runs[0].resolve()}" in out
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["iterations"] == 2 and len(summary["per_iteration"]["bank_value"]) == 2
    config = json.loads((runs[0] / "simulation_config.json").read_text())
    assert config["campaign"]["users_per_iteration"] == 100 and config["world"]["initial_actions"] == 10


def test_generate_data_then_baseline_from_data(tmp_path: Path) -> None:
    out = ok(
        run_example(
            "generate_simulation_data.py",
            *"--users 10000 --iterations 4 --initial_actions 30".split(),
            *"--users 150 --iterations 2 --initial_actions 8 --embedder hashing".split(),
            cwd=tmp_path,
        )
    )
    folders = list((tmp_path / "data" / "simulation_data").iterdir())
    assert len(folders) == 1 and f"data: {Path('data/simulation_data') / folders[0].name}" in out
    data_dir = folders[0]
    assert (data_dir / "iteration_2" / "users.csv").is_file()
    baseline = (
        f"--data_dir {data_dir} --company_strategy linucb --reward_model_type lightgbm --use_pca "
        "--pca_components 128 --action_bank_size 0"
    ).split()
    out = ok(run_example("run_simulation_from_data.py", *baseline, *QUICK, "--results_dir", "res", cwd=tmp_path))
    run = next((tmp_path / "res").glob("simulation_from_data_*"))
    assert f"results: {run.resolve()}" in out
    assert json.loads((run / "run_from_data_config.json").read_text())["data_dir"] == str(data_dir.resolve())
    summary = json.loads((run / "summary.json").read_text())
    values = summary["per_iteration"]["bank_value"]
    assert len(values) == 2 and values[0] == pytest.approx(values[1])  # the baseline keeps the bank


def test_run_from_data_without_data_dir_exits_2(tmp_path: Path) -> None:
    proc = run_example("run_simulation_from_data.py", "--company_strategy", "linucb", cwd=tmp_path)
    assert proc.returncode == 2 and "--data_dir" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_preference_model_single_model(tmp_path: Path) -> None:
    out = ok(
        run_example(
            "test_preference_model.py",
            *"--model_type linear --users 400 --embedder hashing --evaluation_users 300 --json scores.json".split(),
            cwd=tmp_path,
        )
    )
    assert "linear" in out
    assert "linear" in (tmp_path / "scores.json").read_text()


@pytest.mark.slow
def test_generate_data_with_openai_key_uses_it_and_never_writes_it(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    key = "sk-example-not-a-real-key"
    argv = f"--users 60 --iterations 2 --initial_actions 5 --openai_api_key {key} --out data".split()
    out = ok(
        run_example("generate_simulation_data.py", *argv, cwd=tmp_path, env={"OPENAI_BASE_URL": fake_openai.base_url})
    )
    assert "data: data" in out
    settings = json.loads((tmp_path / "data" / "data_config.json").read_text())["settings"]
    assert settings["embedder"] == "openai"
    auth = {r.headers.get("Authorization", r.headers.get("authorization")) for r in fake_openai.requests}
    assert auth == {f"Bearer {key}"}
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert key not in path.read_text(encoding="utf-8", errors="replace"), path


def test_generate_data_with_a_rejected_key_exits_2_with_one_line(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.queue_fault("401", times=5)
    argv = "--users 60 --iterations 2 --initial_actions 5 --openai_api_key your_api_key --out data".split()
    proc = run_example(
        "generate_simulation_data.py", *argv, cwd=tmp_path, env={"OPENAI_BASE_URL": fake_openai.base_url}
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("actionbank: error:") and "your_api_key" not in proc.stderr
    # The key reached the API (the script exports it; the bare CLI would stop at "needs an API key").
    auth = {r.headers.get("Authorization", r.headers.get("authorization")) for r in fake_openai.requests}
    assert auth == {"Bearer your_api_key"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra",
    [
        "--company_strategy linucb --reward_model_type lightgbm --action_bank_size 0",
        "--action_bank_size 10 --company_strategy linucb --reward_model_type bayesian_neural --bnn_mc_samples 30 "
        "--use_pca --pca_components 128",
        "--ground_truth_type gmm --gmm_components 4 --density_scale_factor 2.0 --min_utility 0.01 --max_utility 0.4 "
        "--reward_model_type gaussian_process --use_uncertainty --uncertainty_weight 0.2 --alpha 0.5 "
        "--diversity_weight 0.3 --action_bank_size 5",
    ],
    ids=["baseline", "production", "gmm-uncertainty"],
)
def test_run_full_simulation_classic_configurations(tmp_path: Path, extra: str) -> None:
    argv = f"--iterations 4 --users 10000 --initial_actions 30 {extra}".split()
    quick = [*QUICK, "--iterations", "2", "--users", "300", "--initial_actions", "10", "--bnn_mc_samples", "5"]
    ok(run_example("run_full_simulation.py", *argv, *quick, "--results_dir", "r", cwd=tmp_path, timeout=300))
    run = next((tmp_path / "r").glob("simulation_*"))
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["per_iteration"]["deployed_value"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["neural", "compare_all"])
def test_preference_model_original_commands(tmp_path: Path, model_type: str) -> None:
    argv = ["--model_type", model_type, "--users", "500", "--embedder", "hashing", "--evaluation_users", "300"]
    out = ok(run_example("test_preference_model.py", *argv, cwd=tmp_path, timeout=300))
    names = ["neural"] if model_type == "neural" else ["linear", "neural", "lightgbm", "gaussian_process"]
    for name in names:
        assert name in out


# --------------------------------------------------------------------------- issue-10 examples


def test_reproduce_episode_by_seed(tmp_path: Path) -> None:
    out = ok(run_example("reproduce_episode_by_seed.py", cwd=tmp_path))
    for env_id in ("Targeting-v0", "BankDesign-v0"):
        assert f"{env_id}: seed 7 -> " in out
    assert out.count("identical: True") == 2 and out.count("differs: True") == 2
    hashes = re.findall(r"seed 7 -> ([0-9a-f]{16})\s+again -> ([0-9a-f]{16})", out)
    assert len(hashes) == 2 and all(a == b for a, b in hashes)
    assert "reproducible: yes" in out


def test_bank_design_on_lifetimes(tmp_path: Path) -> None:
    argv = "--seeds 2 --users 60 --horizon 6 --iterations 1 --pool 40".split()
    out = ok(run_example("bank_design_on_lifetimes.py", *argv, cwd=tmp_path))
    for designer in ("generative", "random"):
        rows = re.findall(rf"^  {designer}\s+(\d+)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, flags=re.M)
        assert [int(r[0]) for r in rows] == [1, 2, 1, 2], out  # two iterations on each of the two worlds
        for _, clicks, unsubscribed, emails in rows:
            assert float(clicks) > 0.0 and 0.0 <= float(unsubscribed) <= 1.0 and 1.0 <= float(emails) <= 6.0
    assert "generative - random, paired by seed (2 seeds)" in out


def test_train_sb3_on_retention(tmp_path: Path) -> None:
    out = ok(run_example("train_sb3_on_retention.py", "--timesteps", "2048", "--subscribers", "100", cwd=tmp_path))
    rows = {li.split("  ")[0]: li.split()[-3:] for li in out.splitlines()[1:]}
    assert set(rows) == {"oracle-myopic", "every 2 weeks", "LinUCB", "PPO (2,048)"}
    for clicks, unsubscribed, emails in rows.values():
        assert 0.0 <= float(clicks) <= 26 and 0.0 <= float(unsubscribed) <= 1.0 and 0.0 <= float(emails) <= 26


@pytest.mark.slow
def test_custom_targeting_agent(tmp_path: Path) -> None:
    out = ok(run_example("custom_targeting_agent.py", "--users", "300", "--results_dir", "r", cwd=tmp_path))
    assert "thompson (yours)" in out and "linucb" in out
    assert "custom_targeting_agent:ThompsonSamplingAgent regret" in out
    runs = sorted((tmp_path / "r").glob("simulation_*"))
    assert len(runs) == 2
    strategies = {json.loads((r / "simulation_config.json").read_text())["agent"]["name"] for r in runs}
    assert strategies == {"custom_targeting_agent:ThompsonSamplingAgent", "linucb"}
    regrets = [float(x) for x in re.findall(r"mean (\d\.\d+)", out)]
    assert len(regrets) == 2 and all(0.0 <= r < 1.0 for r in regrets)


@pytest.mark.slow
def test_tensorboard_walkthrough(tmp_path: Path) -> None:
    out = ok(run_example("tensorboard_walkthrough.py", "--users", "200", "--results_dir", "tb_runs", cwd=tmp_path))
    run = next((tmp_path / "tb_runs").glob("tensorboard_walkthrough_*"))
    assert list((run / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((run / "summary.json").read_text())
    line = next(li for li in out.splitlines() if li.strip().startswith("optimizer/bank_value"))
    printed = [float(v.split(":")[1]) for v in line.split(maxsplit=1)[1].split(", ")]
    assert printed == pytest.approx(summary["per_iteration"]["bank_value"], abs=1e-4)
    assert "env/company_reward" in out and "tensorboard --logdir tb_runs" in out


@pytest.mark.slow
def test_custom_reward_model(tmp_path: Path) -> None:
    out = ok(run_example("custom_reward_model.py", "--users", "1000", cwd=tmp_path, timeout=300))
    rows = {li.strip().split("  ")[0]: li for li in out.splitlines() if "/" in li and li.startswith("  ")}
    assert {"keep the bank", "linear (built in)", "quadratic_logit (yours)"} <= rows.keys()
    values = re.findall(r"(\d\.\d+)/(\d\.\d+)", rows["quadratic_logit (yours)"])
    assert len(values) == 3  # the initial bank and two designed banks
    assert all(0.0 < float(served) <= float(bank) + 1e-9 for bank, served in values)


@pytest.mark.slow
def test_bank_design_with_catalog_wrapper(tmp_path: Path) -> None:
    argv = "--timesteps 128 --eval-episodes 3 --users 60".split()
    out = ok(run_example("bank_design_with_catalog_wrapper.py", *argv, cwd=tmp_path, timeout=300))
    before = float(re.search(r"before training: (\d\.\d+)", out).group(1))
    after = float(re.search(r"after 128 steps: (\d\.\d+)", out).group(1))
    assert 0.0 < before < 1.0 and 0.0 < after < 1.0
    assert out.count("\n  - ") == 6  # the bank of 6 texts the trained policy picks


# --------------------------------------------------------------------------- other people's examples


@pytest.mark.slow
def test_agent_regret_table(tmp_path: Path) -> None:
    out = ok(run_example("agent_regret_table.py", "--users", "300", "--seeds", "2", cwd=tmp_path))
    assert "linucb" in out and "oracle" in out


@pytest.mark.slow
def test_compare_reward_models_quick(tmp_path: Path) -> None:
    out = ok(run_example("compare_reward_models.py", "--quick", "--seeds", "1", "--models", "linear", cwd=tmp_path))
    assert "linear" in out


@pytest.mark.slow
def test_train_sb3_on_targeting(tmp_path: Path) -> None:
    out = ok(run_example("train_sb3_on_targeting.py", cwd=tmp_path, timeout=300))
    assert "run folder:" in out and list((tmp_path / "results").glob("train_ppo_*/model.zip"))


@pytest.mark.slow
def test_rllib_ppo_targeting(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    argv = "--iterations 1 --users-per-episode 50".split()
    ok(run_example("rllib_ppo_targeting.py", *argv, cwd=tmp_path, timeout=300))


def test_sb3_native_vec_env(tmp_path: Path) -> None:
    argv = "--timesteps 512 --num-envs 4 --users-per-episode 32".split()
    out = ok(run_example("sb3_native_vec_env.py", *argv, cwd=tmp_path, timeout=300))
    values = {k: float(v) for k, v in re.findall(r"(\w+): mean click probability (\d\.\d+)", out)}
    assert set(values) == {"policy", "random", "oracle"}
    assert values["oracle"] >= max(values["policy"], values["random"])
    assert "user-steps/s: native" in out


def test_maskable_ppo(tmp_path: Path) -> None:
    pytest.importorskip("sb3_contrib")
    out = ok(run_example("maskable_ppo.py", "--timesteps", "256", cwd=tmp_path, timeout=300))
    assert "padded slots chosen 0," in out and "int8 mask in obs: int8" in out


def test_mlflow_tracking(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    out = ok(run_example("mlflow_tracking.py", "--users", "200", "--results_dir", "r", cwd=tmp_path, timeout=300))
    assert "mlflow run " in out and out.count("deployed_value: ") == 1
    line = next(li for li in out.splitlines() if "deployed_value:" in li)
    assert len(line.split(":")[1].split(",")) == 2  # one value per iteration
    assert (tmp_path / "r" / "mlruns").is_dir()
