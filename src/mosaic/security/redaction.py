"""Secret redaction for logs, errors and anything shown to a person.

Two complementary nets:

* by *name*: a mapping value whose key looks like a credential (``token``, ``password``,
  ``secret``, ``authorization``, ``apiKey``, ``privateKey``, ``cookie``...) is replaced whole;
* by *shape*: inside free text, values that look like credentials are masked wherever they
  appear — ``Authorization: Bearer ...`` / ``Basic ...`` headers, MosAIc API keys
  (``mk_<id>_<secret>``: the key id stays visible for correlation, the secret does not), JWTs,
  well-known provider token formats (GitHub ``ghp_``/``gho_``/``ghs_``/``github_pat_``,
  GitLab ``glpat-``, Slack ``xox?-``, AWS access key ids), ``password=...``-style pairs, URL
  userinfo (``https://user:pass@host``) and PEM private keys.

:class:`RedactingFilter` applies both to every log record of a logger or handler;
:func:`install_log_redaction` puts it on the root handlers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|credential|authorization|"
    r"cookie|session|signature|client[-_]?secret|master[-_]?key|x-api-key|private-token|job-token)")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
     "-----BEGIN PRIVATE KEY-----" + MASK + "-----END PRIVATE KEY-----"),
    (re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=:-]{4,}"), r"\1\2" + MASK),
    (re.compile(r"\b(mk_[a-z0-9]{6,32})_[A-Za-z0-9_-]{8,}"), r"\1_" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}|"
                r"xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16})\b"), MASK),
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@"), r"\1\2:" + MASK + "@"),
    (re.compile(
        r"""(?ix)
        (["']?(?:pass(?:word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|client[-_]?secret|
              access[-_]?key|credential)s?["']?\s*[:=]\s*)
        (?!\*\*\*)("[^"]*"|'[^']*'|[^\s,;&}\]]+)"""), r"\1" + MASK),
)


class Masked(str):
    """A string that is itself but never shows itself: ``repr`` (and so the repr of any dict,
    list, dataclass or model holding it) is ``'***'``; ``str``/formatting give the real value
    for the one place that needs it (building a request header)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


def redact_text(text: str) -> str:
    """``text`` with every credential-shaped value masked."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def is_secret_key(name: str) -> bool:
    return bool(SECRET_KEY.search(name))


def redact(value: Any, *, key: str | None = None) -> Any:
    """A copy of ``value`` (dicts, lists, strings) safe to log or return."""
    if key is not None and is_secret_key(key) and value not in (None, "", [], {}):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def redact_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (MASK if is_secret_key(k) else redact_text(v)) for k, v in items}


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments and exception text before it is emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A broken format string still must not leak its arguments.
            message = str(record.msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = redact_text(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
            # Formatters use exc_text when set; the exception object itself (whose args may hold
            # the secret) is dropped so that no handler can format it again unredacted.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS and isinstance(value, (str, Mapping, list, tuple)):
                record.__dict__[name] = redact(value, key=name)
        return True


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "", 0, "", None, None))) | {"message", "asctime"}


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of ``logger`` (root by default).

    Filters on handlers (not loggers) also see records propagated from child loggers.
    """
    target = logger or logging.getLogger()
    filt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(filt)
    return filt
