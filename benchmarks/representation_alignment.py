"""How much of the mixture-of-experts truth's action subspace a company's own text representation holds.

    python -m benchmarks.representation_alignment --seeds 401-404            # MiniLM, the designer's pool
    python -m benchmarks.representation_alignment --seeds 401-404 --sample-sizes 256,512,2048,4096

For each world seed, after the first campaign of 1,000 users (the state of :mod:`benchmarks.designer_lab`), it
draws the generative designer's pool and prints the share of the truth's coordinate variance over the pool's
texts that lies in the span of: the pool's (and bank's) top 16 principal components (the designer's basis), the
company's reference sample's top 16, the pool's top 32, and the texts served so far (the bank). With
``--sample-sizes`` it also prints, for independent offline samples of each size, the variance-weighted share of
that sample's top-16 subspace (what a truth fitted on it would score on) held by a 512-text and a 2,048-text
company sample: how idiosyncratic a PCA of n texts is in the embedding's spectrum.

With ``--capture 16,32,48`` it prints, for each number K of the pool's principal components, the improvement
captured by a model whose action side is that company basis *with unlimited logs*: the truth's logits with its
action coordinates replaced by their least-squares fit from the K components (every user's weights exact), then
the same greedy selection of 10 texts from the pool as the oracle's. It is the most a designer on that
representation can capture, whatever it learns:

    python -m benchmarks.representation_alignment --seeds 301-310 --capture 16,32,48
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np


def _basis(embeddings: np.ndarray, k: int) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    _, _, vt = np.linalg.svd(e - e.mean(axis=0), full_matrices=False)
    return vt[:k].T


def _first_pool(seed: int) -> tuple[Any, Any, np.ndarray]:
    """(case, bank, pool embeddings): the generative designer's first pool after 1,000 logged users."""
    from actionbank_env.core.copywriting import OfflineCopywriter
    from actionbank_env.protocols import DesignerContext
    from benchmarks.designer_lab import build_case, designer_rng
    from optimizers._common import ActionMemory, GenerativeConfig
    from optimizers.generative import draw_pool

    case = build_case(seed, 1000, embedder="minilm")
    world, bank = case.world, case.info["bank"]
    context = DesignerContext(world.embedder, OfflineCopywriter(), world.d_user, world.feature_names)
    memory = ActionMemory()
    memory.remember(bank)
    pool_rng, user_rng, _ = designer_rng(case).spawn(3)
    draw = draw_pool(
        context, GenerativeConfig(), memory, case.info["history"], bank, pool_rng=pool_rng, user_rng=user_rng
    )
    return case, bank, np.asarray(draw.embeddings, dtype=np.float64)


def representation_capture(seed: int, ks: tuple[int, ...], n_new: int = 10) -> dict[int, tuple[float, float, float]]:
    """K -> (R² of the truth's action coordinates from the pool's top K components, the gain of the bank chosen
    with unlimited logs, the oracle's gain): see the module docstring."""
    from actionbank_env.core.coverage import GreedySelector

    case, bank, pool = _first_pool(seed)
    truth, users = case.world.ground_truth, case.eval_users
    texts = np.vstack([np.asarray(bank.embeddings, dtype=np.float64), pool])
    n_bank = len(bank)
    logits = truth.logits(users, texts)  # (n, m)
    _, coords = truth.design(users[:1], texts)  # the truth's action coordinates (m, r)
    # Given the users, the logit is affine in the action coordinates: each user's intercept and weights, exactly.
    design = np.hstack([np.ones((coords.shape[0], 1)), coords])
    weights = np.linalg.lstsq(design, logits.T, rcond=None)[0]  # (r + 1, n)

    def value(picks: np.ndarray, probs: np.ndarray) -> float:
        return float(np.maximum(probs[:, :n_bank].max(axis=1), probs[:, n_bank + picks].max(axis=1)).mean())

    probs = truth.link(logits.copy())
    base = probs[:, :n_bank].max(axis=1)
    oracle = GreedySelector().run(probs[:, n_bank:], n_new, base=base).indices
    v_old, v_oracle = float(base.mean()), value(oracle, probs)
    centred = texts - texts.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = {}
    for k in ks:
        basis = np.hstack([np.ones((texts.shape[0], 1)), centred @ vt[:k].T])
        fitted = basis @ np.linalg.lstsq(basis, coords, rcond=None)[0]
        r2 = 1.0 - float(((coords - fitted) ** 2).sum() / ((coords - coords.mean(axis=0)) ** 2).sum())
        seen = truth.link((np.hstack([np.ones((fitted.shape[0], 1)), fitted]) @ weights).T)
        picks = GreedySelector().run(seen[:, n_bank:], n_new, base=seen[:, :n_bank].max(axis=1)).indices
        out[k] = (r2, value(picks, probs) - v_old, v_oracle - v_old)
    return out


