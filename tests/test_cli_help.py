"""Every help screen of the ``actionbank`` command renders (argparse %-formats help strings lazily, so a stray
``%`` in one subcommand's help only fails when the top-level help is printed)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from actionbank_env.cli import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return sorted(actions[0].choices)


def test_there_are_subcommands_to_check() -> None:
    assert {"simulate", "sweep", "report", "train"} <= set(_subcommands())


@pytest.mark.parametrize("argv", [["--help"], ["-h"]] + [[name, "--help"] for name in _subcommands()])
def test_help_renders_and_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: actionbank")


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in _subcommands():
        assert name in out


def test_bare_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: actionbank" in capsys.readouterr().out


def test_module_entry_point_help_exits_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "actionbank_env", "-h"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: actionbank" in proc.stdout


def test_report_compare_takes_several_folders_per_flag_and_repeats() -> None:
    """``report R --compare A B`` (as the README writes it) and ``--compare A --compare B`` both give every folder."""
    from pathlib import Path

    argv = ["report", "R", "--compare", "A", "B", "--compare", "C"]
    args = build_parser(argv).parse_args(argv)
    assert args.compare == [Path("A"), Path("B"), Path("C")]
    assert build_parser(["report", "R"]).parse_args(["report", "R"]).compare == []


def test_a_setting_a_command_does_not_take_is_noted_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    """world-card takes only the world's settings: a run setting is ignored with a note that says so."""
    argv = ["world-card", "--users", "5"]
    build_parser(argv).parse_args(argv)
    assert "--users is ignored: it sets users_per_iteration, which this command does not take." in capsys.readouterr().err
