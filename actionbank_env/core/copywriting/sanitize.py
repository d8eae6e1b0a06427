"""Untrusted lines from a model: cleaned and filtered (:func:`sanitize_lines`), never executed or followed."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from actionbank_env._validation import check_int
from actionbank_env.core.actions import MAX_TEXT_LENGTH, clean_text, normalize_text

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
