"""Turning a user's search text into an FTS5 query that can never be a syntax error.

Users type plain words. FTS5 reads ``AND``, ``OR``, ``NOT``, ``NEAR``, ``*``, ``^``, ``:``,
parentheses and quotes as syntax, so each whitespace-separated word becomes a quoted
string (inner quotes doubled): ``"foo" AND (`` is searched as the words ``foo`` and ``AND``.
Quoted strings next to each other mean all of them must match.
"""

from __future__ import annotations

MAX_TERMS = 32


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for ``text``, or None when it has no searchable word.

    Control characters separate words (a NUL would end the FTS5 string early). Chunks
    without a letter or digit are dropped: the tokenizer would find nothing in them anyway.
    Only the first ``MAX_TERMS`` words count, bounding the cost of one query.
    """
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    terms = [w for w in cleaned.split() if any(ch.isalnum() for ch in w)][:MAX_TERMS]
    if not terms:
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in terms)
