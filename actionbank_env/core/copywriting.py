"""Text sources for action banks: an offline template/mutation copywriter and an OpenAI chat copywriter.

Both implement :class:`Copywriter`: ``write(n, rng=..., parents=..., brief=..., exclude=...)`` returns up to
``n`` distinct, cleaned marketing email subject lines (distinct by :func:`~actionbank_env.core.actions.normalize_text`),
none of them in ``exclude``, each at most :data:`~actionbank_env.core.actions.MAX_TEXT_LENGTH` characters.

- :class:`OfflineCopywriter`: themes x tones x offers x products x urgency x personalisation templates, plus
  mutations and recombinations of ``parents``; no network, deterministic for a given ``rng`` state.
- :class:`OpenAICopywriter`: prompts a chat model for JSON ``{"subject_lines": [...]}``, validates and sanitises
  the lines (:func:`sanitize_lines`), retries with bounded backoff and caches responses in SQLite.

Text from a model is untrusted data: it is cleaned and filtered, never executed or followed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from actionbank_env._validation import check_choice, check_int, check_real, check_str
from actionbank_env.core.actions import MAX_TEXT_LENGTH, clean_text, normalize_text
from actionbank_env.core.openai_api import BadResponse, Secret, call_with_retries, make_client, resolve_api_key
from actionbank_env.core.users import FEATURE_NAMES
from actionbank_env.errors import ConfigTypeError, ServiceError

__all__ = [
    "Copywriter",
    "CopyBrief",
    "OfflineCopywriter",
    "OpenAICopywriter",
    "FallbackCopywriter",
    "sanitize_lines",
    "MODES",
    "THEMES",
    "TONES",
    "TRAIT_THEMES",
]

logger = logging.getLogger(__name__)

#: Generation modes of a :class:`CopyBrief`.
MODES: tuple[str, ...] = ("explore", "exploit", "targeted")


# --------------------------------------------------------------------------------------------------------------
# Vocabulary of the offline copywriter
# --------------------------------------------------------------------------------------------------------------

_PRODUCTS: dict[str, tuple[str, ...]] = {
    "fashion": (
        "sneakers",
        "running shoes",
        "denim",
        "summer dresses",
        "winter coats",
        "leather boots",
        "activewear",
        "sunglasses",
    ),
    "tech": (
        "headphones",
        "smartwatches",
        "laptops",
        "wireless earbuds",
        "smart home gadgets",
        "gaming gear",
        "4K TVs",
        "tablets",
        "phone accessories",
        "drones",
    ),
    "home": (
        "kitchen essentials",
        "bedding",
        "home decor",
        "coffee makers",
        "cookware",
        "scented candles",
        "patio furniture",
    ),
    "beauty": ("skincare", "fragrances", "makeup", "haircare", "bath and body favorites"),
    "luxury": (
        "designer handbags",
        "fine jewelry",
        "Swiss watches",
        "cashmere sweaters",
        "leather goods",
        "silk scarves",
    ),
    "outdoor": ("hiking gear", "yoga mats", "camping gear", "cycling gear", "fitness trackers"),
    "food": ("gourmet coffee", "artisan chocolates", "fine wines", "healthy snacks"),
    "family": ("toys", "pet supplies", "kids' clothing", "bestselling books"),
}
_ALL_CATEGORIES: tuple[str, ...] = tuple(_PRODUCTS)
_PRODUCT_CATEGORY: dict[str, str] = {p.casefold(): c for c, ps in _PRODUCTS.items() for p in ps}
# Longest first, so "running shoes" wins over a shorter product inside it.
_PRODUCT_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(p) for p in sorted(_PRODUCT_CATEGORY, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)

_PCTS: tuple[int, ...] = (10, 15, 20, 25, 30, 35, 40, 50, 60, 70)
_AMOUNTS: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 50, 75, 100)
_OFFERS: tuple[str, ...] = (
    "{pct}% off",
    "{pct}% off",
    "up to {pct}% off",
    "an extra {pct}% off",
    "${amt} off",
    "${amt} off orders over ${amt2}",
    "buy one, get one free",
    "BOGO 50% off",
    "a free gift with every order",
    "free shipping",
    "2 for 1",
    "double rewards points",
)
_URGENCY: tuple[str, ...] = (
    "today only",
    "ends tonight",
    "ends at midnight",
    "48 hours only",
    "this weekend only",
    "while supplies last",
    "final hours",
    "last chance",
    "don't miss out",
    "limited time",
    "only a few left",
    "ends Sunday",
    "hurry, almost gone",
    "last call",
)
_URGENCY_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(u) for u in sorted(_URGENCY, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_SEASONS: tuple[str, ...] = (
    "Spring",
    "Summer",
    "Fall",
    "Winter",
    "Holiday",
    "Back-to-school",
    "Black Friday",
    "Cyber Monday",
    "Mother's Day",
    "Father's Day",
    "New Year",
    "Valentine's Day",
)
_PREMIUM_ADJ: tuple[str, ...] = (
    "signature",
    "limited-edition",
    "handcrafted",
    "exclusive",
    "timeless",
    "iconic",
    "refined",
    "luxury",
)
_REWARDS: tuple[str, ...] = (
    "double points",
    "a members-only gift",
    "early access",
    "a birthday treat",
    "bonus rewards",
    "{pct}% off as a thank-you",
    "free express shipping",
)
_COUNTS: tuple[str, ...] = ("3", "5", "7", "10", "12")
_SOCIAL_COUNTS: tuple[str, ...] = ("10,000", "25,000", "50,000", "100,000", "a million")

#: Themes the offline copywriter knows; a :class:`CopyBrief` names a subset.
THEMES: tuple[str, ...] = (
    "discount",
    "premium",
    "tech_launch",
    "urgency",
    "loyalty",
    "social_proof",
    "quality",
    "free_shipping",
    "bundle",
    "seasonal",
    "back_in_stock",
    "personal",
    "new_arrivals",
    "classic",
)

# Core templates per theme. Slots: product, product2, offer, pct, amt, urgency, season, adj, reward, count, people.
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "discount": (
        "{Offer} on {product}",
        "Save {pct}% on {product}",
        "Deal alert: {offer} on {product}",
        "Big savings on {product}: {offer}",
        "Prices just dropped on {product}",
        "Your {pct}% off code is inside",
        "Sale on now: {offer} on {product}",
        "Huge sale: {product} from ${amt}",
        "Take {pct}% off {product} and more",
        "The {product} sale you've been waiting for",
    ),
    "premium": (
        "Introducing our {adj} {product} collection",
        "Exclusive access: {adj} {product}",
        "Crafted for the few: {adj} {product}",
        "Members-only preview of {adj} {product}",
        "Elevate your style with {adj} {product}",
        "The art of luxury: {product}",
        "An invitation to discover {adj} {product}",
        "Private sale on {adj} {product}",
    ),
    "tech_launch": (
        "Just launched: the all-new {product}",
        "Meet the next generation of {product}",
        "First look: our smartest {product} yet",
        "New tech alert: {product} with upgraded features",
        "Be the first to try the latest {product}",
        "Innovation unboxed: {product} 2.0",
        "Pre-order the newest {product} now",
        "The future of {product} is here",
    ),
    "urgency": (
        "Last chance: {offer} ends {deadline}",
        "Final hours to save on {product}",
        "Don't miss out: {offer} on {product}",
        "Only {count} left: {product}",
        "Hurry: {offer} on {product} ends {deadline}",
        "Going, going, almost gone: {product}",
        "Time is running out on {product} deals",
        "Ends {deadline}: {offer} on {product}",
    ),
    "loyalty": (
        "Thanks for being with us: enjoy {reward}",
        "Your loyalty reward is waiting: {reward}",
        "Members earn {reward} on {product}",
        "A thank-you gift for our loyal members",
        "You've unlocked {reward}",
        "VIP perk: {reward} on {product}",
        "Your points are ready to spend on {product}",
        "Loyal members get {offer} on {product}",
    ),
    "social_proof": (
        "Trending now: {product}",
        "Everyone's talking about these {product}",
        "Bestselling {product} everyone loves",
        "Join {people} happy shoppers: {product}",
        "The {product} with thousands of 5-star reviews",
        "Top-rated {product} this week",
        "Most-wanted {product}: see what's hot",
        "As seen on social: our viral {product}",
    ),
    "quality": (
        "Built to last: {adj} {product}",
        "Quality you can feel: {product}",
        "The craftsmanship behind our {product}",
        "Made with care: {adj} {product}",
        "Premium materials, {adj} {product}",
        "Designed to last a lifetime: {product}",
        "Expertly made {product}, tested for durability",
    ),
    "free_shipping": (
        "Free shipping on all {product}",
        "Free delivery on {product}, no minimum",
        "Free shipping ends {deadline}",
        "Your {product} ship free this week",
        "Shop {product} with free 2-day shipping",
        "Free shipping + {offer} on {product}",
    ),
    "bundle": (
        "Bundle and save: {product} + {product2}",
        "Buy more, save more on {product}",
        "The {product} bundle: save {pct}%",
        "Mix and match {product}: {offer}",
        "Pair {product} with {product2} and save ${amt}",
        "Complete the set: {product} and {product2}",
    ),
    "seasonal": (
        "{season} sale: {offer} on {product}",
        "Get ready for {season} with new {product}",
        "{season} essentials: {product}",
        "Your {season} edit: {product}",
        "{season} deals on {product} start now",
        "Fresh for {season}: {product}",
    ),
    "back_in_stock": (
        "Back in stock: {product}",
        "They're back: {product} restocked",
        "Restocked and ready: {product}",
        "Good news: {product} back in stock",
        "Back by popular demand: {product}",
        "Your wishlist favorites are back: {product}",
    ),
    "personal": (
        "Picked for you: {product}",
        "Your picks are in: {product}",
        "We think you'll love these {product}",
        "Recommended for you: {product} with {offer}",
        "Handpicked {product} just for you",
        "Your personal edit: {product}",
        "Still thinking about {product}? Enjoy {offer}",
        "Based on your favorites: {product}",
    ),
    "new_arrivals": (
        "New arrivals: {product}",
        "Fresh drops: {product} just landed",
        "Just in: {adj} {product}",
        "See what's new in {product}",
        "New season, new {product}",
        "Hot off the press: new {product}",
    ),
    "classic": (
        "Timeless {product} that never go out of style",
        "Classic {product}, made the way they used to be",
        "Heritage style: {adj} {product}",
        "Tried and true: our classic {product}",
        "Old-school quality: {product}",
        "Simple, classic, yours: {product}",
    ),
}

# Product categories each theme draws from (all categories when absent).
_THEME_CATEGORIES: dict[str, tuple[str, ...]] = {
    "premium": ("luxury", "fashion", "beauty", "food"),
    "tech_launch": ("tech",),
    "quality": ("luxury", "home", "fashion", "outdoor"),
    "classic": ("luxury", "fashion", "home"),
    "new_arrivals": ("tech", "fashion", "beauty", "home"),
}

#: Tones the offline copywriter knows.
TONES: tuple[str, ...] = ("playful", "urgent", "luxurious", "friendly", "informative", "minimalist")

_TONE_PREFIXES: dict[str, tuple[str, ...]] = {
    "playful": ("Psst…", "Oh hey!", "Treat yourself:", "Guess what?", "Surprise!", "Yes, really:", "Ready, set, shop:"),
    "urgent": ("Hurry:", "Act fast:", "Ending soon:", "Heads up:", "Don't wait:", "Final call:"),
    "luxurious": ("An invitation:", "Indulge:", "Discover:", "For the discerning:", "Exquisite:"),
    "friendly": ("Hi there!", "Good news:", "Just for you:", "We saved you a spot:", "A little something:"),
    "informative": ("New:", "Update:", "Now available:", "FYI:", "This week:", "In stock:"),
    "minimalist": (),
}
_TONE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "playful": ("🎉", "✨", "😍", "🛍️", "!"),
    "urgent": ("⏰", "🔥", "!"),
    "luxurious": ("✨",),
    "friendly": ("🙂", "!"),
    "informative": (),
    "minimalist": (),
}
_ALL_PREFIXES: tuple[str, ...] = tuple(p for ps in _TONE_PREFIXES.values() for p in ps) + (
    "Your picks:",
    "Selected for you:",
    "Just for you:",
    "For you:",
)
_PREFIX_PATTERN = re.compile(
    r"^(" + "|".join(re.escape(p) for p in sorted(set(_ALL_PREFIXES), key=len, reverse=True)) + r")\s+",
    re.IGNORECASE,
)
_PERSONAL_PREFIXES: tuple[str, ...] = ("Your picks:", "Selected for you:", "Just for you:", "For you:")
_PERSONAL_SUFFIXES: tuple[str, ...] = ("picked for you", "chosen for you", "your favorites included", "just for you")

# Word-level substitutions used by mutations (each group is interchangeable).
_SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("sale", "deal", "markdown"),
    ("save", "take"),
    ("exclusive", "members-only", "VIP"),
    ("discover", "explore", "meet"),
    ("love", "adore"),
    ("shop", "browse"),
    ("premium", "luxury", "signature"),
    ("trending", "popular", "in demand"),
    ("bestselling", "top-rated", "most-loved"),
    ("big", "huge", "massive"),
    ("amazing", "incredible", "unbeatable"),
    ("new", "all-new", "brand-new"),
    ("fresh", "new"),
    ("timeless", "classic", "iconic"),
    ("handpicked", "curated", "hand-selected"),
    ("gift", "treat", "surprise"),
    ("hurry", "quick"),
    ("now", "today"),
)
_SYNONYMS: dict[str, tuple[str, ...]] = {}
for _group in _SYNONYM_GROUPS:
    for _word in _group:
        _SYNONYMS.setdefault(_word.casefold(), ())
        _SYNONYMS[_word.casefold()] = tuple(
            dict.fromkeys(_SYNONYMS[_word.casefold()] + tuple(w for w in _group if w.casefold() != _word.casefold()))
        )
_SYNONYM_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in sorted(_SYNONYMS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_OFFER_PHRASES = ("buy one, get one free", "BOGO 50% off", "a free gift with every order", "free shipping", "2 for 1")
_OFFER_PHRASE_PATTERN = re.compile(r"(" + "|".join(re.escape(o) for o in _OFFER_PHRASES) + r")", re.IGNORECASE)
_PCT_PATTERN = re.compile(r"\b(\d{1,2})%")
_AMOUNT_PATTERN = re.compile(r"([$€£])(\d{1,4})\b")
_SEPARATOR = re.compile(r"\s*(?::|—|–|\s-\s|\||!|\?)\s+")
_MINIMAL_SPLIT = re.compile(r"\s*(?:[:—|.]\s+|,\s+(?=(?:" + "|".join(map(re.escape, _URGENCY)) + r")))", re.IGNORECASE)
_TAIL_SEPARATORS: tuple[str, ...] = (" — ", ", ", " | ", ": ", " - ")

#: Which themes (and tones) answer to each user trait of :data:`~actionbank_env.core.users.FEATURE_NAMES`.
TRAIT_THEMES: dict[str, tuple[str, ...]] = {
    "age_norm": ("classic", "quality"),
    "income_level": ("premium", "quality"),
    "tech_savviness": ("tech_launch", "new_arrivals"),
    "price_sensitivity": ("discount", "bundle", "free_shipping"),
    "brand_loyalty": ("loyalty", "personal"),
    "social_influence": ("social_proof", "new_arrivals"),
    "urgency_response": ("urgency",),
    "quality_focus": ("quality", "premium"),
}
_TRAIT_TONES: dict[str, tuple[str, ...]] = {
    "age_norm": ("informative", "friendly", "luxurious"),
    "income_level": ("luxurious", "minimalist"),
    "tech_savviness": ("informative", "minimalist"),
    "price_sensitivity": ("urgent", "friendly", "playful"),
    "brand_loyalty": ("friendly",),
    "social_influence": ("playful", "friendly"),
    "urgency_response": ("urgent",),
    "quality_focus": ("luxurious", "minimalist", "informative"),
}
_TRAIT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "tech_savviness": ("tech",),
    "income_level": ("luxury", "fashion"),
    "quality_focus": ("luxury", "home", "outdoor"),
}


# --------------------------------------------------------------------------------------------------------------
# Brief and protocol
# --------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------
# Offline copywriter
# --------------------------------------------------------------------------------------------------------------


class _Draws:
    """Buffered uniform draws from one Generator (one vectorised call per block, not one per choice)."""

    __slots__ = ("_rng", "_buf", "_pos")

    def __init__(self, rng: np.random.Generator, block: int = 4096) -> None:
        self._rng = rng
        self._buf = rng.random(block).tolist()
        self._pos = 0

    def uniform(self) -> float:
        if self._pos >= len(self._buf):
            self._buf = self._rng.random(len(self._buf)).tolist()
            self._pos = 0
        u = self._buf[self._pos]
        self._pos += 1
        return float(u)

    def pick(self, items: Sequence[Any]) -> Any:
        return items[min(int(self.uniform() * len(items)), len(items) - 1)]

    def chance(self, p: float) -> bool:
        return self.uniform() < p


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
            for _attempt in range(4):
                out = draws.pick(ops)(text, parents, draws, brief)
                if out is not None and normalize_text(out) != normalize_text(text):
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
    others = [p for p in parents if normalize_text(p) != normalize_text(text)]
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


# --------------------------------------------------------------------------------------------------------------
# Untrusted lines
# --------------------------------------------------------------------------------------------------------------

_LEADING_JUNK = re.compile(
    r"^(?:"
    r"[-*•·‣▪●◦>]+\s*"  # bullets / quote markers
    r"|\(?\d{1,3}[.)\]:]\s+"  # 1. 1) (1) 1: 1]
    r"|#{1,6}\s+"  # markdown headings
    r"|(?:subject(?:\s+line)?|line)\s*\d{0,3}\s*[:\-]\s*"  # "Subject line 3: ..."
    r")",
    re.IGNORECASE,
)
_QUOTES = "\"'`“”‘’«»„‟‹›"
_ALNUM = re.compile(r"[^\W_]", re.UNICODE)


def _strip_wrapping(line: str) -> str:
    for _ in range(8):
        before = line
        if len(line) > 4 and line.startswith(("**", "__")) and line.endswith(line[:2]):
            line = line[2:-2].strip()
        if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
        elif line and line[0] in _QUOTES and line.count(line[0]) == 1 and line[0] not in "'’":
            line = line[1:].strip()
        elif line and line[-1] in _QUOTES and line.count(line[-1]) == 1 and line[-1] not in "'’":
            line = line[:-1].strip()
        line = _LEADING_JUNK.sub("", line, count=1).strip()
        line = line.rstrip(",;").strip()
        if line == before or not line:
            break
    return line


def sanitize_lines(
    lines: Iterable[object], *, max_len: int = MAX_TEXT_LENGTH, exclude: Collection[str] = ()
) -> list[str]:
    """Clean untrusted text lines (e.g. a language model's output) into usable, distinct texts.

    Each item is treated as inert data: non-strings are dropped; a string holding several lines is split;
    control characters are removed and white space collapsed (:func:`~actionbank_env.core.actions.clean_text`);
    surrounding quotes, bullets, numbering and "Subject line:" labels are stripped; lines that end up empty,
    without any letter or digit, longer than ``max_len``, already seen (normalised) or in ``exclude`` are
    dropped. Nothing in a line is executed or followed.

    Args:
        lines: Candidate lines, any objects.
        max_len: Longest line kept (longer ones are dropped, not cut).
        exclude: Texts to drop (compared normalised).

    Returns:
        The kept lines in input order.

    Example:
        >>> sanitize_lines(['1. "Big sale!"', "- big SALE!", 42, "", "x" * 300, "Ends\\x07 tonight"])
        ['Big sale!', 'Ends tonight']
    """
    max_len = check_int("sanitize_lines max_len", max_len, low=1)
    seen = {normalize_text(e) for e in exclude if isinstance(e, str)}
    out: list[str] = []
    for item in lines:
        if not isinstance(item, str):
            continue
        for raw in re.split(r"[\r\n\u2028\u2029\x85]+", item):
            line = _strip_wrapping(clean_text(raw))
            line = clean_text(line)
            if not line or not _ALNUM.search(line) or len(line) > max_len:
                continue
            key = normalize_text(line)
            if key in seen:
                continue
            seen.add(key)
            out.append(line)
    return out


# --------------------------------------------------------------------------------------------------------------
# OpenAI copywriter
# --------------------------------------------------------------------------------------------------------------

_MODE_INSTRUCTIONS = {
    "explore": "Explore broadly: vary themes, tones, offers, products and sentence structures.",
    "exploit": "Write close variations of the example lines below (which performed well): keep what works, "
    "vary offers, urgency, wording and tone, or combine parts of two examples.",
    "targeted": "Write lines aimed at the customer segment described below.",
}
_TRAIT_DESCRIPTIONS = {
    "age_norm": "older customers who like classic, timeless, trustworthy products",
    "income_level": "high-income customers who respond to premium, exclusive offers",
    "tech_savviness": "tech-savvy customers who respond to new gadgets and product launches",
    "price_sensitivity": "price-sensitive customers who respond to discounts, deals and sales",
    "brand_loyalty": "loyal customers who respond to loyalty rewards and member perks",
    "social_influence": "customers influenced by trends, bestsellers and social proof",
    "urgency_response": "customers who respond to urgency: last chance, limited time",
    "quality_focus": "customers who value quality, craftsmanship and durability",
}
_SYSTEM_PROMPT = (
    "You write marketing email subject lines for an online retailer. "
    'Reply with a JSON object only, of the form {{"subject_lines": ["...", "..."]}}. '
    "Each subject line: at most {max_len} characters, plain text, no numbering, no surrounding quotes, "
    "no placeholders such as [Name], all lines different from each other."
)


class OpenAICopywriter:
    """Subject lines from an OpenAI chat model, validated, sanitised and cached.

    Each call asks for up to ``batch_size`` lines as JSON ``{"subject_lines": [...]}`` (``response_format`` is
    ``json_object``), with the brief and the ``parents`` in the prompt and a ``seed`` drawn from ``rng``. A body
    that is not such JSON is retried; rate limits (429, ``Retry-After`` honoured), server errors, timeouts and
    connection errors are retried with exponential backoff; after ``max_retries`` retries a
    :class:`~actionbank_env.errors.ServiceError` is raised. Batches continue until ``n`` distinct lines or a
    bounded number of calls. With ``cache_path``, responses are stored in SQLite keyed by model + prompt hash +
    seed, so a rerun with the same ``rng`` state costs no request.

    The API key comes from ``api_key`` or ``OPENAI_API_KEY`` and never appears in ``repr``, logs or errors.

    Args:
        model: Chat model name.
        api_key: API key (default: the ``OPENAI_API_KEY`` environment variable).
        base_url: API base URL (default: the client's, or ``OPENAI_BASE_URL``).
        timeout: Seconds per request.
        max_retries: Retries per request after the first attempt.
        batch_size: Lines asked for per request.
        temperature: Sampling temperature in [0, 2].
        cache_path: SQLite file for responses (``None``: no cache).
        backoff: First retry delay in seconds (doubled each retry, capped at ``max_backoff``).
        max_backoff: Longest delay between retries, ``Retry-After`` included.
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 50,
        temperature: float = 0.9,
        cache_path: str | os.PathLike[str] | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.model = check_str("OpenAICopywriter.model", model)
        self._api_key: Secret = resolve_api_key("OpenAICopywriter", api_key)
        self.base_url = None if base_url is None else check_str("OpenAICopywriter.base_url", base_url)
        self.timeout = check_real("OpenAICopywriter.timeout", timeout, low=0.0, low_open=True)
        self.max_retries = check_int("OpenAICopywriter.max_retries", max_retries, low=0)
        self.batch_size = check_int("OpenAICopywriter.batch_size", batch_size, low=1, high=200)
        self.temperature = check_real("OpenAICopywriter.temperature", temperature, low=0.0, high=2.0)
        self.backoff = check_real("OpenAICopywriter.backoff", backoff, low=0.0)
        self.max_backoff = check_real("OpenAICopywriter.max_backoff", max_backoff, low=0.0)
        self.cache_path = None if cache_path is None else Path(cache_path)
        self.name = f"openai:{self.model}"
        self.n_requests = 0
        self.n_cache_hits = 0
        self._client: Any = None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return (
            f"OpenAICopywriter(model={self.model!r}, base_url={self.base_url!r}, timeout={self.timeout}, "
            f"max_retries={self.max_retries}, batch_size={self.batch_size}, temperature={self.temperature}, "
            f"cache_path={None if self.cache_path is None else str(self.cache_path)!r}, api_key='***')"
        )

    def close(self) -> None:
        """Close the HTTP client and the cache connection."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> OpenAICopywriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- prompt

    def _messages(self, k: int, brief: CopyBrief, parents: Sequence[str], avoid: Sequence[str]) -> list[dict[str, str]]:
        parts = [f"Write {k} new, distinct marketing email subject lines.", _MODE_INSTRUCTIONS[brief.mode]]
        if brief.themes:
            parts.append("Themes to use: " + ", ".join(t.replace("_", " ") for t in brief.themes) + ".")
        if brief.tones:
            parts.append("Tones to use: " + ", ".join(brief.tones) + ".")
        if brief.segment_traits:
            parts.append("Target segment: " + "; ".join(_TRAIT_DESCRIPTIONS[t] for t in brief.segment_traits) + ".")
        if parents:
            parts.append("Example lines:\n" + "\n".join(f"- {p}" for p in parents[:20]))
        if avoid:
            parts.append("Do not repeat any of these lines:\n" + "\n".join(f"- {a}" for a in avoid))
        return [
            {"role": "system", "content": _SYSTEM_PROMPT.format(max_len=MAX_TEXT_LENGTH)},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    # ---------------------------------------------------------------- cache

    def _cache(self) -> sqlite3.Connection | None:
        if self.cache_path is None:
            return None
        if self._db is None:
            from actionbank_env.core.embedding_cache import _connect

            self._db = _connect(self.cache_path)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS chat_responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                "lines TEXT NOT NULL) WITHOUT ROWID"
            )
        return self._db

    def _cache_get(self, key: str) -> list[str] | None:
        db = self._cache()
        if db is None:
            return None
        row = db.execute("SELECT lines FROM chat_responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            lines = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        return [x for x in lines if isinstance(x, str)] if isinstance(lines, list) else None

    def _cache_put(self, key: str, lines: list[str]) -> None:
        db = self._cache()
        if db is not None:
            db.execute(
                "INSERT OR REPLACE INTO chat_responses (key, model, lines) VALUES (?, ?, ?)",
                (key, self.model, json.dumps(lines)),
            )

    # ---------------------------------------------------------------- request

    def _request(self, messages: list[dict[str, str]], seed: int) -> list[str]:
        key = hashlib.sha256(
            json.dumps(
                {"model": self.model, "messages": messages, "seed": seed, "temperature": self.temperature},
                sort_keys=True,
            ).encode("utf-8")
        ).hexdigest()
        with self._lock:
            cached = self._cache_get(key)
        if cached is not None:
            self.n_cache_hits += 1
            return cached
        with self._lock:
            if self._client is None:
                self._client = make_client(self._api_key, self.base_url, self.timeout)
            client = self._client

        def call() -> list[str]:
            self.n_requests += 1
            response = client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                seed=seed,
                response_format={"type": "json_object"},
            )
            return _parse_subject_lines(response)

        lines = call_with_retries(
            call,
            what=f"OpenAI chat completion (model {self.model!r})",
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            secret=self._api_key,
        )
        with self._lock:
            self._cache_put(key, lines)
        return lines

    def write(
        self,
        n: int,
        *,
        rng: np.random.Generator,
        parents: Sequence[str] = (),
        brief: CopyBrief | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Ask the model for up to ``n`` distinct subject lines (see the class docstring).

        Raises:
            ServiceError: A request failed after ``max_retries`` retries, or kept returning invalid JSON.
        """
        n, parent_texts, brief, _ = _check_write_args("OpenAICopywriter", n, rng, parents, brief, exclude)
        excluded = [e for e in exclude if isinstance(e, str)] + parent_texts
        out: list[str] = []
        max_calls = 2 * math.ceil(n / self.batch_size) + 2
        for _ in range(max_calls):
            if len(out) >= n:
                break
            k = min(self.batch_size, n - len(out) + max(2, (n - len(out)) // 5))
            avoid = (out + parent_texts)[-20:]
            seed = int(rng.integers(2**31 - 1))
            raw = self._request(self._messages(k, brief, parent_texts, avoid), seed)
            out.extend(sanitize_lines(raw, exclude=excluded + out))
        if len(out) < n:
            logger.warning("OpenAICopywriter got %d of %d requested distinct lines.", len(out), n)
        return out[:n]


def _parse_subject_lines(response: Any) -> list[str]:
    """Validate a chat completion: choices[0].message.content must be JSON {"subject_lines": [str, ...]}."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError, KeyError):
        raise BadResponse("the response has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise BadResponse("choices[0].message.content is not a string")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise BadResponse(f"the message content is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, dict) or not isinstance(data.get("subject_lines"), list):
        keys = sorted(data)[:5] if isinstance(data, dict) else type(data).__name__
        raise BadResponse(f'the JSON is not an object with a "subject_lines" list (got {keys})')
    lines = [x for x in data["subject_lines"] if isinstance(x, str)]
    if data["subject_lines"] and not lines:
        raise BadResponse('"subject_lines" holds no strings')
    return lines


# --------------------------------------------------------------------------------------------------------------
# Fallback: an outside copywriter backed by an offline one
# --------------------------------------------------------------------------------------------------------------


class FallbackCopywriter:
    """Writes with ``primary`` (e.g. :class:`OpenAICopywriter`); a call that fails uses ``fallback`` instead.

    When ``primary.write`` raises :class:`~actionbank_env.errors.ServiceError` (the outside service still failed
    after its bounded retries), a WARNING is logged (``actionbank_env.core.copywriting``) naming both writers and
    the error, ``fallbacks`` is incremented, and the same call is answered by ``fallback.write`` with the same
    arguments (and the same ``rng``, after whatever draws the primary made). The next call tries the primary
    again. Any other exception (a wrong argument, a bug) propagates unchanged. Only text generation falls back:
    embeddings never do, since a run must not change embedder midway.

    Args:
        primary: The preferred copywriter.
        fallback: The copywriter used for a call the primary could not answer (offline by default).

    Attributes:
        name: ``"<primary name>|<fallback name>"`` (recorded as the origin of generated actions).
        fallbacks: Calls answered by the fallback so far.
        last_error: The message of the last ServiceError (the API key is already redacted), or ``None``.

    Example:
        >>> class Down:
        ...     name = "down"
        ...     def write(self, n, *, rng, parents=(), brief=None, exclude=()):
        ...         raise ServiceError("service down")
        >>> writer = FallbackCopywriter(Down(), OfflineCopywriter())
        >>> len(writer.write(3, rng=np.random.default_rng(0))), writer.fallbacks
        (3, 1)
    """

    def __init__(self, primary: Copywriter, fallback: Copywriter | None = None) -> None:
        for role, writer in (("primary", primary), ("fallback", fallback)):
            if writer is not None and not (isinstance(getattr(writer, "name", None), str) and hasattr(writer, "write")):
                raise TypeError(
                    f"FallbackCopywriter.{role} must be a Copywriter (a str name and a write method), "
                    f"got {type(writer).__name__}."
                )
        self.primary = primary
        self.fallback: Copywriter = fallback if fallback is not None else OfflineCopywriter()
        self.name = f"{primary.name}|{self.fallback.name}"
        self.fallbacks = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"FallbackCopywriter(primary={self.primary!r}, fallback={self.fallback!r})"

    def close(self) -> None:
        """Close whichever writers have a ``close`` method."""
        for writer in (self.primary, self.fallback):
            close = getattr(writer, "close", None)
            if callable(close):
                close()

    def write(
        self,
        n: int,
        *,
        rng: np.random.Generator,
        parents: Sequence[str] = (),
        brief: CopyBrief | None = None,
        exclude: Collection[str] = (),
    ) -> list[str]:
        """Up to ``n`` distinct texts from the primary, or from the fallback when the primary's service fails."""
        try:
            return self.primary.write(n, rng=rng, parents=parents, brief=brief, exclude=exclude)
        except ServiceError as exc:
            self.fallbacks += 1
            self.last_error = str(exc)
            logger.warning(
                "Copywriter %s failed (%s); using the fallback copywriter %s for this call (%d fallback(s) so far).",
                self.primary.name,
                exc,
                self.fallback.name,
                self.fallbacks,
            )
            return self.fallback.write(n, rng=rng, parents=parents, brief=brief, exclude=exclude)
