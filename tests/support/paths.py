"""Path templates (``/repos/{owner}/{repo}/contents/{filepath}``) matched against request paths.

Shared by the spec validator and the fake upstreams so that both resolve a request to the same
template. A parameter matches one path segment, except the *greedy* ones named by the caller
(a file path, ``base...head``) which may contain '/': vendors route those with a catch-all.
When several templates match, the one with more literal characters wins (``/pulls/pinned`` over
``/pulls/{index}``, ``/pulls/{index}.{diffType}`` over ``/pulls/{index}``), then the one with fewer
parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote

_PARAM = re.compile(r"\{([^{}/]+)\}")


@dataclass(frozen=True, slots=True)
class Template:
    template: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    literal_len: int

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {name: unquote(found.group(f"p{i}")) for i, name in enumerate(self.names)}


def compile_template(template: str, greedy: Iterable[str] = ()) -> Template:
    greedy = frozenset(greedy)
    parts: list[str] = []
    names: list[str] = []
    pos = 0
    literal = 0
    for m in _PARAM.finditer(template):
        text = template[pos : m.start()]
        literal += len(text)
        parts.append(re.escape(text))
        name = m.group(1)
        # Lazy, so that a literal suffix (".{diffType}", "/files") can still match after it.
        parts.append(f"(?P<p{len(names)}>{'.+?' if name in greedy else '[^/]+?'})")
        names.append(name)
        pos = m.end()
    tail = template[pos:]
    literal += len(tail)
    parts.append(re.escape(tail))
    return Template(template, re.compile("".join(parts)), tuple(names), literal)


class TemplateSet:
    """Templates with the methods each allows; finds the most specific match of a path."""

    def __init__(self, greedy: Iterable[str] = ()) -> None:
        self.greedy = frozenset(greedy)
        self._entries: dict[str, tuple[Template, set[str]]] = {}

    def add(self, template: str, methods: Iterable[str]) -> None:
        entry = self._entries.get(template)
        if entry is None:
            entry = (compile_template(template, self.greedy), set())
            self._entries[template] = entry
            self.__dict__.pop("_ordered", None)
        entry[1].update(m.upper() for m in methods)

    @cached_property
    def _ordered(self) -> list[tuple[Template, set[str]]]:
        return sorted(self._entries.values(), key=lambda e: (-e[0].literal_len, len(e[0].names)))

    def find(self, method: str, path: str) -> tuple[Template | None, dict[str, str], set[str]]:
        """(template, params, methods-of-the-best-path-match). Template is None when no template
        both matches the path and allows the method; the methods then say what the path allows."""
        allowed: set[str] = set()
        for tmpl, methods in self._ordered:
            params = tmpl.match(path)
            if params is None:
                continue
            if method.upper() in methods:
                return tmpl, params, methods
            allowed |= methods
        return None, {}, allowed
