"""Red team: bad files, flags, plugins, data folders and run folders at the command line, as a hostile user tries them.

Every row runs ``actionbank`` in-process and must end with exit code 2 and ONE line on stderr that names what was
wrong (the file or field, and the rule or the value), never a traceback, and must leave the folders it was pointed at
as they were (a snapshot of the row's folder is compared before and after). Rows that need a data folder or a finished
run get a fresh copy of one built once per module. Signals at exact points and a full disk are in
``test_crash_safety.py``; ``--overwrite`` targets are here (rows ``overwrite-*``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actionbank_env.cli import main
from tests.reliability.conftest import snapshot

SMALL = [
    "--embedder",
    "hashing",
    "--users",
    "100",
    "--iterations",
    "2",
    "--initial-actions",
    "5",
    "--evaluation-users",
    "100",
    "--no-report",
    "--no-tensorboard",
]


@dataclass
class Env:
    """What a row can use: its own scratch folder (``tmp``) with fresh copies of a data folder and a finished run."""

    tmp: Path
    data: Path
    run: Path
    plugins: Path

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generate-data folder and a finished run of it (built once; rows get copies)."""
    root = tmp_path_factory.mktemp("red_team")
    data, run = root / "data", root / "run"
    assert (
        main(["generate-data", "--embedder", "hashing", "--users", "100", "--iterations", "2", "--out", str(data)]) == 0
    )
    args = [
        "run-from-data",
        "--quiet",
        "--data_dir",
        str(data),
        "--out",
        str(run),
        "--action-pool-size",
        "40",
        "--action-bank-size",
        "3",
        "--reward-model-type",
        "linear",
        "--n-representative-users",
        "32",
        "--evaluation-users",
        "100",
        "--no-report",
        "--no-tensorboard",
    ]
    assert main(args) == 0
    return data, run


PLUGINS = {
    "rt_syntax.py": "class Agent(:\n    pass\n",
    "rt_missing_dep.py": "import not_a_module_anyone_has_xyz\n\nclass Agent:\n    pass\n",
    "rt_not_an_agent.py": "class Agent:\n    '''Takes no context.'''\n",
    "rt_raises.py": "raise RuntimeError('plugin import failed on purpose')\n",
}


