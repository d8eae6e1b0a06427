"""actionbank benchmark: designers paired by world seed, and the tables' arithmetic against hand-computed numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from scipy import stats

from actionbank_env.benchmark import BenchmarkResult, format_markdown, paired_statistics, run_benchmark
from actionbank_env.config import SimulationConfig
from actionbank_env.core.io import read_json
from actionbank_env.errors import ConfigError
from actionbank_env.results import (
    BENCHMARK_CSV,
    BENCHMARK_MD,
    BENCHMARK_PLOT,
    BENCHMARK_TRIALS_CSV,
    EVALUATION_FILE,
    SUMMARY_FILE,
    iteration_file,
)
from tests.worlds import TINY_SETTINGS

TINY = {**TINY_SETTINGS, "ope": False}
SEEDS = (0, 1, 2)
DESIGNERS = ("generative", "random", "keep")
GENERATIVE = "generative[reward_model=linear]"
LABELS = (GENERATIVE, "random", "keep")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkResult:
    out = tmp_path_factory.mktemp("bench")
    return run_benchmark(
        SimulationConfig.from_settings(TINY),
        seeds=SEEDS,
        out=out,
        designers=DESIGNERS,
        workers=2,
        generative_grid={"designer.reward_model": ("linear",)},
    )


def _summary(bench: BenchmarkResult, designer: str, seed: int) -> dict:
    return read_json(bench.trials[designer, seed] / SUMMARY_FILE)


def test_designers_of_one_seed_share_world_users_and_pool(bench: BenchmarkResult) -> None:
    assert not bench.failures
    for seed in SEEDS:
        first = {d: _summary(bench, d, seed)["per_iteration"] for d in LABELS}
        # the same world, initial bank and evaluation users: the first deployed bank is worth the same
        values = [first[d]["bank_value"][0] for d in LABELS]
        assert values == pytest.approx([values[0]] * len(values), rel=1e-12)
        # the same campaign users and agent: the first campaign is the same campaign
        rewards = [first[d]["company_reward"][0] for d in LABELS]
        assert rewards == pytest.approx([rewards[0]] * len(rewards), rel=1e-12)
        # the same first pool: the oracle bank over it is the same for the generative and random designers
        assert first[GENERATIVE]["oracle_bank_value"][0] == pytest.approx(
            first["random"]["oracle_bank_value"][0], rel=1e-12
        )
    worlds = {seed: _summary(bench, "keep", seed)["per_iteration"]["bank_value"][0] for seed in SEEDS}
    assert len(set(worlds.values())) == len(SEEDS), "each seed is its own world"


def test_the_tables_match_hand_computed_differences(bench: BenchmarkResult) -> None:
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in bench.stats}
    t = stats.t.ppf(0.975, df=len(SEEDS) - 1)
    for baseline in ("random", "keep"):
        diffs = [
            _summary(bench, GENERATIVE, s)["new_bank_value"] - _summary(bench, baseline, s)["new_bank_value"]
            for s in SEEDS
        ]
        mean = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
        row = index[GENERATIVE, baseline, "final_new_bank_value"]
        assert row["n"] == len(SEEDS)
        assert row["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12)
        assert row["ci95"] == pytest.approx(t * sd / math.sqrt(len(SEEDS)), rel=1e-9, abs=1e-12)
    # over the run: the mean of each seed's per-iteration company reward, then paired against keep
    per_seed = []
    for s in SEEDS:
        gen = _summary(bench, GENERATIVE, s)["per_iteration"]["company_reward"]
        keep = _summary(bench, "keep", s)["per_iteration"]["company_reward"]
        per_seed.append(sum(gen) / len(gen) - sum(keep) / len(keep))
    assert index[GENERATIVE, "keep", "run_company_reward"]["mean"] == pytest.approx(sum(per_seed) / len(SEEDS))
    # improvement captured: a ratio of means over seeds and iterations
    gains, oracle_gains = 0.0, 0.0
    for s in SEEDS:
        per = _summary(bench, "random", s)["per_iteration"]
        gains += sum(n - b for n, b in zip(per["new_bank_value"], per["bank_value"], strict=True))
        oracle_gains += sum(o - b for o, b in zip(per["oracle_bank_value"], per["bank_value"], strict=True))
    assert index["random", "", "improvement_captured"]["mean"] == pytest.approx(gains / oracle_gains)
    assert math.isnan(index["keep", "", "improvement_captured"]["mean"]), "keep has no pool, hence no oracle"


def test_the_folder_holds_csv_markdown_and_plot(bench: BenchmarkResult) -> None:
    for name in (BENCHMARK_CSV, BENCHMARK_MD, BENCHMARK_PLOT, BENCHMARK_TRIALS_CSV):
        assert (bench.path / name).is_file(), name
    with (bench.path / BENCHMARK_TRIALS_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(DESIGNERS) * len(SEEDS) * TINY["iterations"]
    # run.ope=false: no off-policy estimate was fitted for the proposals
    evaluation = read_json(bench.trials[GENERATIVE, SEEDS[0]] / iteration_file(1, EVALUATION_FILE))
    assert "ope" not in evaluation and "new_bank_value" in evaluation
    markdown = (bench.path / BENCHMARK_MD).read_text(encoding="utf-8")
    assert f"| {GENERATIVE} | random |" in markdown and f"| {GENERATIVE} | keep |" in markdown
    # re-running the folder recomputes the same tables from the finished trials
    again = run_benchmark(
        SimulationConfig.from_settings(TINY),
        seeds=SEEDS,
        out=bench.path,
        designers=DESIGNERS,
        generative_grid={"designer.reward_model": ("linear",)},
        plot=False,
    )
    assert again.stats == bench.stats or all(
        (a["mean"] == pytest.approx(b["mean"], nan_ok=True)) for a, b in zip(again.stats, bench.stats, strict=True)
    )


def _row(designer: str, seed: int, new_value: float, deployed: float = 0.1) -> dict:
    """One iteration-1 row of benchmark_trials.csv (old bank 0.1, oracle bank 0.2)."""
    return {
        "designer": designer,
        "seed": seed,
        "iteration": 1,
        "company_reward": 0.1,
        "deployed_value": deployed,
        "bank_value": 0.1,
        "new_bank_value": new_value,
        "oracle_bank_value": 0.2,
    }


def test_paired_statistics_leave_out_seeds_a_baseline_lacks() -> None:
    rows = [_row("a", 0, 0.15), _row("a", 1, 0.12), _row("a", 2, 0.2), _row("random", 0, 0.11), _row("random", 1, 0.1)]
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in paired_statistics(rows)}
    paired = index["a", "random", "final_new_bank_value"]
    assert paired["n"] == 2 and paired["mean"] == pytest.approx((0.04 + 0.02) / 2)


def test_learning_designers_are_compared_with_the_reference() -> None:
    """generative - reference and its share of the reference's capture; baselines and the oracle are not compared."""
    values = {"generative": (0.13, 0.12), "reference": (0.16, 0.15), "random": (0.11, 0.11), "oracle": (0.2, 0.2)}
    rows = [_row(d, s, v[s], deployed=v[s] / 2) for d, v in values.items() for s in (0, 1)]
    stats = paired_statistics(rows)
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in stats}
    assert index["generative", "reference", "final_new_bank_value"]["mean"] == pytest.approx(-0.03)
    assert index["generative", "reference", "run_deployed_value"]["mean"] == pytest.approx(-0.015)
    # captured: generative (0.03 + 0.02) / 0.2, reference (0.06 + 0.05) / 0.2
    assert index["generative", "reference", "share_of_captured"]["mean"] == pytest.approx(0.05 / 0.11)
    assert ("reference", "random", "final_new_bank_value") in index  # the ceiling against the baselines
    assert not [k for k in index if k[1] == "reference" and k[0] in ("random", "oracle", "reference")]
    table = format_markdown(stats, n_seeds=2, iterations=1)
    assert "| generative | reference | -0.0300" in table
    assert "generative 0.45 [" in table and "] of reference's" in table
    low, high = (index["generative", "reference", f"share_of_captured_{k}"]["mean"] for k in ("low", "high"))
    assert low <= 0.05 / 0.11 <= high


