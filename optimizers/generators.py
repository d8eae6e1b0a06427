"""Candidate generation: turn the observation log into a pool of new texts for the next bank.

:class:`CopywriterCandidateGenerator` asks a copywriter (the context's: OpenAI's chat model when a key is
configured, the offline template writer otherwise) for three kinds of texts:

- **exploit**: variations of the best-performing logged actions (``parents``), ranked by their CTR shrunk
  towards the pooled CTR, so an action shown twice with one click does not outrank a proven one;
- **explore**: new themes and tones;
- **targeted**: texts written for the user traits the log shows respond (the features most positively
  correlated with clicks, or scores given by the caller, e.g. from a fitted reward model).

The pool is deduplicated (normalised text) against the bank and within itself.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int
from actionbank_env.core.actions import normalize_text
from actionbank_env.core.copywriting import CopyBrief
from actionbank_env.core.users import FEATURE_NAMES
from optimizers._common import MODE_NAMES, GenerativeConfig, shrunk_ctr

if TYPE_CHECKING:
    from actionbank_env.core.actions import ActionBank
    from actionbank_env.core.copywriting import Copywriter
    from actionbank_env.core.observations import ObservationLog

__all__ = ["CandidatePool", "CopywriterCandidateGenerator", "allocate", "click_trait_scores", "best_parents"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CandidatePool:
    """Generated candidates and how each was made.

    Attributes:
        texts: Candidate texts, distinct after normalisation and none in the bank.
        modes: ``"exploit"``, ``"explore"`` or ``"targeted"`` for each text.
        parents: Texts the exploit candidates vary.
        segment_traits: Traits the targeted candidates were written for.
        requested: Texts asked for per mode.
    """

    texts: tuple[str, ...]
    modes: tuple[str, ...]
    parents: tuple[str, ...] = ()
    segment_traits: tuple[str, ...] = ()
    requested: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self) -> dict[str, int]:
        """Texts per mode."""
        return {m: sum(1 for x in self.modes if x == m) for m in MODE_NAMES}

    def summary(self) -> dict[str, Any]:
        """JSON-ready description (without the texts)."""
        return {
            "pool_size": len(self),
            "pool_counts": self.counts(),
            "pool_requested": dict(self.requested),
            "parents": list(self.parents),
            "segment_traits": list(self.segment_traits),
        }


def allocate(n: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """Split ``n`` into integer counts proportional to ``ratios`` (largest remainder; ties in key order).

    Example:
        >>> allocate(10, {"exploit": 0.4, "explore": 0.3, "targeted": 0.3})
        {'exploit': 4, 'explore': 3, 'targeted': 3}
        >>> allocate(5, {"a": 1.0, "b": 1.0, "c": 1.0})
        {'a': 2, 'b': 2, 'c': 1}
    """
    n = check_int("allocate n", n, low=0)
    keys = list(ratios)
    weights = np.array([max(float(ratios[k]), 0.0) for k in keys])
    if weights.sum() <= 0:
        raise ValueError(f"allocate ratios must have a positive sum, got {dict(ratios)}.")
    exact = n * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    return {k: int(c) for k, c in zip(keys, counts, strict=True)}


def click_trait_scores(users: NDArray[np.float64], clicks: NDArray[np.float64]) -> NDArray[np.float64]:
    """Pearson correlation of each user feature with the click, shape (d_user,) (0 for a constant column).

    Example:
        >>> users = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
        >>> click_trait_scores(users, np.array([0.0, 1.0, 0.0, 1.0])).tolist()
        [1.0, 0.0]
    """
    if users.shape[0] < 2:
        return np.zeros(users.shape[1])
    x = users - users.mean(axis=0)
    y = clicks - clicks.mean()
    denom = np.sqrt((x**2).sum(axis=0) * (y**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (x * y[:, None]).sum(axis=0) / denom
    return np.where(denom > 0, corr, 0.0)


def best_parents(
    log: ObservationLog, texts_by_id: Mapping[str, str], n_parents: int, *, prior_strength: float
) -> list[str]:
    """The texts of the ``n_parents`` logged actions with the best shrunk CTR (only ids with a known text).

    Ties are broken by impressions, then by id, so the result does not depend on dict order.
    """
    stats = log.per_action()
    ids = [i for i in sorted(stats) if i in texts_by_id]
    if not ids:
        return []
    shows = np.array([stats[i][0] for i in ids], dtype=np.float64)
    clicks = np.array([stats[i][1] for i in ids], dtype=np.float64)
    score = shrunk_ctr(shows, clicks, prior_strength=prior_strength)
    order = np.lexsort((np.arange(len(ids)), -shows, -score))
    return [texts_by_id[ids[i]] for i in order[:n_parents]]


class CopywriterCandidateGenerator:
    """Exploit / explore / targeted candidates from a copywriter (see the module docstring).

    Implements :class:`actionbank_env.protocols.CandidateGenerator`.

    Args:
        copywriter: The text source (:class:`~actionbank_env.core.copywriting.OfflineCopywriter` or
            :class:`~actionbank_env.core.copywriting.OpenAICopywriter`).
        config: Ratios, ``n_parents``, ``prior_strength`` and ``n_segment_traits`` are read from it.
        feature_names: Names of the user features (must be known traits for targeted briefs; others are
            skipped).

    Example:
        >>> from actionbank_env.core.copywriting import OfflineCopywriter
        >>> from actionbank_env.core.observations import ObservationLog
        >>> gen = CopywriterCandidateGenerator(OfflineCopywriter())
        >>> pool = gen.generate(None, ObservationLog(), 6, rng=np.random.default_rng(0))
        >>> len(pool), pool.counts()  # an empty log has no parents and no traits: all explore
        (6, {'exploit': 0, 'explore': 6, 'targeted': 0})
    """

    def __init__(
        self,
        copywriter: Copywriter,
        config: GenerativeConfig | None = None,
        *,
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> None:
        self.copywriter = copywriter
        self.config = config or GenerativeConfig()
        self.feature_names = tuple(feature_names)

    def __repr__(self) -> str:
        return f"CopywriterCandidateGenerator(copywriter={self.copywriter!r}, ratios={self.config.ratios})"

    def segment_traits(self, log: ObservationLog, trait_scores: NDArray[np.float64] | None = None) -> tuple[str, ...]:
        """The ``n_segment_traits`` known traits with the largest positive score (click correlation by default)."""
        if trait_scores is None:
            if len(log) < 2:
                return ()
            users = log.users
            if users.shape[1] != len(self.feature_names):
                return ()
            trait_scores = click_trait_scores(users, log.clicks.astype(np.float64))
        scores = np.asarray(trait_scores, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        known = set(FEATURE_NAMES)
        out = [self.feature_names[i] for i in order if scores[i] > 0 and self.feature_names[i] in known]
        return tuple(out[: self.config.n_segment_traits])

    def generate(
        self,
        bank: ActionBank | None,
        log: ObservationLog,
        n: int,
        *,
        rng: np.random.Generator,
        texts_by_id: Mapping[str, str] | None = None,
        trait_scores: NDArray[np.float64] | None = None,
        exclude: Collection[str] = (),
    ) -> CandidatePool:
        """Write up to ``n`` candidates, split between the modes by the configured ratios.

        A mode that cannot run (no logged parent for exploit, no responsive trait for targeted) or that
        comes back short hands its share to explore.

        Args:
            bank: The current bank (candidates never repeat its texts); ``None`` for none.
            log: Observations the parents and traits are read from.
            n: Pool size.
            rng: The source of every choice.
            texts_by_id: Texts of logged ids (default: the bank's); retired actions can be parents too.
            trait_scores: Score per user feature (higher: more responsive), shape (d_user,); default: the
                correlation of each feature with the click in ``log``.
            exclude: Further texts not to return.

        Returns:
            The pool, exploit texts first, then explore, then targeted.
        """
        n = check_int("CopywriterCandidateGenerator.generate n", n, low=0)
        cfg = self.config
        bank_texts = list(bank.texts) if bank is not None else []
        lookup: dict[str, str] = {a.id: a.text for a in bank} if bank is not None else {}
        if texts_by_id is not None:
            lookup = {**dict(texts_by_id), **lookup}
        parents = best_parents(log, lookup, cfg.n_parents, prior_strength=cfg.prior_strength) if len(log) else []
        traits = self.segment_traits(log, trait_scores)
        requested = allocate(n, cfg.ratios)
        if not parents:
            requested["explore"] += requested.pop("exploit")
            requested["exploit"] = 0
        if not traits:
            requested["explore"] += requested.pop("targeted")
            requested["targeted"] = 0
        requested = {m: requested[m] for m in MODE_NAMES}
        seen = {normalize_text(t) for t in [*bank_texts, *exclude, *parents]}
        texts: dict[str, list[str]] = {m: [] for m in MODE_NAMES}

        def write(mode: str, k: int, brief: CopyBrief, mode_parents: Sequence[str]) -> None:
            if k <= 0:
                return
            got = self.copywriter.write(k, rng=rng, parents=mode_parents, brief=brief, exclude=list(seen))
            for text in got:
                key = normalize_text(text)
                if key not in seen and len(texts[mode]) < k:
                    seen.add(key)
                    texts[mode].append(text)

        write("exploit", requested["exploit"], CopyBrief(mode="exploit"), parents)
        write("targeted", requested["targeted"], CopyBrief(mode="targeted", segment_traits=traits), ())
        shortfall = requested["exploit"] - len(texts["exploit"]) + requested["targeted"] - len(texts["targeted"])
        write("explore", requested["explore"] + shortfall, CopyBrief(mode="explore"), ())
        if sum(len(v) for v in texts.values()) < n:
            logger.warning("Candidate generation returned %d of %d texts.", sum(len(v) for v in texts.values()), n)
        ordered = [(t, m) for m in MODE_NAMES for t in texts[m]]
        return CandidatePool(
            texts=tuple(t for t, _ in ordered),
            modes=tuple(m for _, m in ordered),
            parents=tuple(parents),
            segment_traits=traits,
            requested=requested,
        )

    def propose(self, bank: ActionBank, log: ObservationLog, n: int, *, rng: np.random.Generator) -> list[str]:
        """Up to ``n`` new candidate texts, distinct and not in ``bank`` (the protocol's entry point)."""
        return list(self.generate(bank, log, n, rng=rng).texts)
