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
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def _basis(embeddings: np.ndarray, k: int) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    _, _, vt = np.linalg.svd(e - e.mean(axis=0), full_matrices=False)
    return vt[:k].T


def pool_alignment(seed: int) -> dict[str, float]:
    """Share of the truth's coordinate variance over the designer's pool held by each company-side span."""
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
    comps = world.ground_truth._projection.components  # (d_embed, 16): the truth's coordinates
    pool = np.asarray(draw.embeddings, dtype=np.float64)
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
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from benchmarks.world_cards import _seeds

    seeds = _seeds(args.seeds)
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
