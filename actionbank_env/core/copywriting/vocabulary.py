"""Vocabulary of the offline copywriter (products, offers, themes, tones, templates, synonyms) and the
trait tables the targeted briefs use.
"""

from __future__ import annotations

import re

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
