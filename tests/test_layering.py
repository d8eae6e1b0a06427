"""The direction of imports (the table FORBIDDEN below: the pure core imports no Gymnasium, torch, agent or designer),
checked with ast; and import-time hygiene."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package prefix -> prefixes it must never import (at any depth, lazily or not)
FORBIDDEN = {
    "actionbank_env.core": (
        "gymnasium",
        "agents",
        "optimizers",
        "torch",
        "stable_baselines3",
        "actionbank_env.envs",
        "actionbank_env.experiment",
        "actionbank_env.cli",
        "ray",
    ),
    "actionbank_env": ("agents", "optimizers"),
    "agents": ("optimizers", "actionbank_env.envs", "actionbank_env.experiment", "actionbank_env.cli"),
    "optimizers": ("agents", "actionbank_env.envs", "actionbank_env.experiment", "actionbank_env.cli"),
}
# Composition roots may wire the three packages together, by string through the registry.
EXEMPT = {"actionbank_env.cli", "actionbank_env.experiment"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _sources() -> list[Path]:
    return sorted(p for pkg in ("actionbank_env", "agents", "optimizers") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_the_right_way(path: Path) -> None:
    module = _module_name(path)
    if module in EXEMPT:
        return
    rules = [banned for prefix, banned in FORBIDDEN.items() if module == prefix or module.startswith(prefix + ".")]
    for imported in _imports(path):
        for banned in (b for group in rules for b in group):
            assert not (imported == banned or imported.startswith(banned + ".")), (
                f"{module} imports {imported}, which breaks the layering rule against {banned}"
            )


#: What the runner must not touch: it asks the env (reset/step/info) and the designer (the Proposal), and leaves the
#: ground truth to actionbank_env.evaluation.
RUNNER_FORBIDDEN_ATTRIBUTES = {
    "click_prob",
    "last_pool_",
    "reward_model_",
    "memory",
    "history",
    "users_history",
    "results",
    "resolve_bank",
}
#: File names of a run folder (and of the folders the other workflows write) are spelled only in results.py.
RUN_FOLDER_NAME = re.compile(r"^(iteration_\{|initialization/)|\w\.(json|csv|html|txt|zip)$")  # a name, not a suffix
FILE_NAME_EXEMPT = {"actionbank_env.results"}


def _attributes(path: Path) -> set[str]:
    return {n.attr for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Attribute)}


def test_the_runner_uses_reset_step_info_and_the_proposal() -> None:
    used = _attributes(ROOT / "actionbank_env" / "experiment.py") & RUNNER_FORBIDDEN_ATTRIBUTES
    assert not used, f"experiment.py reaches into the env, the designer or the ground truth: {sorted(used)}"
    assert "getattr(" not in (ROOT / "actionbank_env" / "experiment.py").read_text(encoding="utf-8")


def test_only_evaluation_reads_the_ground_truth_outside_core() -> None:
    readers = {
        _module_name(p)
        for p in _sources()
        if "click_prob" in _attributes(p)
        and not _module_name(p).startswith(("actionbank_env.core", "actionbank_env.envs"))
    }
    # The oracle designer and oracle agent are evaluation-only components that are given the truth on purpose.
    assert readers <= {"actionbank_env.evaluation", "optimizers.baselines", "agents.baselines"}, readers


@pytest.mark.parametrize(
    "path", sorted((ROOT / "actionbank_env").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_run_folder_file_names_live_in_results(path: Path) -> None:
    module = _module_name(path)
    if module in FILE_NAME_EXEMPT or module.startswith("actionbank_env.core"):
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    names = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings and " " not in n.value
    ]
    spelled = [name for name in names if RUN_FOLDER_NAME.search(name)]
    assert not spelled, f"{module} spells run-folder file names {spelled}; use the constants of actionbank_env.results"


def test_no_top_level_module_shadows_the_standard_library() -> None:
    shadows = sorted(
        _module_name(p)
        for p in _sources()
        if p.stem in sys.stdlib_module_names and p.parent.name in ("actionbank_env", "agents", "optimizers")
    )
    assert not shadows, f"modules named like a standard-library module: {shadows}"


def test_only_the_chat_client_and_the_embedder_talk_to_openai() -> None:
    talkers = {
        _module_name(p)
        for p in _sources()
        if any(i.startswith("actionbank_env.core.openai_api") or i == "openai" for i in _imports(p))
    }
    assert talkers <= {
        "actionbank_env.core.copywriting.openai_chat",
        "actionbank_env.core.embedders",
        "actionbank_env.core.openai_api",
        "actionbank_env.provenance",  # only the key-shape pattern, to redact the recorded command line
    }, talkers


def test_import_is_light() -> None:
    # What keeps the import fast is that no heavy library loads with it. No wall-clock bound: one of 1 s failed
    # at load 15 (2.4 s); timings belong in benchmarks/, not in tests.
    code = (
        "import sys; import actionbank_env, agents, optimizers; "
        "heavy = [m for m in ('torch', 'lightgbm', 'sentence_transformers', 'openai', "
        "'sklearn', 'ray', 'stable_baselines3', 'pandas', 'numba') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]", f"heavy modules imported at package import: {out.strip()}"