@pytest.fixture
def env(
    built: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Env:
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(built[0], data)
    shutil.copytree(built[1], run)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name, code in PLUGINS.items():
        (plugins / name).write_text(code)
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    capsys.readouterr()
    return Env(tmp_path, data, run, plugins)


def _edit_csv(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")


def _set_cell(column: str, value: str, row: int = 0) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        header = lines[0].split(",")
        cells = lines[row + 1].split(",")
        cells[header.index(column)] = value
        lines[row + 1] = ",".join(cells)
        return lines

    return edit


def _bank_text(env: Env, text: str) -> None:
    path = env.data / "initialization" / "action_bank.json"
    bank = json.loads(path.read_text())
    bank["actions"][0]["text"] = text
    path.write_text(json.dumps(bank))


def _from_data(env: Env, *extra: str) -> list[str]:
    return ["run-from-data", "--quiet", "--data_dir", str(env.data), "--out", str(env.tmp / "new"), *extra]


def _simulate(env: Env, *extra: str) -> list[str]:
    return ["simulate", "--quiet", "--out", str(env.tmp / "new"), *SMALL, *extra]


def _train(*extra: str) -> list[str]:
    """``train`` of PPO for 10 steps on a hashing world, with ``extra`` flags."""
    return ["train", "--algo", "ppo", "--total-timesteps", "10", "--env-kwargs", '{"embedder": "hashing"}', *extra]


def _config(env: Env, content: str | bytes) -> list[str]:
    return ["simulate", "--quiet", "--out", str(env.tmp / "new"), "--config", str(env.write("run.json", content))]


def _after(prepare: Callable[[Env], object], argv: Callable[[Env], list[str]]) -> Callable[[Env], list[str]]:
    """A row that first damages something (``prepare``), then runs ``argv``."""

    def make(env: Env) -> list[str]:
        prepare(env)
        return argv(env)

    return make


def _users(iteration: int, edit: Callable[[list[str]], list[str]]) -> Callable[[Env], list[str]]:
    """``run-from-data`` after editing the lines of the data folder's ``iteration_<t>/users.csv``."""
    return _after(lambda e: _edit_csv(e.data / f"iteration_{iteration}/users.csv", edit), _from_data)


# (id, argv from the row's Env (may prepare files), substrings the one stderr line must hold)
Row = tuple[str, Callable[[Env], list[str]], tuple[str, ...]]
ROWS: list[Row] = [
    # ------------------------------------------------------------------ --config files
    ("config-not-json", lambda e: _config(e, "{users: 3"), ("run.json", "not valid JSON")),
    ("config-not-utf8", lambda e: _config(e, b"\xff\xfe{\x00}"), ("run.json", "UTF-8")),
    ("config-deeply-nested", lambda e: _config(e, "[" * 100_000 + "]" * 100_000), ("run.json", "nested")),
    ("config-4300-digit-int", lambda e: _config(e, '{"users_per_iteration": ' + "9" * 5000 + "}"), ("run.json",)),
    ("config-a-list", lambda e: _config(e, "[1, 2]"), ("run.json", "object")),
    ("config-empty-file", lambda e: _config(e, ""), ("run.json", "not valid JSON")),
    ("config-unknown-key", lambda e: _config(e, '{"version": 2, "usres": 3}'), ("usres",)),
    ("config-wrong-type", lambda e: _config(e, '{"users_per_iteration": "ten"}'), ("users_per_iteration", "ten")),
    ("config-nan", lambda e: _config(e, '{"agent": {"name": "linucb", "alpha": NaN}}'), ("alpha",)),
    ("config-a-folder", lambda e: ["simulate", "--config", str(e.tmp)], ("--config", "is a folder")),
    ("config-missing", lambda e: ["simulate", "--config", str(e.tmp / "nope.json")], ("--config", "no such file")),
    # ------------------------------------------------------------------ flags: values and sizes
    ("users-zero", lambda e: _simulate(e, "--users", "0"), ("users_per_iteration", "0")),
    ("users-negative", lambda e: _simulate(e, "--users", "-5"), ("users_per_iteration",)),
    ("users-float", lambda e: _simulate(e, "--users", "1e11"), ("users_per_iteration", "1e11")),
    ("users-huge", lambda e: _simulate(e, "--users", "100000000000"), ("users_per_iteration", "<=")),
    ("evaluation-users-huge", lambda e: _simulate(e, "--evaluation-users", "100000000000"), ("evaluation_users",)),
    ("iterations-huge", lambda e: _simulate(e, "--iterations", "100000000"), ("iterations", "<=")),
    ("initial-actions-huge", lambda e: _simulate(e, "--initial-actions", "10000"), ("initial_actions",)),
    ("pool-size-huge", lambda e: _simulate(e, "--action-pool-size", "1000000000"), ("action_pool_size", "<=")),
    ("seed-negative", lambda e: _simulate(e, "--seed", "-1"), ("seed",)),
    ("seed-not-int", lambda e: _simulate(e, "--seed", "1.5"), ("seed", "1.5")),
    ("alpha-negative", lambda e: _simulate(e, "--alpha", "-1"), ("alpha", "-1")),
    ("alpha-inf", lambda e: _simulate(e, "--alpha", "inf"), ("alpha",)),
    ("name-300-chars", lambda e: ["simulate", *SMALL, "--name", "x" * 300], ("name",)),
    ("name-a-path", lambda e: ["simulate", *SMALL, "--name", "../../escape"], ("name",)),
    ("results-dir-a-file", lambda e: ["simulate", *SMALL, "--results-dir", str(e.write("f", "x"))], ("results",)),
    ("company-params-not-json", lambda e: _simulate(e, "--company-params", "{alpha: 1"), ("not valid JSON",)),
    ("company-params-a-list", lambda e: _simulate(e, "--company-params", "[1]"), ("JSON object",)),
    ("company-params-unknown-key", lambda e: _simulate(e, "--company-params", '{"bogus": 1}'), ("bogus",)),
    ("abbreviated-flag", lambda e: _simulate(e, "--iter", "3"), ("unrecognized arguments", "--iter")),
    ("unknown-subcommand", lambda e: ["frobnicate"], ("invalid choice",)),
    ("embedder-unknown", lambda e: _simulate(e, "--embedder", "bogus"), ("embedder", "bogus")),
    ("ground-truth-unknown", lambda e: _simulate(e, "--ground-truth", "bogus"), ("ground_truth", "bogus")),
    ("reward-model-unknown", lambda e: _simulate(e, "--reward-model-type", "lightgmb"), ("lightgbm",)),
    # ------------------------------------------------------------------ plugins (module:Class)
    ("plugin-os-system", lambda e: _simulate(e, "--agent", "os:system"), ("os:system",)),
    ("plugin-builtins-object", lambda e: _simulate(e, "--agent", "builtins:object"), ("builtins:object",)),
    ("plugin-no-module", lambda e: _simulate(e, "--agent", "no_such_mod_xyz:Agent"), ("no_such_mod_xyz",)),
    ("plugin-no-attribute", lambda e: _simulate(e, "--agent", "rt_not_an_agent:Nope"), ("rt_not_an_agent:Nope",)),
    ("plugin-syntax-error", lambda e: _simulate(e, "--agent", "rt_syntax:Agent"), ("rt_syntax",)),
    ("plugin-missing-dependency", lambda e: _simulate(e, "--agent", "rt_missing_dep:Agent"), ("rt_missing_dep",)),
    ("plugin-raises-on-import", lambda e: _simulate(e, "--agent", "rt_raises:Agent"), ("rt_raises",)),
    ("plugin-not-an-agent", lambda e: _simulate(e, "--agent", "rt_not_an_agent:Agent"), ("rt_not_an_agent",)),
    ("plugin-designer-os-system", lambda e: _simulate(e, "--designer", "os:system"), ("os:system",)),
    ("plugin-reward-model-dict", lambda e: _simulate(e, "--reward-model-type", "builtins:dict"), ("builtins:dict",)),
    ("plugin-bad-spec", lambda e: _simulate(e, "--agent", "a:b:c"), ("a:b:c",)),
    # ------------------------------------------------------------------ --out and --overwrite
    ("out-a-file", lambda e: ["simulate", *SMALL, "--out", str(e.write("f", "x"))], ("--out", "is a file")),
    ("out-too-long", lambda e: ["simulate", *SMALL, "--out", str(e.tmp / ("x" * 300))], ("--out", "too long")),
    ("out-not-empty", lambda e: ["simulate", *SMALL, "--out", str(e.run)], ("already exists", "--overwrite")),
    ("overwrite-cwd", lambda e: ["simulate", *SMALL, "--out", ".", "--overwrite"], ("working directory",)),
    ("overwrite-home", lambda e: ["simulate", *SMALL, "--out", str(e.tmp), "--overwrite"], ("refuses",)),
    ("overwrite-ancestor", lambda e: ["simulate", *SMALL, "--out", "..", "--overwrite"], ("working directory",)),
    (
        "overwrite-user-folder",
        lambda e: ["simulate", *SMALL, "--out", str(e.plugins), "--overwrite"],
        ("not a folder",),
    ),
    ("overwrite-symlink", lambda e: _symlink_out(e), ("symbolic link",)),
    (
        "overwrite-then-bad-agent",
        lambda e: ["simulate", *SMALL, "--out", str(e.run), "--overwrite", "--agent", "x"],
        ("agent",),
    ),
    # ------------------------------------------------------------------ --resume
    ("resume-missing", lambda e: ["simulate", "--resume", str(e.tmp / "nope")], ("not a run folder",)),
    ("resume-a-file", lambda e: ["simulate", "--resume", str(e.write("f", "x"))], ("not a run folder",)),
    ("resume-finished", lambda e: ["simulate", "--resume", str(e.run)], ("already complete",)),
    ("resume-with-users", lambda e: ["simulate", "--resume", str(e.run), "--users", "5"], ("--resume", "--users")),
    ("resume-with-seed", lambda e: ["simulate", "--resume", str(e.run), "--seed", "3"], ("--resume", "--seed")),
    ("resume-with-out", lambda e: ["simulate", "--resume", str(e.run), "--out", "x"], ("--resume", "--out")),
    (
        "resume-corrupt-config",
        lambda e: _resume_with(e, "simulation_config.json", b'{"ver'),
        ("simulation_config.json",),
    ),
    (
        "resume-config-not-utf8",
        lambda e: _resume_with(e, "simulation_config.json", b"\xff\xfe"),
        ("simulation_config.json",),
    ),
    (
        "resume-config-bad-value",
        lambda e: _resume_with(e, "simulation_config.json", b'{"users": -5}'),
        ("simulation_config.json", "users_per_iteration", "-5"),
    ),
    ("resume-config-plugin", lambda e: _resume_plugin(e), ("os:system", "--trust-plugins")),
    ("resume-config-plugin-trusted", lambda e: [*_resume_plugin(e), "--trust-plugins"], ("os:system", "protocol")),
    # ------------------------------------------------------------------ data folders
    ("data-missing", lambda e: _from_data(e)[:3] + [str(e.tmp / "nope")], ("not a generate-data folder",)),
    (
        "data-config-not-json",
        _after(lambda e: e.write("data/data_config.json", "{"), _from_data),
        ("data_config.json",),
    ),
    ("data-truncated-rows", _users(1, lambda ls: ls[:51]), ("users.csv", "users_per_iteration=100", "50")),
    ("data-header-only", _users(2, lambda ls: ls[:1]), ("users.csv", "only a header")),
    ("data-empty-file", _after(lambda e: e.write("data/iteration_1/users.csv", ""), _from_data), ("not a readable",)),
    ("data-empty-user-id", _users(1, _set_cell("user_id", "")), ("users.csv", "user_id", "row 2")),
    ("data-text-user-id", _users(1, _set_cell("user_id", "abc", 3)), ("row 5", "'abc'")),
    ("data-duplicate-id", _users(1, _set_cell("user_id", "0", 1)), ("distinct", "0")),
    ("data-id-across-iterations", _users(2, _set_cell("user_id", "0")), ("iteration_1", "distinct")),
    ("data-feature-nan", _users(1, _set_cell("income_level", "nan")), ("income_level", "[0, 1]")),
    ("data-feature-out-of-range", _users(1, _set_cell("age_norm", "7")), ("age_norm", "'7.0'")),
    ("data-missing-column", _users(1, lambda ls: [",".join(x.split(",")[:-1]) for x in ls]), ("quality_focus",)),
    ("data-bank-nul", _after(lambda e: _bank_text(e, "Big\x00 sale"), _from_data), ("action_bank.json", "U+0000")),
    ("data-bank-rlo", _after(lambda e: _bank_text(e, "Big \u202esale"), _from_data), ("action_bank.json", "U+202E")),
    ("data-bank-escape", _after(lambda e: _bank_text(e, "Big \x1b[31msale"), _from_data), ("U+001B",)),
    ("data-bank-surrogate", _after(lambda e: _bank_text(e, "Big \ud800 sale"), _from_data), ("action_bank.json",)),
    ("data-claims-more-users", _after(lambda e: _claim(e, 5000), _from_data), ("users_per_iteration=5000",)),
    # ------------------------------------------------------------------ other commands
    ("report-not-a-run", lambda e: ["report", str(e.data)], ("not a run folder",)),
    (
        "report-corrupt-summary",
        _after(lambda e: e.write("run/summary.json", "{"), lambda e: ["report", str(e.run)]),
        ("summary.json",),
    ),
    (
        "compare-models-empty-click",
        _after(
            lambda e: _edit_csv(e.run / "iteration_1/observations.csv", _set_cell("click", "")),
            lambda e: ["compare-models", str(e.run), "--model-type", "linear"],
        ),
        ("observations.csv", "click"),
    ),
    ("ope-iteration-out-of-range", lambda e: ["ope", str(e.run), "--iteration", "99"], ("iteration",)),
    ("train-bad-algo", lambda e: ["train", "--algo", "ppo2", "--total-timesteps", "10"], ("ppo2",)),
    (
        "train-bad-env",
        lambda e: ["train", "--algo", "ppo", "--total-timesteps", "10", "--env", "Bogus-v0"],
        ("Bogus-v0",),
    ),
    (
        "train-env-kwargs",
        lambda e: ["train", "--algo", "ppo", "--total-timesteps", "10", "--env-kwargs", '{"bogus": 1}'],
        ("bogus",),
    ),
    (
        "train-algo-kwargs",
        lambda e: _train("--algo-kwargs", '{"bogus": 1}'),
        ("bogus",),
    ),
    ("sweep-huge-seeds", lambda e: ["sweep", "--seeds", "0-100000000", "--out", str(e.tmp / "sw")], ("--seeds",)),
    ("sweep-bad-seeds", lambda e: ["sweep", "--seeds", "abc", "--out", str(e.tmp / "sw")], ("--seeds", "abc")),
    (
        "sweep-bad-grid",
        lambda e: ["sweep", "--seeds", "0", "--grid", "nonsense", "--out", str(e.tmp / "sw")],
        ("--grid",),
    ),
    # ------------------------------------------------------------------ found by the session-11 audit
    ("ope-seed-negative", lambda e: ["ope", str(e.run), "--seed", "-1"], ("--seed", "-1")),
    (
        "ope-bank-not-utf8",
        lambda e: ["ope", str(e.run), "--bank", str(e.write("b.txt", b"\xff\xfe\x00bad"))],
        ("--bank", "UTF-8"),
    ),
    ("ope-bank-a-folder", lambda e: ["ope", str(e.run), "--bank", str(e.plugins)], ("--bank", "folder")),
    (
        "report-new-bank-not-a-bank",
        _after(
            lambda e: e.write("run/iteration_2/new_action_bank.json", '{"actions": 5}'),
            lambda e: ["report", str(e.run)],
        ),
        ("new_action_bank.json", "list of actions", "int"),
    ),
    (
        "ope-new-bank-not-a-bank",
        _after(
            lambda e: e.write("run/iteration_2/new_action_bank.json", '{"actions": [3]}'), lambda e: ["ope", str(e.run)]
        ),
        ("new_action_bank.json", "actions[0]"),
    ),
    (
        "resume-new-bank-not-a-bank",
        lambda e: _resume_with(e, "iteration_1/new_action_bank.json", b'{"actions": 5}'),
        ("new_action_bank.json", "list of actions"),
    ),
    (
        "report-log-without-columns",
        _after(lambda e: e.write("run/iteration_2/observations.csv", "x,y\n1,2\n"), lambda e: ["report", str(e.run)]),
        ("observations.csv", "columns"),
    ),
    (
        "report-metrics-not-utf8",
        _after(lambda e: e.write("run/metrics.csv", b"\xff\xfe"), lambda e: ["report", str(e.run)]),
        ("metrics.csv", "UTF-8"),
    ),
    ("config-v1-company-params-a-string", lambda e: _config(e, '{"company_params": "x"}'), ("company_params", "str")),
    ("config-v1-company-params-a-list", lambda e: _config(e, '{"company_params": [1, 2]}'), ("company_params", "list")),
    (
        "sweep-seed-20-digits",
        lambda e: ["sweep", "--seeds", "0-" + "9" * 20, "--out", str(e.tmp / "sw")],
        ("--seeds", "63-bit"),
    ),
    (
        "benchmark-huge-seeds",
        lambda e: ["benchmark", "--seeds", "0-100000000", "--out", str(e.tmp / "bench")],
        ("--seeds", "at most"),
    ),
    (
        "sweep-out-foreign",
        lambda e: ["sweep", "--seeds", "0", "--out", str(e.plugins)],
        ("--out", "not a sweep folder"),
    ),
    ("sweep-out-a-run", lambda e: ["sweep", "--seeds", "0", "--out", str(e.run)], ("--out", "not a sweep folder")),
    (
        "benchmark-out-foreign",
        lambda e: ["benchmark", "--seeds", "0", "--out", str(e.data)],
        ("--out", "not a benchmark folder"),
    ),
    ("compare-models-log-users-zero", lambda e: ["compare-models", "--log-users", "0"], ("--log-users", "got 0")),
    (
        "compare-models-log-users-with-run",
        lambda e: ["compare-models", str(e.run), "--log-users", "50"],
        ("--log-users", "run folder"),
    ),
    (
        "world-card-n-users-zero",
        lambda e: ["world-card", "--embedder", "hashing", "--n-users", "0"],
        ("n_users",),
    ),
    (
        "benchmark-bad-grid-before-any-trial",
        lambda e: [
            "benchmark",
            "--seeds",
            "0",
            "--designers",
            "generative,keep",
            "--grid",
            "designer.reward_model=nope,linear",
            "--set",
            "embedder=hashing",
            "--out",
            str(e.tmp / "bench"),
        ],
        ("nope",),
    ),
    (
        "benchmark-grid-without-generative",
        lambda e: [
            "benchmark",
            "--seeds",
            "0",
            "--designers",
            "keep,random",
            "--grid",
            "designer.reward_model=linear,lightgbm",
            "--out",
            str(e.tmp / "bench"),
        ],
        ("--grid", "generative"),
    ),
    (
        "train-out-not-empty",
        lambda e: _train("--out", str(e.run)),
        ("already exists", "new or empty --out"),
    ),
    ("out-empty-string", lambda e: ["simulate", *SMALL, "--out", ""], ("--out", "non-empty path")),
    (
        "train-algo-kwargs-seed",
        lambda e: ["train", "--algo", "ppo", "--total-timesteps", "10", "--algo-kwargs", '{"seed": 1}'],
        ("algo_kwargs", "'seed'"),
    ),
    (
        "train-algo-kwargs-invalid",
        lambda e: _train("--algo-kwargs", '{"n_steps": -1}'),
        ("algo_kwargs", "not valid for PPO"),
    ),
    ("cache-dir-a-file", lambda e: _cache_file(e), ("ACTIONBANK_CACHE_DIR",)),
    (
        "cache-corrupt-sqlite",
        _after(
            lambda e: e.write("cache/embeddings.sqlite", b"not a database " * 100),
            lambda e: _simulate(e, "--embedder", "minilm"),
        ),
        ("embeddings.sqlite", "not an SQLite database"),
    ),
]


def _symlink_out(env: Env) -> list[str]:
    link = env.tmp / "link"
    link.symlink_to(env.run, target_is_directory=True)
    return ["simulate", *SMALL, "--out", str(link), "--overwrite"]


def _resume_with(env: Env, name: str, content: bytes) -> list[str]:
    (env.run / name).write_bytes(content)
    (env.run / "summary.json").unlink()
    return ["simulate", "--resume", str(env.run)]


def _resume_plugin(env: Env) -> list[str]:
    path = env.run / "simulation_config.json"
    config = json.loads(path.read_text())
    config["agent"]["name"] = "os:system"
    path.write_text(json.dumps(config))
    (env.run / "summary.json").unlink()
    return ["simulate", "--resume", str(env.run)]


def _claim(env: Env, users: int) -> None:
    path = env.data / "data_config.json"
    config = json.loads(path.read_text())
    config["settings"]["users_per_iteration"] = users
    path.write_text(json.dumps(config))


def _cache_file(env: Env) -> list[str]:
    import os

    os.environ["ACTIONBANK_CACHE_DIR"] = str(env.write("cachefile", "x"))  # restored by the env fixture's monkeypatch
    return _simulate(env, "--embedder", "minilm")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("make_argv", "parts"), [pytest.param(r[1], r[2], id=r[0]) for r in ROWS])
def test_red_team_input_is_exit_2_and_one_line(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_argv: Callable[[Env], list[str]],
    parts: tuple[str, ...],
) -> None:
    monkeypatch.setenv("ACTIONBANK_CACHE_DIR", str(env.tmp / "cache"))
    argv = make_argv(env)
    before = snapshot(env.tmp)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "note:" not in line]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    after = snapshot(env.tmp)
    changed = sorted(
        k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and "/cache/" not in f"/{k}"
    )
    assert changed == [], f"the refused command changed {changed[:5]}"


