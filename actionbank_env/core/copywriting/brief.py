"""What a designer asks a copywriter for (:class:`CopyBrief`), the :class:`Copywriter` protocol, and the argument
checks every ``write`` shares.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from actionbank_env._validation import check_choice, check_int
from actionbank_env.core.actions import clean_text, normalize_text
from actionbank_env.core.copywriting.vocabulary import MODES, THEMES, TONES
from actionbank_env.core.users import FEATURE_NAMES
from actionbank_env.errors import ConfigTypeError


def _check_names(name: str, value: Any, choices: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigTypeError(f"{name} must be a tuple of str, got {value!r} of type {type(value).__name__}.")
    items = tuple(value)
    for i, item in enumerate(items):
        check_choice(f"{name}[{i}]", item, choices)
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyBrief:
    """What a designer asks a copywriter for.

    Attributes:
        mode: ``"explore"`` (broad, varied texts), ``"exploit"`` (variations of the ``parents`` given to
            :meth:`Copywriter.write`) or ``"targeted"`` (texts aimed at ``segment_traits``).
        themes: Themes to favour, from :data:`THEMES` (empty: any).
        tones: Tones to favour, from :data:`TONES` (empty: any).
        segment_traits: User features (from :data:`~actionbank_env.core.users.FEATURE_NAMES`) that the log shows
            respond; ``"targeted"`` texts are written for them.

    Example:
        >>> CopyBrief(mode="targeted", segment_traits=("price_sensitivity",)).segment_traits
        ('price_sensitivity',)
        >>> CopyBrief(mode="exploit", tones=("urgnt",))
        Traceback (most recent call last):
        ...
        actionbank_env.errors.ConfigError: CopyBrief.tones[0] must be one of ['friendly', 'informative', 'luxurious', 'minimalist', 'playful', 'urgent'], got 'urgnt'. Did you mean 'urgent'?
    """

    mode: str = "explore"
    themes: tuple[str, ...] = ()
    tones: tuple[str, ...] = ()
    segment_traits: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_choice("CopyBrief.mode", self.mode, MODES)
        object.__setattr__(self, "themes", _check_names("CopyBrief.themes", self.themes, THEMES))
        object.__setattr__(self, "tones", _check_names("CopyBrief.tones", self.tones, TONES))
        object.__setattr__(
            self, "segment_traits", _check_names("CopyBrief.segment_traits", self.segment_traits, FEATURE_NAMES)
        )


@runtime_checkable
class Copywriter(Protocol):
    """A source of marketing texts (subject lines).

    Attributes:
        name: Identifies the source and its settings (e.g. ``"offline-v1"``, ``"openai:gpt-4o-mini"``).
    """

    name: str

    def write(
        self,
        n: int,
        *,
        rng: np.random.Generator,
        parents: Sequence[str] = (),
        brief: CopyBrief | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Up to ``n`` distinct cleaned texts, none in ``exclude`` (compared normalised)."""
        ...


def _check_write_args(
    owner: str, n: Any, rng: Any, parents: Any, brief: Any, exclude: Any
) -> tuple[int, list[str], CopyBrief, set[str]]:
    n = check_int(f"{owner}.write n", n, low=0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{owner}.write rng must be a numpy.random.Generator, got {type(rng).__name__}.")
    if brief is None:
        brief = CopyBrief()
    elif not isinstance(brief, CopyBrief):
        raise TypeError(f"{owner}.write brief must be a CopyBrief or None, got {type(brief).__name__}.")
    if isinstance(parents, str):
        raise TypeError(f"{owner}.write parents must be a sequence of str, got a single str {parents!r}.")
    clean_parents: list[str] = []
    for i, p in enumerate(parents):
        if not isinstance(p, str):
            raise TypeError(f"{owner}.write parents[{i}] must be a str, got {type(p).__name__}.")
        cp = clean_text(p)
        if cp:
            clean_parents.append(cp)
    if isinstance(exclude, str):
        raise TypeError(f"{owner}.write exclude must be a collection of str, got a single str {exclude!r}.")
    excluded = {normalize_text(e) for e in exclude if isinstance(e, str)}
    return n, clean_parents, brief, excluded
