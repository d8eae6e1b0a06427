"""World cards of unseen world seeds: measured vs configured, for each family x embedder it supports.

    python -m benchmarks.world_cards                       # seeds 9001-9005 (no test uses them), every family
    python -m benchmarks.world_cards --seeds 9001 --learnability --families mixture_of_experts --embedders minilm
    python -m benchmarks.world_cards --json world_cards.json
    python -m benchmarks.world_cards --learnability --families mixture_of_experts --embedders minilm --spectrum-power 0
    python -m benchmarks.world_cards --summary --seeds 20000-20199 --families gmm --embedders hashing   # pass rate

``--summary`` prints, per family x embedder, the pass rate of every check over the seeds and the distribution of
each measured statistic (min / p1 / p50 / p99 / max) instead of one row per card, plus the mean seconds to build a
world and to measure its card.

Each card is measured on 2,000 fresh users x 2,000 fresh offline texts that are in neither reference sample
(:func:`actionbank_env.evaluation.world_card`). The table shows every calibration target with its tolerance
(base CTR and per-user best lift ±10 %, interaction share ±0.05) and the realism bounds (no click probability
above 0.35; concept texts at most 6x likelier to be clicked by the top fifth of users on their trait than by
the bottom fifth; neutral texts at most 1.5x; paraphrases targeted like their concept), plus the pool's
quintile ratios (p99, max) for every family.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Any

FAMILIES = ("mixture_of_experts", "gmm", "semantic")
EMBEDDERS = ("hashing", "minilm")
SEEDS = (9001, 9002, 9003, 9004, 9005)


def _seeds(text: str) -> tuple[int, ...]:
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return tuple(range(lo, hi + 1))
    return tuple(int(x) for x in text.split(","))


def measure(
    families: tuple[str, ...] = FAMILIES,
    embedders: tuple[str, ...] = EMBEDDERS,
    seeds: tuple[int, ...] = SEEDS,
    *,
    learnability: bool = False,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """World cards (as dicts) of every allowed family x embedder x seed."""
    import time

    from actionbank_env.core.world import World, WorldConfig
    from actionbank_env.evaluation import world_card

    cards = []
    for family in families:
        for embedder in embedders:
            if family == "semantic" and embedder == "hashing":
                continue  # refused: the semantic family needs a semantic embedder
            for seed in seeds:
                start = time.perf_counter()
                world = World.build(
                    WorldConfig(world_seed=seed, embedder=embedder, ground_truth=family, **(overrides or {}))
                )
                build_seconds = time.perf_counter() - start
                card = world_card(world, learnability=learnability)
                checks = " ".join(f"{c['name']}={c['measured']:.4g}" for c in card.checks)
                print(
                    f"[world_cards] {family} {embedder} {seed}: {'ok' if card.ok else 'FAIL'} {checks} "
                    f"build {build_seconds:.1f}s card {card.seconds:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
                cards.append(
                    {"family": family, "embedder": embedder, "seed": seed, "build_seconds": build_seconds, "card": card}
                )
    return cards


def _cell(checks: dict[str, dict[str, Any]], name: str, width: int, fmt: str = ".3f") -> str:
    return f"{checks[name]['measured']:{width}{fmt}}" if name in checks else " " * (width - 1) + "-"


def table(cards: list[dict[str, Any]]) -> str:
    """One row per card: each check as measured (target), then the pool's quintile ratios."""
    head = (
        f"{'family':<19}{'embedder':<9}{'seed':>5} {'base_ctr':>9} {'lift':>6} {'inter':>6} {'max p':>6} "
        f"{'concept':>8} {'neutral':>8} {'para':>5} {'pool p99':>9} {'pool max':>9} {'1-best':>7} {'sec':>5}  ok"
    )
    lines = [head, "-" * len(head)]
    for row in cards:
        card = row["card"]
        checks = {c["name"]: c for c in card.checks}
        cell = functools.partial(_cell, checks)
        lines.append(
            f"{row['family']:<19}{row['embedder']:<9}{row['seed']:>5} {cell('base_ctr', 9, '.4f')} "
            f"{cell('best_lift', 6, '.2f')} {cell('interaction_share', 6)} {cell('max_click_prob', 6)} "
            f"{cell('concept_quintile_ratio', 8, '.2f')} {cell('neutral_quintile_ratio', 8, '.2f')} "
            f"{cell('paraphrases_targeted', 5, '.2f')} {card.quintile_ratio['p99']:9.2f} "
            f"{card.quintile_ratio['max']:9.2f} {card.single_best_share:7.3f} {card.seconds:5.1f}  "
            f"{'yes' if card.ok else 'NO: ' + ', '.join(c['name'] for c in card.checks if not c['ok'])}"
        )
        if card.learnability and card.learnability.get("rows"):
            for r in card.learnability["rows"]:
                lines.append(
                    f"{'':<33}learnability {r['logged_users']:>5} users: improvement captured "
                    f"{r['improvement_captured']:.3f}, dV {r['delta_value']:+.4f} of oracle {r['oracle_delta_value']:+.4f}"
                )
    first = cards[0]["card"].world if cards else {}
    lines.append(
        f"targets: base_ctr {first.get('base_ctr')} ±10 %, lift {first.get('best_lift')} ±10 %, interaction "
        f"{first.get('personalization')} ±0.05 (not gmm); max p <= 0.35, concept ratio <= 6, neutral ratio <= 1.5, "
        "paraphrases targeted (rho >= 0.3) >= 0.9"
    )
    return "\n".join(lines)