def test_share_interval_is_the_percentile_bootstrap_over_seeds() -> None:
    """Three seeds have ten distinct resamples: the interval's ends are shares of two of them, found by enumeration."""
    import itertools

    import numpy as np

    from actionbank_env.benchmark import share_interval

    mine = {0: (0.01, 0.1), 1: (0.05, 0.2), 2: (0.02, 0.1)}
    theirs = {0: (0.04, 0.1), 1: (0.06, 0.2), 2: (0.02, 0.1), 9: (1.0, 1.0)}  # seed 9: not the designer's
    share, low, high = share_interval(mine, theirs)
    assert share == pytest.approx((0.08 / 0.4) / (0.12 / 0.4))
    possible = []
    for multiset in itertools.combinations_with_replacement(range(3), 3):
        a = np.sum([mine[s] for s in multiset], axis=0)
        b = np.sum([theirs[s] for s in multiset], axis=0)
        possible.append((a[0] / a[1]) / (b[0] / b[1]))
    assert min(possible) <= low <= share <= high <= max(possible)
    assert any(low == pytest.approx(v, rel=1e-12) for v in possible)
    assert any(high == pytest.approx(v, rel=1e-12) for v in possible)
    assert share_interval(mine, theirs) == (share, low, high)  # a fixed generator: the same tables every time
    assert all(math.isnan(v) for v in share_interval(mine, {5: (0.1, 0.1)}))


