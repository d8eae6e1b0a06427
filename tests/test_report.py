"""write_report: report.html + plots/*.png from a run folder (issue 6, ARCHITECTURE.md §8)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from actionbank_env.config import SimulationConfig
from actionbank_env.errors import ConfigError
from actionbank_env.experiment import run_simulation
from actionbank_env.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert('x')</script> Save $5 & more \U0001f4a5 now"


def _tiny(optimizer: str, out: Path) -> Path:
    cfg = SimulationConfig.from_settings(
        {
            "embedder": "hashing",
            "users_per_iteration": 200,
            "iterations": 2,
            "initial_actions": 5,
            "evaluation_users": 200,
            "ground_truth": "gmm",  # the cheapest world to build; the report does not depend on it
            "designer": optimizer,
            "designer.action_pool_size": 50,
            "designer.n_representative_users": 32,
            "designer.representative_method": "subsample",
            "designer.reward_model": "linear",
            "tensorboard": False,
            "report": False,
            "seed": 3,
        }
    )
    return run_simulation(cfg, out=out).path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real tiny generative run and a keep run on the same seed (pristine; tests copy before editing)."""
    base = tmp_path_factory.mktemp("runs")
    return {opt: _tiny(opt, base / opt) for opt in ("generative", "keep")}


@pytest.fixture(scope="module")
def gen_report(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the generative run with its report written (read-only for the tests)."""
    run = _copy(runs["generative"], tmp_path_factory.mktemp("first") / "gen")
    assert write_report(run) == run / "report.html"
    return run


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _row_cells(html: str, t: int) -> list[str]:
    row = re.search(rf'<tr id="iteration-{t}">(.*?)</tr>', html)
    assert row is not None, f"no row for iteration {t}"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 5_000  # a real figure, not an empty canvas


def test_generative_run_report(gen_report: Path) -> None:
    run = gen_report
    html = (run / "report.html").read_text(encoding="utf-8")
    for t in (1, 2):
        cells = _row_cells(html, t)
        assert cells[0] == str(t) and len(cells) > 5
    for name in ("engagement.png", "bank_evolution.png", "calibration.png"):
        _assert_png(run / "plots" / name)
    # images by relative path that exist; nothing fetched from the network, no scripts
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(srcs) == ["plots/bank_evolution.png", "plots/calibration.png", "plots/engagement.png"]
    assert all((run / s).is_file() for s in srcs)
    assert "http" not in html and "<script" not in html.lower()
    # config, summary and the final bank are on the page
    config = json.loads((run / "simulation_config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    reward_model = config["designer"]["params"]["reward_model"]["name"]
    assert f"<th>designer.reward_model</th><td>{reward_model}</td>" in html
    assert f"({reward_model} reward model)" in html
    assert "<th>final_bank_size</th>" in html and f">{summary['final_bank_size']}</td>" in html
    final = json.loads((run / "iteration_2" / "new_action_bank.json").read_text())
    assert final["n_actions"] > 5  # the generative designer added actions
    assert all(a["id"] in html for a in final["actions"])
    assert "No reward-model calibration plot" not in html
    # the world card the run measured at start, with its checks
    card = json.loads((run / "initialization" / "world_card.json").read_text())
    assert "<h2>World card</h2>" in html
    assert all(f"<td>{c['name']}</td>" in html for c in card["checks"])
    assert not list((run / "plots").glob(".*.tmp"))  # atomic writes leave no temp files


def test_report_is_deterministic(gen_report: Path, tmp_path: Path) -> None:
    again = _copy(gen_report, tmp_path / gen_report.name)  # same folder name, old report and plots included
    assert write_report(again).read_bytes() == (gen_report / "report.html").read_bytes()
    pngs = sorted(p.name for p in (gen_report / "plots").glob("*.png"))
    assert len(pngs) == 3
    assert all((again / "plots" / n).read_bytes() == (gen_report / "plots" / n).read_bytes() for n in pngs)


def test_llm_texts_are_escaped(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["generative"], tmp_path / "evil")
    for name in ("action_bank.json", "new_action_bank.json"):  # plot labels and the final-bank table
        path = run / "iteration_2" / name
        bank = json.loads(path.read_text())
        bank["actions"][0]["text"] = EVIL
        path.write_text(json.dumps(bank))
    html = write_report(run).read_text(encoding="utf-8")  # pytest turns glyph/mathtext warnings into errors
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Save $5 &amp; more" in html
    _assert_png(run / "plots" / "bank_evolution.png")


def test_keep_run_has_no_calibration_plot(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["keep"], tmp_path / "keep")
    (run / "plots").mkdir()
    (run / "plots" / "calibration.png").write_bytes(PNG_MAGIC)  # stale, from an older report
    html = write_report(run).read_text(encoding="utf-8")
    _assert_png(run / "plots" / "engagement.png")
    _assert_png(run / "plots" / "bank_evolution.png")
    assert not (run / "plots" / "calibration.png").exists()
    assert "calibration.png" not in html
    assert "No reward-model calibration plot" in html and "optimizer keep" in html
    for t in (1, 2):
        assert _row_cells(html, t)[0] == str(t)
    # no oracle for keep: that series is not drawn and its cells read n/a
    assert "oracle bank value" not in html
    assert "n/a" in html


def test_compare_runs_in_legend_and_table(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["generative"], tmp_path / "gen")
    keep = _copy(runs["keep"], tmp_path / "keep")
    twin = _copy(runs["generative"], tmp_path / "twin")
    cfg = json.loads((twin / "simulation_config.json").read_text())
    cfg["run"]["seed"] = 99
    (twin / "simulation_config.json").write_text(json.dumps(cfg))
    html = write_report(run, compare=[keep, str(twin)]).read_text(encoding="utf-8")
    # series labels (the legend) come from the compared runs' simulation_config.json
    assert "keep: deployed value" in html and "keep: bank value" in html
    assert "generative [twin]: deployed value" in html  # same optimizer as this run: named by folder
    assert "<td>../keep</td>" in html and "<td>../twin</td>" in html
    assert "used seed 99" in html and "not on the same world/users" in html
    assert "used seed 3" not in html.split("used seed 99")[0]  # only the mismatching run gets the note
    _assert_png(run / "plots" / "engagement.png")


def test_report_without_metrics_summary_or_evolution(runs: dict[str, Path], gen_report: Path, tmp_path: Path) -> None:
    ref_html = (gen_report / "report.html").read_text(encoding="utf-8")
    run = _copy(runs["generative"], tmp_path / "bare")
    (run / "metrics.csv").unlink()
    (run / "summary.json").unlink()
    for t in (1, 2):
        path = run / f"iteration_{t}" / "ground_truth_evaluation.json"
        data = json.loads(path.read_text())
        del data["bank_evolution"]
        path.write_text(json.dumps(data))
    html = write_report(run).read_text(encoding="utf-8")
    assert "summary.json is missing" in html
    for t in (1, 2):
        cells, ref_cells = _row_cells(html, t), _row_cells(ref_html, t)
        assert cells[0] == str(t)
        assert cells[-2:] == ref_cells[-2:]  # added / retired rebuilt from the bank files
        assert cells[2] == ref_cells[2]  # deployed value from ground_truth_evaluation.json
    _assert_png(run / "plots" / "engagement.png")


def test_bad_folders(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        write_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a run folder"):
        write_report(tmp_path / "empty")
    shutil.copy(runs["keep"] / "simulation_config.json", (tmp_path / "empty") / "simulation_config.json")
    with pytest.raises(ConfigError, match="nothing to report"):
        write_report(tmp_path / "empty")
    with pytest.raises(ConfigError, match="compare folder"):
        write_report(runs["keep"], compare=[tmp_path / "empty"])
    with pytest.raises(TypeError, match="sequence of run folders"):
        write_report(runs["keep"], compare=str(runs["generative"]))  # type: ignore[arg-type]
    assert not (runs["keep"] / "report.html").exists()  # failed calls wrote nothing
