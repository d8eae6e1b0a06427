"""Text sources for action banks: an offline template/mutation copywriter and an OpenAI chat copywriter.

Both implement :class:`Copywriter`: ``write(n, rng=..., parents=..., brief=..., exclude=...)`` returns up to
``n`` distinct, cleaned marketing email subject lines (distinct by :func:`~actionbank_env.core.actions.normalize_text`),
none of them in ``exclude``, each at most :data:`~actionbank_env.core.actions.MAX_TEXT_LENGTH` characters.

- :class:`OfflineCopywriter`: themes x tones x offers x products x urgency x personalisation templates, plus
  mutations and recombinations of ``parents``; no network, deterministic for a given ``rng`` state.
- :class:`OpenAICopywriter`: prompts a chat model for JSON ``{"subject_lines": [...]}``, validates and sanitises
  the lines (:func:`sanitize_lines`), retries with bounded backoff and caches responses in SQLite.

Text from a model is untrusted data: it is cleaned and filtered, never executed or followed.

The package, one module a concern: :mod:`.vocabulary` (the offline tables), :mod:`.brief` (``CopyBrief``, the
``Copywriter`` protocol), :mod:`.offline`, :mod:`.sanitize` (untrusted lines), :mod:`.openai_chat` (the chat client and
its cache; the key, client and retries are :mod:`actionbank_env.core.openai_api`, shared with the OpenAI embedder) and
:mod:`.fallback`.
"""

from actionbank_env.core.copywriting.brief import CopyBrief, Copywriter
from actionbank_env.core.copywriting.fallback import FallbackCopywriter
from actionbank_env.core.copywriting.offline import OfflineCopywriter
from actionbank_env.core.copywriting.openai_chat import OpenAICopywriter
from actionbank_env.core.copywriting.sanitize import sanitize_lines
from actionbank_env.core.copywriting.vocabulary import MODES, THEMES, TONES, TRAIT_THEMES

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