def test_reference_of_the_same_logs_is_read_from_its_own_column() -> None:
    """Rows with same_logs_reference_value: the reference's capture per iteration and the designer's share of it."""
    from actionbank_env.benchmark import SAME_LOGS_BASELINE, SAME_LOGS_KEY

    rows = []
    for seed, (mine, ref) in enumerate([((0.13, 0.12), (0.16, 0.15)), ((0.11, 0.14), (0.15, 0.14))]):
        for t in (1, 2):
            row = {**_row("generative", seed, mine[t - 1]), "iteration": t, SAME_LOGS_KEY: ref[t - 1]}
            rows.append(row)
    rows += [_row("random", s, 0.11) for s in (0, 1)]
    stats = paired_statistics(rows)
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in stats}
    # old bank 0.1 and oracle 0.2 everywhere: captured = summed gains / (0.1 x rows)
    assert index["generative", SAME_LOGS_BASELINE, "improvement_captured_1"]["mean"] == pytest.approx(0.11 / 0.2)
    assert index["generative", SAME_LOGS_BASELINE, "improvement_captured_2"]["mean"] == pytest.approx(0.09 / 0.2)
    assert index["generative", SAME_LOGS_BASELINE, "improvement_captured"]["mean"] == pytest.approx(0.2 / 0.4)
    assert index["generative", SAME_LOGS_BASELINE, "share_of_captured"]["mean"] == pytest.approx(0.1 / 0.2)
    assert not [k for k in index if k[1] == SAME_LOGS_BASELINE and k[0] == "random"]  # random has no such column
    table = format_markdown(stats, n_seeds=2, iterations=2)
    assert "generative 0.50 [" in table and "of its reference on the same logs" in table
    assert "beside generative: 0.5500 / 0.4500, 0.5000" in table


def test_bad_benchmarks_are_refused(tmp_path: Path) -> None:
    base = SimulationConfig.from_settings(TINY)
    with pytest.raises(ConfigError, match="at least two different designers"):
        run_benchmark(base, seeds=(0,), out=tmp_path, designers=("random", "random"))
    with pytest.raises(ConfigError, match="world_seed must be unset"):
        run_benchmark(SimulationConfig.from_settings({**TINY, "world_seed": 3}), seeds=(0,), out=tmp_path)


def test_benchmark_with_the_reference_of_the_same_logs(tmp_path: Path) -> None:
    """--set same_logs_reference=true: the generative trials record it, the baselines run without it."""
    from actionbank_env.benchmark import SAME_LOGS_BASELINE, SAME_LOGS_KEY

    base = SimulationConfig.from_settings(
        {**TINY, "designer.reward_model": "bayesian_bilinear", "same_logs_reference": True}
    )
    result = run_benchmark(base, seeds=(0, 1), out=tmp_path, designers=("generative", "keep"), workers=1)
    assert not result.failures
    with (tmp_path / BENCHMARK_TRIALS_CSV).open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["designer"] for r in rows} == {"generative", "keep"}
    for row in rows:
        assert (row[SAME_LOGS_KEY] != "") == (row["designer"] == "generative")
    for (designer, _), path in result.trials.items():
        config = read_json(path / "simulation_config.json")
        assert config["run"]["same_logs_reference"] == (designer == "generative")
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in result.stats}
    assert math.isfinite(index["generative", SAME_LOGS_BASELINE, "improvement_captured"]["mean"])
    assert "of its reference on the same logs" in result.markdown


@pytest.mark.parametrize(
    ("seeds", "users", "share", "low", "high"),
    [
        ("fresh", 1000, 0.69, 0.51, 1.05),
        ("fresh", 5000, 0.46, 0.35, 0.58),
        ("heldout", 1000, 0.61, 0.54, 0.69),
        ("heldout", 5000, 0.48, 0.38, 0.57),
    ],
)
def test_readme_same_logs_shares_come_from_the_shipped_trials(
    seeds: str, users: int, share: float, low: float, high: float
) -> None:
    """The README's same-logs table is what paired_statistics makes of the shipped trials (fresh seeds 701-710,
    held-out seeds 401-410)."""
    from actionbank_env.benchmark import SAME_LOGS_BASELINE

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"benchmark_{seeds}_minilm{users}_same_logs_trials.csv"
    with path.open() as fh:
        rows = [
            {k: (v if k == "designer" else float(v) if v else math.nan) for k, v in r.items()}
            for r in csv.DictReader(fh)
        ]
    index = {(s["designer"], s["baseline"], s["metric"]): s for s in paired_statistics(rows)}
    got = [
        index["generative", SAME_LOGS_BASELINE, m]["mean"]
        for m in ("share_of_captured", "share_of_captured_low", "share_of_captured_high")
    ]
    assert [round(v, 2) for v in got] == [share, low, high]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"{share:.2f} [{low:.2f}, {high:.2f}]" in readme
