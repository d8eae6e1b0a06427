"""The direction of imports (ARCHITECTURE.md §2), checked with ast; and import-time hygiene."""

from __future__ import annotations

import ast
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


def test_import_is_fast_and_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import actionbank_env, agents, optimizers; "
        "dt = time.perf_counter() - t; heavy = [m for m in ('torch', 'lightgbm', 'sentence_transformers', 'openai', "
        "'sklearn', 'ray', 'stable_baselines3', 'pandas', 'numba') if m in sys.modules]; print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    seconds, heavy = out.split(" ", 1)
    assert heavy.strip() == "[]", f"heavy modules imported at package import: {heavy}"
    assert float(seconds) < 1.0
