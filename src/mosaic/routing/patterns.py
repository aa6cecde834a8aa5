"""Rule patterns: what they mean, and how their globs split into indexable pieces.

=====================  ===================================================================
``org:GLOB``           the owner of the repository the request is about
``repo:GLOB``          the repository, ``owner/name``
``user:GLOB``          the calling principal's id
``private:true|false`` the repository's visibility, when the request states it
``new-repos:GLOB``     requests that create a repository; GLOB is matched against the new
                       name, or against ``owner/name`` when it contains a ``/``
``legacy:GLOB``        repositories in the active phase's ``legacy`` set (plus the global one);
                       GLOB narrows further, like ``new-repos:``
``GLOB``               a plain glob over ``owner/name``
``*``, ``**``          every request of the rule's service, with or without a repository
``!PATTERN``           the negation of any of the above
=====================  ===================================================================

Globs are wcmatch globs (``*`` within a path segment, ``**`` across, ``{a,b}`` braces,
``[...]`` classes, extglobs ``@(a|b)``/``!(x)``) and match case-insensitively, as forges
treat owner and repository names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import bracex
from wcmatch import glob as wcglob

FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.EXTGLOB | wcglob.DOTGLOB

# Request fields a pattern reads (rules.Facts): org, repo, user, private, newname, newrepo,
# and legacyname/legacyrepo when the repository is in the legacy set.

_KINDS = ("org", "repo", "user", "private", "new-repos", "legacy")
_GLOB_CHARS = re.compile(r"^[A-Za-z0-9_.\-/*?{},\[\]!()|@+^\\~]+$")
# Characters after which a glob is no longer a plain literal.
_META = re.compile(r"[*?\[\]\\(){}|!+@]")
_MAX_ALTERNATIVES = 256


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str
    kind: str  # org | repo | user | private | new-repos | legacy | glob | any
    field: str | None  # the fact it reads; None for `any`
    glob: str | None  # lowercased glob, None for private/any
    value: bool | None  # private:true|false
    negated: bool


_PLAIN = re.compile(r"^[A-Za-z0-9_.\-/]+\*?$")  # a name, or a name followed by one '*'


def check_glob(g: str) -> str:
    if not g:
        raise ValueError("empty glob")
    if _PLAIN.match(g):  # nothing wcmatch could reject: skip its parser (100k-rule configs)
        return g.lower()
    if not _GLOB_CHARS.match(g):
        raise ValueError(f"glob {g!r} contains characters that never occur in names "
                         "(letters, digits, '.', '_', '-', '/' and glob syntax are allowed)")
    try:
        wcglob.translate(g.lower(), flags=FLAGS)
        bracex.expand(g, limit=10_000)
    except Exception as exc:  # wcmatch/bracex raise assorted errors on malformed globs
        raise ValueError(f"invalid glob {g!r}: {exc}") from None
    return g.lower()


@lru_cache(maxsize=1 << 18)
def parse_pattern(text: str) -> Pattern:
    """Parse a rule pattern; raise ValueError naming what is wrong."""
    raw = text.strip()
    negated = False
    if raw.startswith("!") and not raw.startswith("!("):
        negated = True
        raw = raw[1:].strip()
        if raw.startswith("!") and not raw.startswith("!("):
            raise ValueError(f"pattern {text!r}: double negation")
    if not raw:
        raise ValueError("empty pattern")
    if raw in ("*", "**"):
        return Pattern(text, "any", None, None, None, negated)
    kind, sep, arg = raw.partition(":")
    if not sep:
        return Pattern(text, "glob", "repo", check_glob(raw), None, negated)
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind not in _KINDS:
        raise ValueError(f"pattern {text!r}: unknown type {kind + ':'!r} "
                         f"(known: {', '.join(k + ':' for k in _KINDS)}, or a plain glob)")
    if kind == "private":
        if arg.lower() not in ("true", "false"):
            raise ValueError(f"pattern {text!r}: private: takes true or false")
        return Pattern(text, kind, "private", None, arg.lower() == "true", negated)
    if not arg:
        raise ValueError(f"pattern {text!r}: {kind}: needs a glob, e.g. {kind}:team-*")
    g = check_glob(arg)
    if kind in ("org", "repo", "user"):
        field = kind
    elif kind == "new-repos":
        field = "newrepo" if "/" in g else "newname"
    else:
        field = "legacyrepo" if "/" in g else "legacyname"
    return Pattern(text, kind, field, g, None, negated)


@lru_cache(maxsize=65536)
def compiled_glob(g: str) -> re.Pattern[str]:
    """One regex equivalent to wcmatch's matching of ``g`` (braces expanded inside)."""
    include, _ = wcglob.translate(g, flags=FLAGS)
    return re.compile("|".join(include) if len(include) > 1 else include[0])


@dataclass(frozen=True, slots=True)
class Alternative:
    """One brace-expanded alternative of a glob, classified for indexing."""

    glob: str
    literal_prefix: str
    exact: bool  # no glob syntax at all: an equality test


def alternatives(g: str) -> list[Alternative]:
    """Split ``g`` into brace alternatives so each can go to an exact map or a prefix trie.

    A glob whose braces expand to more than a few hundred alternatives stays whole and is
    indexed by the literal text before its first brace.
    """
    try:
        alts = bracex.expand(g, limit=_MAX_ALTERNATIVES) if "{" in g else [g]
    except Exception:
        alts = [g]
    if len(alts) > _MAX_ALTERNATIVES:
        alts = [g]
    out: list[Alternative] = []
    for a in dict.fromkeys(alts):
        m = _META.search(a)
        if m is None:
            out.append(Alternative(a, a, True))
        else:
            out.append(Alternative(a, a[: m.start()], False))
    return out


@lru_cache(maxsize=4096)
def _wcmatcher(g: str) -> wcglob.WcMatcher[str]:
    return wcglob.compile(g, flags=FLAGS)


def glob_matches(value: str, g: str) -> bool:
    """The reference semantics: wcmatch itself (its own compiled matcher), lowercased."""
    return bool(_wcmatcher(g).match(value.lower()))
