"""write_report: report.html + plots/*.png from a run folder (issue 6; the README's "The report")."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
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
    assert "The reference on the same logs" not in html  # only with run.same_logs_reference
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
    # series labels (the legend) name the setting that differs from this run (simulation_config.json)
    assert "designer=keep: deployed value" in html and "designer=keep: bank value" in html
    assert "seed=99: deployed value" in html  # the same optimizer as this run: labelled by what differs
    assert "this run (designer=generative, seed=3): deployed value" in html
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


# ---------------------------------------------------------------------------------------------- issue 19, item 9


class _Page(HTMLParser):
    """The parts of report.html the tests read: tables by id (rows of cell texts, the enclosing div's class),
    figure captions, glossary terms and the style sheet."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.table_parent: dict[str, str | None] = {}
        self.captions: dict[str, str] = {}
        self.glossary: dict[str, str] = {}
        self.css = ""
        self._divs: list[str | None] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._img: str | None = None
        self._caption: list[str] | None = None
        self._dt: list[str] | None = None
        self._dd: list[str] | None = None
        self._term: str | None = None
        self._last_term: tuple[str, str | None] = ("", None)
        self._style = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div":
            self._divs.append(a.get("class"))
        elif tag == "table":
            self._table = a.get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
            self.table_parent[self._table] = self._divs[-1] if self._divs else None
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self._img = a.get("src")
        elif tag == "figcaption":
            self._caption = []
        elif tag == "dt":
            self._dt, self._term = [], a.get("id")
        elif tag == "dd":
            self._dd = []
        elif tag == "style":
            self._style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._divs:
            self._divs.pop()
        elif tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "figcaption" and self._caption is not None and self._img is not None:
            self.captions[self._img] = "".join(self._caption)
            self._caption = None
        elif tag == "dt" and self._dt is not None:
            self._last_term = ("".join(self._dt), self._term)
            self._dt = None
        elif tag == "dd" and self._dd is not None:
            term, anchor = self._last_term
            assert anchor == f"glossary-{term}"
            self.glossary[term] = "".join(self._dd)
            self._dd = None
        elif tag == "style":
            self._style = False

    def handle_data(self, data: str) -> None:
        for buffer in (self._cell, self._caption, self._dt, self._dd):
            if buffer is not None:
                buffer.append(data)
        if self._style:
            self.css += data


def test_iteration_table_scrolls_inside_the_page(gen_report: Path) -> None:
    page = _Page((gen_report / "report.html").read_text(encoding="utf-8"))
    rows = page.tables["iterations"]
    assert len(rows[0]) > 20  # a column per logged metric: wider than any page
    assert page.table_parent["iterations"] == "scroll"
    assert re.search(r"\.scroll\s*\{[^}]*overflow-x:\s*auto", page.css)


def test_summary_is_ordered_by_importance(gen_report: Path) -> None:
    page = _Page((gen_report / "report.html").read_text(encoding="utf-8"))
    keys = [row[0] for row in page.tables["summary"]]
    first = ["deployed_value", "bank_value", "oracle_bank_value", "improvement_captured", "delta_value"]
    assert keys[:5] == first
    assert keys[5:] == sorted(keys[5:]) and {"company_reward", "regret", "final_bank_size"} <= set(keys[5:])
    summary = json.loads((gen_report / "summary.json").read_text())
    assert page.tables["summary"][0][1] == f"{summary['deployed_value']:.4f}"


def test_auc_has_its_chance_line_beside_its_ceiling(gen_report: Path) -> None:
    page = _Page((gen_report / "report.html").read_text(encoding="utf-8"))
    series = page.captions["plots/calibration.png"].split("Series: ")[1].rstrip(".").split("; ")
    auc = series.index("AUC (drawn clicks)")
    assert series[auc : auc + 3] == ["AUC (drawn clicks)", "AUC ceiling (true probs)", "AUC chance (0.5)"]


def test_engagement_has_a_random_targeting_line(gen_report: Path) -> None:
    page = _Page((gen_report / "report.html").read_text(encoding="utf-8"))
    series = page.captions["plots/engagement.png"].split("Series: ")[1]
    assert "generative (this run): random targeting of bank t (uniform over its texts)" in series
    for t in (1, 2):  # the line's numbers are in the run's files: a floor below perfect targeting
        record = json.loads((gen_report / f"iteration_{t}" / "ground_truth_evaluation.json").read_text())
        assert 0.0 < record["random_targeting_value"] < record["bank_value_campaign_users"]


def test_compare_labels_name_the_setting_that_differs(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["generative"], tmp_path / "gen")
    bigger = _copy(runs["generative"], tmp_path / "bigger")
    same = _copy(runs["generative"], tmp_path / "same")
    cfg = json.loads((bigger / "simulation_config.json").read_text())
    cfg["campaign"]["users_per_iteration"] = 300
    cfg["run"]["name"] = "elsewhere"  # where a run is written is not what it simulates
    (bigger / "simulation_config.json").write_text(json.dumps(cfg))
    page = _Page(write_report(run, compare=[bigger, same]).read_text(encoding="utf-8"))
    series = page.captions["plots/engagement.png"].split("Series: ")[1]
    assert "users_per_iteration=300: deployed value" in series
    assert "same: deployed value" in series  # nothing differs: the folder's name
    assert "this run (users_per_iteration=200): deployed value" in series
    assert "generative [" not in series and "name=" not in series
    rows = page.tables["compare"]
    assert [row[:2] for row in rows[1:]] == [
        ["this run (users_per_iteration=200)", "."],
        ["users_per_iteration=300", "../bigger"],
        ["same", "../same"],
    ]


def test_glossary_explains_every_key_of_the_tables(gen_report: Path) -> None:
    page = _Page((gen_report / "report.html").read_text(encoding="utf-8"))
    keys = [row[0] for row in page.tables["summary"]] + page.tables["iterations"][0][1:]
    assert len(keys) > 30
    for key in keys:
        assert key in page.glossary, key
        assert "no glossary entry" not in page.glossary[key], key
    assert "0.5: chance" in page.glossary["fidelity/auc"]
    from actionbank_env.report import glossary_entry

    assert "update()" in glossary_entry("train/td_loss")  # an agent's metric gets its family's entry


def test_per_action_bars_show_the_true_ctr(gen_report: Path) -> None:
    import pandas as pd

    page = _Page((gen_report / "report.html").read_text(encoding="utf-8"))
    caption = page.captions["plots/bank_evolution.png"]
    assert "observed beside true" in caption
    assert "true CTR of the same impressions" in caption and "observed CTR in the log" in caption
    # The truth is written by evaluation.py: per action of bank t, over the same impressions as the observed CTR.
    record = json.loads((gen_report / "iteration_2" / "ground_truth_evaluation.json").read_text())
    per = record["per_action"]
    bank = json.loads((gen_report / "iteration_2" / "action_bank.json").read_text())
    assert per["ids"] == [a["id"] for a in bank["actions"]]
    log = pd.read_csv(gen_report / "iteration_2" / "observations.csv", dtype={"action_id": str})
    counts = log.groupby("action_id")["click"].agg(["size", "sum"])
    for i, n, c in zip(per["ids"], per["impressions"], per["clicks"], strict=True):
        assert (n, c) == ((int(counts.loc[i, "size"]), float(counts.loc[i, "sum"])) if i in counts.index else (0, 0.0))
    shown = [(n, v) for n, v in zip(per["impressions"], per["true_ctr"], strict=True) if n > 0]
    assert all(0.0 < v < 1.0 for _, v in shown)
    # impressions-weighted, the per-action truth is the campaign's deployed value (the same served probabilities)
    weighted = sum(n * v for n, v in shown) / sum(n for n, _ in shown)
    assert weighted == pytest.approx(record["deployed_value"], rel=1e-9)
    assert all(0.0 < v < 1.0 for v in per["true_ctr_all_users"])


def test_report_of_a_run_without_per_action_truth(runs: dict[str, Path], tmp_path: Path) -> None:
    run = _copy(runs["generative"], tmp_path / "old")
    for t in (1, 2):
        path = run / f"iteration_{t}" / "ground_truth_evaluation.json"
        data = json.loads(path.read_text())
        del data["per_action"], data["random_targeting_value"]
        path.write_text(json.dumps(data))
    page = _Page(write_report(run).read_text(encoding="utf-8"))
    assert "carry no per-action truth" in page.captions["plots/bank_evolution.png"]
    assert "true CTR" not in page.captions["plots/bank_evolution.png"]
    assert "random targeting of bank t" not in page.captions["plots/engagement.png"].split("Series: ")[1]


@pytest.mark.parametrize("layout", [None, "constrained"])
def test_plots_are_drawn_once_and_match_savefigs_tight_box(tmp_path: Path, layout: str | None) -> None:
    """``_save`` measures the tight box itself and draws once; the PNG must be the one
    ``savefig(bbox_inches="tight")`` (two draws) writes, with a legend outside the axes and long tick labels."""
    import io

    import matplotlib.style
    import numpy as np
    from PIL import Image

    from actionbank_env import report

    def figure() -> object:
        fig = report._new_figure(13.0, 4.5, layout=layout)
        ax = fig.add_subplot(1, 2, 1)
        ax.plot([1, 2, 3], [0.05, 0.07, 0.06], marker="o", label="deployed value")
        ax.set_title("Engagement")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax2 = fig.add_subplot(1, 2, 2)
        bars = ax2.barh([0, 1], [0.04, 0.08], label="observed CTR")
        ax2.bar_label(bars, labels=["a", "b"])
        ax2.set_yticks([0, 1], ["A00001: a rather long action text that needs room", "A00002: short"])
        ax2.annotate("n=12", (0.08, 1), xytext=(3, 0), textcoords="offset points")
        ax2.legend(**report._BELOW)
        return fig

    with matplotlib.style.context("default"):
        report._save(figure(), tmp_path / "once.png")
        reference = io.BytesIO()
        figure().savefig(reference, format="png", dpi=report._DPI, bbox_inches="tight", metadata={"Software": None})
    once = np.asarray(Image.open(tmp_path / "once.png"))
    tight = np.asarray(Image.open(io.BytesIO(reference.getvalue())))
    assert once.shape == tight.shape
    np.testing.assert_array_equal(once, tight)


def test_report_shows_the_reference_on_the_same_logs(gen_report: Path, tmp_path: Path) -> None:
    """With a same_logs_reference record (run.same_logs_reference) the report puts its capture and AUC beside the run's."""
    run = _copy(gen_report, tmp_path / gen_report.name)
    for t, (captured, auc) in {1: (0.4321, 0.6123), 2: (0.2468, 0.5987)}.items():
        path = run / f"iteration_{t}" / "ground_truth_evaluation.json"
        record = json.loads(path.read_text())
        record["same_logs_reference"] = {"improvement_captured": captured, "unseen_candidate_fidelity": {"auc": auc}}
        path.write_text(json.dumps(record))
    html = write_report(run).read_text(encoding="utf-8")
    table = re.search(r'<table id="same-logs-reference">(.*?)</table>', html, re.S)
    assert table is not None
    rows = re.findall(r"<tr><td[^>]*>(\d+)</td>(.*?)</tr>", table.group(1))
    assert [r[0] for r in rows] == ["1", "2"]
    first = re.findall(r"<td[^>]*>(.*?)</td>", rows[0][1])
    record = json.loads((run / "iteration_1" / "ground_truth_evaluation.json").read_text())
    assert first[1] == "0.4321" and first[3] == "0.6123"
    assert first[0] == f"{record['improvement_captured']:.4f}"