def test_the_red_team_table_is_large_and_distinct() -> None:
    ids = [r[0] for r in ROWS]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


# --------------------------------------------------------------------------------------------------------------
# A real small full disk: a tmpfs of 240 KiB fills in the middle of the run; grown, --resume completes it
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 240 KiB tmpfs (needs root and a kernel that allows the mount; skipped elsewhere)."""
    import os
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=240k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.timeout(120)
def test_a_real_full_disk_mid_run_is_one_line_and_resume_completes_it(
    small_disk: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    small_run_reference: Path,
    shared_worlds: None,
) -> None:
    import subprocess

    from tests.reliability.conftest import SMALL_RUN, comparable_files, temp_files

    run = small_disk / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL_RUN.items() if not isinstance(v, bool)]
    flags += [f"--{'' if v else 'no-'}{k.replace('_', '-')}" for k, v in SMALL_RUN.items() if isinstance(v, bool)]
    code = main(["simulate", "--quiet", "--out", str(run), *flags])
    err = capsys.readouterr().err
    assert code == 1, err  # the disk's fault, not the user's input
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0] and "--resume" in lines[0], err
    assert temp_files(run) == [] and not (run / "summary.json").exists()
    assert (run / "simulation_config.json").is_file() and (run / "iteration_1").is_dir()  # it stopped mid-run
    for path in run.rglob("*.json"):
        json.loads(path.read_text())  # nothing half-written
    grown = subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], capture_output=True)
    assert grown.returncode == 0, grown.stderr
    assert main(["simulate", "--resume", str(run), "--quiet"]) == 0
    expected, got = comparable_files(small_run_reference), comparable_files(run)
    assert expected.keys() == got.keys()
    for key in expected:
        assert expected[key] == got[key], key


def test_overwrite_replaces_a_finished_run_only_once_the_new_one_is_complete(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new run is built in a hidden sibling; the old one is intact until the swap, and nothing is left beside."""
    from actionbank_env import experiment

    old = snapshot(env.run)
    siblings_before = sorted(p.name for p in env.run.parent.iterdir())
    seen: list[bool] = []
    real_commit = experiment.RunFolder.commit

    def commit(self: experiment.RunFolder) -> Path:
        seen.append(snapshot(env.run) == old)  # the old run is untouched until the very end
        return real_commit(self)

    monkeypatch.setattr(experiment.RunFolder, "commit", commit)
    args = [
        "run-from-data",
        "--quiet",
        "--data_dir",
        str(env.data),
        "--out",
        str(env.run),
        "--overwrite",
        "--designer",
        "keep",
        "--evaluation-users",
        "50",
        "--no-report",
        "--no-tensorboard",
    ]
    assert main(args) == 0, capsys.readouterr().err
    assert seen == [True]
    assert json.loads((env.run / "simulation_config.json").read_text())["designer"]["name"] == "keep"
    assert (env.run / "summary.json").is_file()
    assert sorted(p.name for p in env.run.parent.iterdir()) == siblings_before  # no staging folder left