def pool_alignment(seed: int) -> dict[str, float]:
    """Share of the truth's coordinate variance over the designer's pool held by each company-side span."""
    case, bank, pool = _first_pool(seed)
    world = case.world
    comps = world.ground_truth._projection.components  # (d_embed, 16): the truth's coordinates
    centred = pool - pool.mean(axis=0)
    total = float((centred @ comps).var(axis=0).sum())

    def held(basis: np.ndarray) -> float:
        return float((centred @ basis @ (basis.T @ comps)).var(axis=0).sum()) / total

    served = np.asarray(bank.embeddings, dtype=np.float64)
    return {
        "pool PCA 16": held(_basis(np.vstack([pool, served]), 16)),
        "company reference PCA 16": held(_basis(world.reference_embeddings, 16)),
        "pool PCA 32": held(_basis(pool, 32)),
        "served texts' span": held(_basis(served, served.shape[0] - 1)),
    }


def sample_alignment(seed: int, sizes: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    """For a top-16 PCA of n offline texts: the variance-weighted share a 512- and a 2,048-text sample hold."""
    from actionbank_env.core.copywriting import OfflineCopywriter
    from actionbank_env.core.embedders import SentenceTransformerEmbedder

    n_max = max(sizes)
    texts = OfflineCopywriter().write(n_max + 512 + 2048, rng=np.random.default_rng(seed))
    emb = np.asarray(SentenceTransformerEmbedder().embed(list(texts)), dtype=np.float64)
    small, large = _basis(emb[n_max : n_max + 512], 16), _basis(emb[n_max + 512 :], 16)
    out = {}
    for n in sizes:
        e = emb[:n] - emb[:n].mean(axis=0)
        _, s, vt = np.linalg.svd(e, full_matrices=False)
        q, w = vt[:16].T, (s[:16] / s[0]) ** 2  # spectrum power 1: coordinate l's preference variance ∝ σ_l²
        out[n] = tuple(float((((b.T @ q) ** 2).sum(axis=0) * w).sum() / w.sum()) for b in (small, large))
    return out  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """Print both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="401-404", help="world seeds, e.g. 401-404 or 401,405")
    parser.add_argument("--sample-sizes", default="", help="e.g. 256,512,2048,4096 (skipped if empty)")
    parser.add_argument(
        "--capture", default="", help="numbers of components, e.g. 16,32,48: capture with unlimited logs"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from benchmarks.world_cards import _seeds

    seeds = _seeds(args.seeds)
    if args.capture:
        ks = tuple(int(x) for x in args.capture.split(","))
        table: dict[int, list[tuple[float, float, float]]] = {k: [] for k in ks}
        for seed in seeds:
            row = representation_capture(seed, ks)
            cells = (f"K={k} R2 {r2:.3f} captured {gain / best:.3f}" for k, (r2, gain, best) in row.items())
            print(f"world {seed}: " + ", ".join(cells), flush=True)
            for k in ks:
                table[k].append(row[k])
        for k in ks:
            r2s, gains, bests = np.array(table[k]).T
            print(
                f"K={k}: mean R2 {r2s.mean():.3f}; captured with unlimited logs {gains.sum() / bests.sum():.3f} "
                f"(ratio of means over {len(seeds)} worlds; lowest world {np.min(gains / bests):.3f})"
            )
        return 0
    for seed in seeds:
        row = pool_alignment(seed)
        print(f"world {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    if args.sample_sizes:
        sizes = tuple(int(x) for x in args.sample_sizes.split(","))
        for seed in seeds[:2]:
            for n, (a, b) in sample_alignment(seed, sizes).items():
                print(f"sample seed {seed}: top-16 PCA of {n} texts, held by 512 texts {a:.3f}, by 2,048 {b:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
