"""Crash safety: atomic writes under injected failures, a full disk during a run, an embedding outage mid-run.

Every failure must leave the old content of a file in place, no temp file behind, and a run folder that
``--resume`` completes to exactly the files of an uninterrupted run (the comparison of
``tests/test_experiment.py``: every results file except ``meta.json`` and TensorBoard events, JSON without
durations).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest

from actionbank_env.cli import main
from actionbank_env.config import SimulationConfig
from actionbank_env.core.embedders import HashingEmbedder
from actionbank_env.core.io import atomic_write, atomic_write_json, atomic_write_text
from actionbank_env.core.observations import ObservationLog
from actionbank_env.errors import ServiceError
from actionbank_env.experiment import run_simulation
from actionbank_env.results import RunFolder
from tests.reliability.conftest import SMALL_RUN, comparable_files, share_worlds, snapshot, temp_files

OLD = b'{"old": true}\n'


def _enospc(path: object = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))


def _half_then_fail(handle: IO[bytes]) -> None:
    handle.write(b'{"new": "half a fi')
    raise _enospc()


# --------------------------------------------------------------------------------------------------------------
# atomic_write and everything built on it
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [True, False], ids=["old-file", "new-file"])
@pytest.mark.parametrize(
    "fault",
    ["writer-raises-midway", "os.replace-ENOSPC", "fsync-EIO", "chmod-EPERM", "KeyboardInterrupt"],
)
def test_atomic_write_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str, existing: bool
) -> None:
    target = tmp_path / "data.json"
    if existing:
        target.write_bytes(OLD)
    writer: Callable[[IO[bytes]], Any] = lambda handle: handle.write(b'{"new": true}\n')  # noqa: E731
    expected: type[BaseException] = OSError
    if fault == "writer-raises-midway":
        writer = _half_then_fail
    elif fault == "os.replace-ENOSPC":
        monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(_enospc(dst)))
    elif fault == "fsync-EIO":
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    elif fault == "chmod-EPERM":
        monkeypatch.setattr(os, "chmod", lambda p, m: (_ for _ in ()).throw(OSError(errno.EPERM, "not permitted")))
    else:

        def writer(handle: IO[bytes]) -> None:
            handle.write(b"partial")
            raise KeyboardInterrupt

        expected = KeyboardInterrupt
    with pytest.raises(expected):
        atomic_write(target, writer)
    monkeypatch.undo()
    if existing:
        assert target.read_bytes() == OLD
    else:
        assert not target.exists()
    assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["data.json"] if existing else [])


@pytest.mark.parametrize(
    "write",
    [
        lambda p: atomic_write_text(p, "new text"),
        lambda p: atomic_write_json(p, {"new": np.float32(1.5)}),
        lambda p: RunFolder(p.parent).write_json(p.name, {"new": 1}),
        lambda p: ObservationLog().to_csv(p),
    ],
    ids=["atomic_write_text", "atomic_write_json", "RunFolder.write_json", "ObservationLog.to_csv"],
)
def test_every_writer_survives_a_full_disk_at_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write: Callable[[Path], Any]
) -> None:
    target = tmp_path / "file.json"
    target.write_bytes(OLD)
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(_enospc(dst)))
    with pytest.raises(OSError) as info:
        write(target)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and "No space left on device" in str(info.value)
    assert target.read_bytes() == OLD
    assert temp_files(tmp_path) == []


def test_unserialisable_json_never_touches_the_file(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_bytes(OLD)
    with pytest.raises(TypeError, match="not JSON serializable"):
        atomic_write_json(target, {"bad": object()})
    assert target.read_bytes() == OLD and temp_files(tmp_path) == []


# --------------------------------------------------------------------------------------------------------------
# A full disk / an embedding outage in the middle of run_simulation, then --resume
# --------------------------------------------------------------------------------------------------------------


def _assert_interrupted_cleanly(run: Path, *, complete: int) -> None:
    """No temp file, no summary, ``complete`` complete iterations, every JSON file whole."""
    assert temp_files(run) == []
    assert not (run / "summary.json").exists()
    assert RunFolder.open(run).completed_iterations() == complete
    for path in run.rglob("*.json"):
        json.loads(path.read_text())  # never half-written


def _fail_replace_once(monkeypatch: pytest.MonkeyPatch, suffix: str) -> list[str]:
    """Make ``os.replace`` raise ENOSPC the first time its destination ends with ``suffix``."""
    real = os.replace
    hits: list[str] = []

    def replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(suffix) and not hits:
            hits.append(str(dst))
            raise _enospc(dst)
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return hits


@pytest.mark.parametrize(
    ("suffix", "complete"),
    [
        pytest.param("iteration_2/ground_truth_evaluation.json", 1, id="mid-iteration-2"),
        pytest.param("iteration_1/observations.csv", 0, id="mid-iteration-1", marks=pytest.mark.slow),
        pytest.param("metrics.csv", 0, id="metrics.csv", marks=pytest.mark.slow),
        pytest.param("/summary.json", 2, id="summary.json", marks=pytest.mark.slow),
    ],
)
def test_full_disk_mid_run_is_a_clear_error_and_resume_gives_the_uninterrupted_results(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    small_run_reference: Path,
    shared_worlds: None,
    suffix: str,
    complete: int,
) -> None:
    run = tmp_path / "run"
    hits = _fail_replace_once(monkeypatch, suffix)
    with pytest.raises(OSError) as info:
        run_simulation(SimulationConfig.from_settings(SMALL_RUN), out=run)
    monkeypatch.undo()
    share_worlds(monkeypatch)
    assert hits, f"no write to *{suffix} happened"
    assert info.value.errno == errno.ENOSPC
    assert "No space left on device" in str(info.value) and suffix.lstrip("/") in str(info.value)
    _assert_interrupted_cleanly(run, complete=complete)
    # The documented way back: `actionbank simulate --resume RUN_DIR`.
    assert main(["simulate", "--resume", str(run), "--quiet"]) == 0
    assert f"results: {run}" in capsys.readouterr().out
    expected, got = comparable_files(small_run_reference), comparable_files(run)
    assert expected.keys() == got.keys()
    for key in expected:
        assert expected[key] == got[key], key
    assert temp_files(run) == []


def test_embedding_outage_mid_run_stops_the_run_without_switching_embedder_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_run_reference: Path, shared_worlds: None
) -> None:
    """Embeddings never fall back: a ServiceError from the embedder ends the run; --resume completes it."""
    run = tmp_path / "run"
    real_embed = HashingEmbedder.embed
    calls: list[int] = []

    def flaky_embed(self: HashingEmbedder, texts: Any) -> Any:
        if (run / "iteration_1" / ".complete").exists():
            calls.append(len(texts))
            raise ServiceError("OpenAI embeddings (model 'fake') failed after 4 attempt(s); last error: HTTP 503.")
        return real_embed(self, texts)

    monkeypatch.setattr(HashingEmbedder, "embed", flaky_embed)
    with pytest.raises(ServiceError, match="failed after 4 attempt"):
        run_simulation(SimulationConfig.from_settings(SMALL_RUN), out=run)
    monkeypatch.undo()
    share_worlds(monkeypatch)
    assert len(calls) == 1  # the run stopped at the first failed embedding, no other embedder was tried
    _assert_interrupted_cleanly(run, complete=1)
    before = snapshot(run / "iteration_1")
    result = run_simulation(None, resume=run)
    assert snapshot(run / "iteration_1") == before  # completed iterations are never rewritten
    expected, got = comparable_files(small_run_reference), comparable_files(result.path)
    assert expected.keys() == got.keys()
    for key in expected:
        assert expected[key] == got[key], key
    # Every action of every bank carries an embedding of the one embedder of the run.
    for t in (1, 2):
        bank = json.loads((run / f"iteration_{t}" / "new_action_bank.json").read_text())
        for action in bank["actions"]:
            vector = np.asarray(action["embedding"], dtype=np.float32)
            assert np.allclose(vector, HashingEmbedder().embed([action["text"]])[0], atol=1e-6)


def test_resume_refuses_a_finished_run_and_changes_nothing(small_run_reference: Path) -> None:
    before = snapshot(small_run_reference)
    assert main(["simulate", "--resume", str(small_run_reference), "--quiet"]) == 2
    assert snapshot(small_run_reference) == before


# --------------------------------------------------------------------------------------------------------------
# SIGKILL at exact points (a real kill of a child process), then --resume
# --------------------------------------------------------------------------------------------------------------

#: (destination suffix, when): the child kills itself just before that atomic rename (its temp file left), or after.
KILL_POINTS = [
    pytest.param("simulation_config.json", "after", id="before-meta.json", marks=pytest.mark.slow),
    pytest.param("/meta.json", "tmp", id="inside-the-meta.json-write", marks=pytest.mark.slow),
    pytest.param("iteration_1/observations.csv", "tmp", id="inside-a-write-of-iteration-1"),
    pytest.param("iteration_1/algorithm_results.json", "after", id="mid-iteration-1", marks=pytest.mark.slow),
    pytest.param("iteration_1/.complete", "tmp", id="before-iteration-1-marker", marks=pytest.mark.slow),
    pytest.param("iteration_1/.complete", "after", id="between-iterations", marks=pytest.mark.slow),
    pytest.param("iteration_2/ground_truth_evaluation.json", "after", id="mid-iteration-2", marks=pytest.mark.slow),
    pytest.param("iteration_2/.complete", "after", id="after-last-iteration", marks=pytest.mark.slow),
    pytest.param("complete_simulation_results.json", "tmp", id="inside-the-final-results-write"),
    pytest.param("complete_simulation_results.json", "after", id="before-summary.json", marks=pytest.mark.slow),
    pytest.param("/summary.json", "tmp", id="inside-the-summary.json-write", marks=pytest.mark.slow),
    pytest.param("/summary.json", "after", id="after-summary.json"),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("suffix", "when"), KILL_POINTS)
def test_sigkill_at_any_point_then_resume_gives_the_uninterrupted_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    small_run_reference: Path,
    suffix: str,
    when: str,
) -> None:
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = tmp_path / "run"
    child = subprocess.run(
        [sys.executable, "-m", "tests.reliability.kill_driver", str(run), suffix, when],
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr  # it died at the point, not before or after
    assert (temp_files(run) != []) == (when == "tmp")
    share_worlds(monkeypatch)
    code = main(["simulate", "--resume", str(run), "--quiet"])
    err = capsys.readouterr().err
    if suffix == "/summary.json" and when == "after":
        assert code == 2 and "already complete" in err  # nothing to do: the run had finished
    else:
        assert code == 0, err
    assert temp_files(run) == []
    expected, got = comparable_files(small_run_reference), comparable_files(run)
    assert expected.keys() == got.keys()
    for key in expected:
        assert expected[key] == got[key], key


# --------------------------------------------------------------------------------------------------------------
# A killed sweep leaves no orphan worker writing trial folders
# --------------------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Worker processes of ``pid`` (multiprocessing ``spawn_main`` children, not its resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the workers")
@pytest.mark.timeout(180)
def test_killing_a_sweep_kills_its_workers(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    settings = [f"--set={k}={v}" for k, v in {**SMALL_RUN, "iterations": 3, "users_per_iteration": 400}.items()]
    sweep = subprocess.Popen(
        [sys.executable, "-m", "actionbank_env", "sweep", "--seeds", "0-5", "--workers", "2"]
        + ["--out", str(tmp_path / "sweep"), *settings],
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _children(sweep.pid)
        assert len(workers) == 2, "the sweep never started its two workers"
        sweep.send_signal(signal.SIGKILL)  # the parent only, as an OOM killer or `kill -9 PID` would
        sweep.wait()
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()]
        assert alive == [], "orphan sweep workers outlived their parent"
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if sweep.poll() is None:
            sweep.kill()
