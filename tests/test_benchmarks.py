"""Every benchmark script still imports against the package, and those with a command line print their help.

Benchmarks are not run by the suite (they take minutes to hours), so an API change would otherwise break them
silently: the configuration-tree redesign left two of them importing a runner helper that no longer existed.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

BENCHMARKS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py") if not p.stem.startswith("_")
)


def test_there_are_benchmarks() -> None:
    assert {"bench_ope", "bench_core", "world_cards"} <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_imports_and_its_help_renders(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    main = getattr(module, "main", None)
    if main is None or "argv" not in inspect.signature(main).parameters:
        return  # a script without a command line of its own: importing it is the check
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")
