"""The offline copywriter: templates x themes x tones, plus mutations and recombinations of parents; no network,
deterministic for a given ``rng`` state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from actionbank_env._validation import check_int
from actionbank_env.core.actions import MAX_TEXT_LENGTH, clean_text, normalize_text
from actionbank_env.core.copywriting.brief import CopyBrief, _check_write_args
from actionbank_env.core.copywriting.vocabulary import (
    _ALL_CATEGORIES,
    _AMOUNT_PATTERN,
    _AMOUNTS,
    _COUNTS,
    _MINIMAL_SPLIT,
    _OFFER_PHRASE_PATTERN,
    _OFFER_PHRASES,
    _OFFERS,
    _PCT_PATTERN,
    _PCTS,
    _PERSONAL_PREFIXES,
    _PERSONAL_SUFFIXES,
    _PREFIX_PATTERN,
    _PREMIUM_ADJ,
    _PRODUCT_CATEGORY,
    _PRODUCT_PATTERN,
    _PRODUCTS,
    _REWARDS,
    _SEASONS,
    _SEPARATOR,
    _SOCIAL_COUNTS,
    _SYNONYM_PATTERN,
    _SYNONYMS,
    _TAIL_SEPARATORS,
    _TEMPLATES,
    _THEME_CATEGORIES,
    _TONE_PREFIXES,
    _TONE_SUFFIXES,
    _TRAIT_CATEGORIES,
    _TRAIT_TONES,
    _URGENCY,
    _URGENCY_PATTERN,
    THEMES,
    TONES,
    TRAIT_THEMES,
)

logger = logging.getLogger(__package__)  # the package's logger name, as before the split


class _Draws:
    """Buffered uniform draws from one Generator (one vectorised call per block, not one per choice).

    A text takes ~25 draws; ``pick`` and ``chance`` read the buffer themselves rather than through ``uniform``
    (one Python call per draw instead of two: the pool's 6,000 texts a run make ~200,000 draws).
    """

    __slots__ = ("_rng", "_buf", "_pos", "_size")

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self._rng = rng
        self._buf: list[float] = rng.random(block).tolist()
        self._pos = 0
        self._size = block

    def _refill(self) -> None:
        self._buf = self._rng.random(self._size).tolist()
        self._pos = 0

    def uniform(self) -> float:
        if self._pos >= self._size:
            self._refill()
        u = self._buf[self._pos]
        self._pos += 1
        return u

    def pick(self, items: Sequence[Any]) -> Any:
        if self._pos >= self._size:
            self._refill()
        u = self._buf[self._pos]
        self._pos += 1
        n = len(items)
        i = int(u * n)
        return items[i if i < n else n - 1]

    def chance(self, p: float) -> bool:
        if self._pos >= self._size:
            self._refill()
        u = self._buf[self._pos]
        self._pos += 1
        return u < p


def _capitalize_first(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :] if ch.islower() else text
        if not (ch.isspace() or ch in "\"'(["):
            return text
    return text


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


class OfflineCopywriter:
    """Realistic, varied marketing subject lines from templates; no network, no model.

    A fresh text is a theme template (:data:`THEMES`) filled with a product, an offer, a deadline, a season,
    ... then dressed in a tone (:data:`TONES`: a prefix or emoji), optionally with an urgency tail and a
    personalisation touch ("Your picks:", "picked for you"). With ``parents``, texts are also mutated
    (offer, urgency, product or word swaps, urgency tail added or removed, prefix changed) and recombined
    (the head of one parent with the tail of another). Every choice comes from ``rng``.

    Modes (:class:`CopyBrief`): ``explore`` spreads over all themes and tones (favouring the brief's);
    ``exploit`` mostly varies the parents; ``targeted`` writes for ``segment_traits`` (see
    :data:`TRAIT_THEMES`: price sensitivity -> discounts and deals, tech savviness -> launches, ...).

    Args:
        max_len: Longest text returned (at most :data:`~actionbank_env.core.actions.MAX_TEXT_LENGTH`).

    Example:
        >>> writer = OfflineCopywriter()
        >>> texts = writer.write(3, rng=np.random.default_rng(0))
        >>> len(texts), len({t.casefold() for t in texts})
        (3, 3)
        >>> texts == writer.write(3, rng=np.random.default_rng(0))
        True
    """

    name = "offline-v1"

    def __init__(self, *, max_len: int = MAX_TEXT_LENGTH) -> None:
        self.max_len = check_int("OfflineCopywriter.max_len", max_len, low=20, high=MAX_TEXT_LENGTH)

    def __repr__(self) -> str:
        return f"OfflineCopywriter(max_len={self.max_len})"

    # ---------------------------------------------------------------- fresh texts

    def _fill(self, template: str, draws: _Draws, categories: tuple[str, ...]) -> str:
        category = draws.pick(categories)
        product = draws.pick(_PRODUCTS[category])
        values = {
            "product": product,
            "product2": draws.pick(_PRODUCTS[draws.pick(categories)]),
            "pct": draws.pick(_PCTS),
            "amt": draws.pick(_AMOUNTS),
            "amt2": draws.pick((50, 75, 100, 150, 200)),
            "deadline": draws.pick(("tonight", "at midnight", "Sunday", "soon", "in 24 hours", "this weekend")),
            "season": draws.pick(_SEASONS),
            "adj": draws.pick(_PREMIUM_ADJ),
            "count": draws.pick(_COUNTS),
            "people": draws.pick(_SOCIAL_COUNTS),
        }
        if values["product2"] == product:
            values["product2"] = draws.pick(_PRODUCTS[draws.pick(_ALL_CATEGORIES)])
        offer = draws.pick(_OFFERS).format(**values)
        values["offer"] = offer
        values["Offer"] = _capitalize_first(offer)
        values["reward"] = draws.pick(_REWARDS).format(**values)
        return _capitalize_first(template.format(**values))

    def _fresh(self, draws: _Draws, brief: CopyBrief) -> str:
        themes, tones, categories = self._mix(brief, draws)
        theme = draws.pick(themes)
        tone = draws.pick(tones)
        theme_categories = _THEME_CATEGORIES.get(theme, _ALL_CATEGORIES)
        if categories:
            shared = tuple(c for c in categories if c in theme_categories)
            theme_categories = shared or theme_categories
        core = self._fill(draws.pick(_TEMPLATES[theme]), draws, theme_categories)

        # Urgency tail: likely for urgent tones / urgency-driven briefs, occasional otherwise.
        p_tail = 0.55 if tone == "urgent" or "urgency_response" in brief.segment_traits else 0.18
        if theme != "urgency" and not _URGENCY_PATTERN.search(core) and draws.chance(p_tail):
            urgency = draws.pick(_URGENCY)
            core = f"{core}{draws.pick(_TAIL_SEPARATORS[:3])}{urgency.upper() if tone == 'urgent' and draws.chance(0.3) else urgency}"
        # Personalisation touch.
        p_personal = 0.35 if "brand_loyalty" in brief.segment_traits else 0.12
        personal_prefix = False
        if draws.chance(p_personal):
            if draws.chance(0.5) and ":" not in core:
                core = f"{draws.pick(_PERSONAL_PREFIXES)} {core}"
                personal_prefix = True
            elif "you" not in core.casefold():
                core = f"{core}, {draws.pick(_PERSONAL_SUFFIXES)}"
        # Tone dressing.
        if tone == "minimalist":
            sentences = _MINIMAL_SPLIT.split(core)
            core = ". ".join(_capitalize_first(x) for x in sentences if x).rstrip("!?.") + "."
        else:
            prefixes = _TONE_PREFIXES[tone]
            if ":" in core:  # avoid "Hurry: Deal alert: ..." chains; keep exclamations and ellipses
                prefixes = tuple(p for p in prefixes if not p.endswith(":"))
            if prefixes and not personal_prefix and draws.chance(0.35):
                core = f"{draws.pick(prefixes)} {core}"
            suffixes = _TONE_SUFFIXES[tone]
            if suffixes and draws.chance(0.3):
                suffix = draws.pick(suffixes)
                core = f"{core.rstrip('.')}{suffix}" if suffix == "!" else f"{core} {suffix}"
        return core

    @staticmethod
    def _mix(brief: CopyBrief, draws: _Draws) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """Themes, tones and product categories for one text (the brief's most of the time)."""
        themes: tuple[str, ...] = THEMES
        tones: tuple[str, ...] = TONES
        categories: tuple[str, ...] = ()
        focus = 0.6 if brief.mode == "explore" else 0.9
        trait_themes = tuple(dict.fromkeys(t for s in brief.segment_traits for t in TRAIT_THEMES[s]))
        trait_tones = tuple(dict.fromkeys(t for s in brief.segment_traits for t in _TRAIT_TONES[s]))
        if brief.mode == "targeted" and trait_themes:
            themes = tuple(dict.fromkeys(trait_themes + brief.themes))
            tones = tuple(dict.fromkeys(brief.tones + trait_tones)) or TONES
            categories = tuple(dict.fromkeys(c for s in brief.segment_traits for c in _TRAIT_CATEGORIES.get(s, ())))
        else:
            if brief.themes and draws.chance(focus):
                themes = brief.themes
            elif trait_themes and draws.chance(focus):
                themes = trait_themes
            if brief.tones and draws.chance(focus):
                tones = brief.tones
        if brief.mode == "targeted" and brief.tones and draws.chance(0.5):
            tones = brief.tones
        return themes, tones, categories

    # ---------------------------------------------------------------- mutations

    def _mutate(self, parent: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
        ops: tuple[Callable[[str, Sequence[str], _Draws, CopyBrief], str | None], ...] = (
            _swap_offer,
            _swap_urgency,
            _swap_words,
            _toggle_tail,
            _swap_product,
            _recombine,
            _retone,
        )
        text = parent
        n_ops = 1 + int(draws.chance(0.35))
        changed = False
        for _ in range(n_ops):
            key = normalize_text(text)
            for _attempt in range(4):
                out = draws.pick(ops)(text, parents, draws, brief)
                if out is not None and normalize_text(out) != key:
                    text, changed = out, True
                    break
        return text if changed else None

    # ---------------------------------------------------------------- API

    def write(
        self,
        n: int,
        *,
        rng: np.random.Generator,
        parents: Sequence[str] = (),
        brief: CopyBrief | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Write up to ``n`` distinct subject lines.

        Args:
            n: How many texts to return (fewer only if the attempts run out, which needs a huge ``n``).
            rng: The source of every choice; the same state gives the same texts.
            parents: Texts to vary and recombine (mostly in ``"exploit"`` mode); never returned unchanged.
            brief: Mode, themes, tones and segment traits (default: explore everything).
            exclude: Texts not to return (compared with :func:`~actionbank_env.core.actions.normalize_text`).

        Returns:
            Cleaned texts, distinct after normalisation, each at most ``max_len`` characters.
        """
        n, parent_texts, brief, seen = _check_write_args("OfflineCopywriter", n, rng, parents, brief, exclude)
        seen |= {normalize_text(p) for p in parent_texts}
        draws = _Draws(rng)
        if parent_texts:
            p_mutate = {"exploit": 0.95, "targeted": 0.3, "explore": 0.2}[brief.mode]
        else:
            p_mutate = 0.0
        out: list[str] = []
        mutated: list[str] = []  # accepted children of parents, which may be mutated again (drift)
        max_attempts = 30 * n + 100
        attempts = 0
        while len(out) < n and attempts < max_attempts:
            attempts += 1
            text: str | None
            if p_mutate and draws.chance(p_mutate):
                # Mutate either a parent or (sometimes) an accepted child, so lines drift step by step.
                pool = mutated if mutated and draws.chance(0.25) and brief.mode == "exploit" else parent_texts
                text = self._mutate(draws.pick(pool), parent_texts, draws, brief)
                if text is None or _clumsy(text):
                    continue
                is_mutation = True
            else:
                text = self._fresh(draws, brief)
                is_mutation = False
            text = clean_text(text)
            if not text or len(text) > self.max_len:
                continue
            key = normalize_text(text)
            if key in seen:
                continue
            seen.add(key)
            out.append(text)
            if is_mutation:
                mutated.append(text)
        if len(out) < n:
            logger.warning("OfflineCopywriter wrote %d of %d requested texts after %d attempts.", len(out), n, attempts)
        return out


def _clumsy(text: str) -> bool:
    """A mutation that stacked too many labels or repeats an urgency phrase ("Last chance: ..., last chance")."""
    if text.count(": ") > 2:
        return True
    found = [m.group(1).casefold() for m in _URGENCY_PATTERN.finditer(text)]
    return len(found) != len(set(found)) or len(found) > 2


def _swap_offer(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    pct = _PCT_PATTERN.search(text)
    if pct is not None:
        options = tuple(p for p in _PCTS if str(p) != pct.group(1))
        return text[: pct.start(1)] + str(draws.pick(options)) + text[pct.end(1) :]
    amount = _AMOUNT_PATTERN.search(text)
    if amount is not None:
        options_amt = tuple(a for a in _AMOUNTS if str(a) != amount.group(2))
        return text[: amount.start(2)] + str(draws.pick(options_amt)) + text[amount.end(2) :]
    phrase = _OFFER_PHRASE_PATTERN.search(text)
    if phrase is not None:
        options_ph = tuple(o for o in _OFFER_PHRASES if o.casefold() != phrase.group(1).casefold())
        new = draws.pick(options_ph)
        return text[: phrase.start()] + _match_case(phrase.group(1), new) + text[phrase.end() :]
    return None


def _swap_urgency(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    match = _URGENCY_PATTERN.search(text)
    if match is None:
        return None
    options = tuple(u for u in _URGENCY if u.casefold() != match.group(1).casefold())
    return text[: match.start()] + _match_case(match.group(1), draws.pick(options)) + text[match.end() :]


def _swap_words(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    matches = list(_SYNONYM_PATTERN.finditer(text))
    if not matches:
        return None
    match = draws.pick(matches)
    new = draws.pick(_SYNONYMS[match.group(1).casefold()])
    return text[: match.start()] + _match_case(match.group(1), new) + text[match.end() :]


def _toggle_tail(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    stripped = text.rstrip(" !.⏰🔥✨🎉")
    matches = list(_URGENCY_PATTERN.finditer(stripped))
    if matches and matches[-1].end() == len(stripped) and matches[-1].start() > 0:
        head = stripped[: matches[-1].start()].rstrip(" —–-,|:")
        if len(head.split()) >= 2:
            return head
    if matches:
        return None
    tail = draws.pick(_URGENCY)
    if tone_urgent(brief) and draws.chance(0.4):
        tail = tail.upper()
    return f"{text.rstrip(' .')}{draws.pick(_TAIL_SEPARATORS[:3])}{tail}"


def tone_urgent(brief: CopyBrief) -> bool:
    """Whether a brief asks for urgency (urgent tone or urgency-responsive segment)."""
    return "urgent" in brief.tones or "urgency_response" in brief.segment_traits


def _swap_product(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    match = _PRODUCT_PATTERN.search(text)
    if match is None:
        return None
    category = _PRODUCT_CATEGORY[match.group(1).casefold()]
    options = tuple(p for p in _PRODUCTS[category] if p.casefold() != match.group(1).casefold())
    return text[: match.start()] + _match_case(match.group(1), draws.pick(options)) + text[match.end() :]


def _split(text: str) -> tuple[str, str, str]:
    """(head, separator, tail) at the first separator, or at the middle word."""
    match = _SEPARATOR.search(text)
    if match is not None and match.start() > 0 and match.end() < len(text):
        return text[: match.start()], match.group(0), text[match.end() :]
    words = text.split()
    mid = max(1, len(words) // 2)
    return " ".join(words[:mid]), " ", " ".join(words[mid:])


def _recombine(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    key = normalize_text(text)  # once, not once per parent
    others = [p for p in parents if normalize_text(p) != key]
    if not others:
        return None
    other = draws.pick(others)
    if draws.chance(0.5):
        head, sep, _ = _split(text)
        _, _, tail = _split(other)
    else:
        head, sep, _ = _split(other)
        _, _, tail = _split(text)
    if not head or not tail:
        return None
    return _capitalize_first(f"{head}{sep}{tail}")


def _retone(text: str, parents: Sequence[str], draws: _Draws, brief: CopyBrief) -> str | None:
    match = _PREFIX_PATTERN.match(text)
    if match is not None and draws.chance(0.5):
        return _capitalize_first(text[match.end() :])
    tones = tuple(t for t in (brief.tones or TONES) if _TONE_PREFIXES[t]) or ("friendly",)
    body = text[match.end() :] if match is not None else text
    prefixes = _TONE_PREFIXES[draws.pick(tones)] + _PERSONAL_PREFIXES
    if ":" in body:  # "Hurry: Last chance: ..." reads badly; keep exclamations and ellipses
        prefixes = tuple(p for p in prefixes if not p.endswith(":")) or ("Psst…", "Good news!", "Oh hey!")
    return f"{draws.pick(prefixes)} {body}"
