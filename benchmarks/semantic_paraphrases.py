"""How far above the typical text each card paraphrase sits on its own concept (semantic family, MiniLM).

    python -m benchmarks.semantic_paraphrases --seed 9003

For one world seed, prints each paraphrase's similarity to its own concept in standard deviations over the
ground truth's fit texts (the statistic the match threshold, ``SemanticGroundTruth.MATCH_THRESHOLD`` = 1 sd,
applies to), for the family's centroid matching and for a soft nearest-exemplar matching
(``tau * log mean exp(cos / tau)`` over the concept's exemplar phrases). A paraphrase below 1 sd under both is
placed by the embedder with other texts, not with the concept: no matching rule over these exemplars targets it.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Print the own-concept z-score of every paraphrase and neutral text under each matching rule."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=9003, help="world seed")
    parser.add_argument("--taus", type=lambda s: tuple(float(x) for x in s.split(",")), default=(0.1, 0.05))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from actionbank_env.core.ground_truth import SEMANTIC_CONCEPTS
    from actionbank_env.core.world import World, WorldConfig
    from actionbank_env.evaluation import NEUTRAL_TEXTS, SEMANTIC_PARAPHRASES

    world = World.build(WorldConfig(world_seed=args.seed, embedder="minilm", ground_truth="semantic"))

    def unit(texts: list[str] | tuple[str, ...]) -> np.ndarray:
        emb = np.asarray(world.embedder.embed(list(texts)), dtype=np.float64)
        out: np.ndarray = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        return out

    fit = unit(world.ground_truth_reference_texts[0::2])
    exemplars = [unit(phrases) for phrases, _ in SEMANTIC_CONCEPTS]
    paraphrases = [text for group in SEMANTIC_PARAPHRASES for text in group]
    concept_of = [k for k, group in enumerate(SEMANTIC_PARAPHRASES) for _ in group]
    para, neutral = unit(paraphrases), unit(NEUTRAL_TEXTS)
    centroids = np.stack([e.mean(axis=0) / np.linalg.norm(e.mean(axis=0)) for e in exemplars])
    rules: dict[str, object] = {"centroid": None, **{f"nearest tau={t}": t for t in args.taus}}
    columns = {}
    for name, tau in rules.items():

        def sim(e: np.ndarray, tau: object = tau) -> np.ndarray:
            if tau is None:
                out: np.ndarray = e @ centroids.T
                return out
            t = float(tau)  # type: ignore[arg-type]
            return np.stack([t * np.log(np.exp(e @ x.T / t).mean(axis=1)) for x in exemplars], axis=1)

        ref = sim(fit)
        mean, sd = ref.mean(axis=0), ref.std(axis=0)
        z_para = (sim(para) - mean) / sd
        columns[name] = (z_para[np.arange(len(paraphrases)), concept_of], ((sim(neutral) - mean) / sd).max())
    print(f"world seed {args.seed}: own-concept z of each paraphrase (a match starts at 1 sd)")
    print(f"{'paraphrase':<62}" + "".join(f"{name:>18}" for name in columns))
    for i, text in enumerate(paraphrases):
        print(f"{text[:60]:<62}" + "".join(f"{col[0][i]:>18.2f}" for col in columns.values()))
    print(f"{'below 1 sd':<62}" + "".join(f"{int((col[0] < 1).sum()):>18}" for col in columns.values()))
    print(
        f"{'largest z of a neutral text on any concept':<62}" + "".join(f"{col[1]:>18.2f}" for col in columns.values())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
