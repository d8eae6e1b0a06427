"""Progress bars: drawn only inside a runner's scope and only on a terminal."""

from __future__ import annotations

import io
import sys

import pytest

from actionbank_env.core import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_unless_requested_and_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert not progress.requested() and not progress.enabled()
    with progress.bar(3, "quiet") as quiet:
        quiet.update(1)
        quiet.set_description("still quiet")
    assert sys.stderr.getvalue() == ""
    with progress.progress_bars(True):
        assert progress.enabled()
        bar = progress.bar(3, "loading model", unit="model")
        bar.update(3)
        bar.close()
    assert "loading model" in sys.stderr.getvalue()
    assert not progress.requested()  # the scope ends with the block


def test_requested_but_not_a_terminal_stays_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with progress.progress_bars(True):
        assert progress.requested() and not progress.enabled()
        progress.bar(2, "hidden").update(2)
    assert sys.stderr.getvalue() == ""


def test_scopes_nest_and_restore() -> None:
    with progress.progress_bars(True):
        with progress.progress_bars(False):
            assert not progress.requested()
        assert progress.requested()