def summary(cards: list[dict[str, Any]]) -> str:
    """Per family x embedder: pass rate of each check and min / p1 / p50 / p99 / max of what it measured."""
    import numpy as np

    lines = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in cards:
        groups.setdefault((row["family"], row["embedder"]), []).append(row)
    for (family, embedder), rows in groups.items():
        seeds = [r["seed"] for r in rows]
        n_ok = sum(r["card"].ok for r in rows)
        lines.append(
            f"{family} / {embedder}: {len(rows)} world seeds ({min(seeds)}-{max(seeds)}), every check passed on "
            f"{n_ok} ({n_ok / len(rows):.1%}); mean seconds: world build "
            f"{np.mean([r['build_seconds'] for r in rows]):.2f}, card {np.mean([r['card'].seconds for r in rows]):.2f}"
        )
        lines.append(
            f"  {'check':<24}{'target':>8}{'rule':>6}{'pass':>8}{'min':>9}{'p1':>9}{'p50':>9}{'p99':>9}{'max':>9}  failing seeds"
        )
        names = [c["name"] for c in rows[0]["card"].checks]
        for name in names:
            found = [(r["seed"], next(c for c in r["card"].checks if c["name"] == name)) for r in rows]
            values = np.array([c["measured"] for _, c in found])
            passed = np.array([c["ok"] for _, c in found])
            q = np.quantile(values, (0.0, 0.01, 0.5, 0.99, 1.0))
            failing = [s for (s, c) in found if not c["ok"]]
            lines.append(
                f"  {name:<24}{found[0][1]['target']:>8.3g}{found[0][1]['tolerance']:>6}{passed.mean():>8.1%}"
                + "".join(f"{v:>9.4f}" for v in q)
                + f"  {failing[:10]}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table (and optionally write every card as JSON); exit 1 if a check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=_seeds, default=SEEDS, help="e.g. 9001-9005 or 9001,9003")
    parser.add_argument("--families", type=lambda s: tuple(s.split(",")), default=FAMILIES)
    parser.add_argument("--embedders", type=lambda s: tuple(s.split(",")), default=EMBEDDERS)
    parser.add_argument("--learnability", action="store_true", help="also fit the well-specified model (slow)")
    parser.add_argument("--json", type=Path, help="write every card here")
    parser.add_argument("--summary", action="store_true", help="pass rates and distributions instead of the table")
    parser.add_argument("--spectrum-power", type=float, help="override WorldConfig.spectrum_power (e.g. 0: whitened)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    overrides = {} if args.spectrum_power is None else {"spectrum_power": args.spectrum_power}
    cards = measure(args.families, args.embedders, args.seeds, learnability=args.learnability, overrides=overrides)
    print(summary(cards) if args.summary else table(cards))
    if args.json is not None:
        from actionbank_env.core.io import atomic_write_json

        atomic_write_json(
            args.json, [{**{k: v for k, v in c.items() if k != "card"}, "card": c["card"].to_dict()} for c in cards]
        )
    return 0 if all(c["card"].ok for c in cards) else 1


if __name__ == "__main__":
    sys.exit(main())
