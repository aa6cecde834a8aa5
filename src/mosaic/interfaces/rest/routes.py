"""REST routes compiled once from the catalog.

A catalog route template such as ``/git/repositories/{repo}/contents/{path}`` becomes
a regular expression matched against the *raw* (still percent-encoded) request path:

- ``{repo}`` spans two segments, ``{owner}/{name}``, re-joined into ``repo="owner/name"``.
  A GitLab subgroup travels as ``group%2Fsub/name``: matching the raw path keeps that
  ``%2F`` inside one segment, and only the captured values are decoded.
- ``{path}`` (file paths) may contain slashes and matches greedily; routes with such a
  parameter are tried after the ones without, so a more specific route always wins.
- any other ``{x}`` is one segment, passed as the params field ``x``.

Routes are bucketed by method and their first two literal segments (``git``,
``repositories``), so a request tries only a handful of expressions.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import Enum
from typing import Any, Literal
from urllib.parse import unquote

from mosaic.catalog.base import Operation

FieldKind = Literal["scalar", "list", "json"]

REPO_OWNER = "_repo_owner"
REPO_NAME = "_repo_name"
# Path parameters that may contain '/' (a file path inside a repository).
GREEDY_PARAMS = frozenset({"path"})

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SCALARS = (str, int, float, bool, datetime, date, time, bytes)


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` wrappers."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _is_scalar(annotation: Any) -> bool:
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_is_scalar(a) for a in typing.get_args(annotation) if a is not type(None))
    return isinstance(annotation, type) and (issubclass(annotation, _SCALARS) or issubclass(annotation, Enum))


def field_kind(annotation: Any) -> FieldKind:
    """How a query-string value of this type is read: as is, as a list, or as JSON."""
    if _is_scalar(annotation):
        return "scalar"
    inner = _unwrap(annotation)
    if typing.get_origin(inner) in (list, tuple, set, frozenset):
        args = typing.get_args(inner)
        if args and all(_is_scalar(a) for a in args if a is not Ellipsis):
            return "list"
    return "json"


@dataclass(frozen=True, slots=True)
class Route:
    op: Operation
    method: str
    template: str
    # The template as OpenAPI writes it, under /v1: '{repo}' becomes '{owner}/{name}'.
    openapi_path: str
    regex: re.Pattern[str]
    # Params fields filled from the path, in template order ('repo' for '{repo}').
    path_fields: tuple[str, ...]
    greedy: bool
    literal_segments: int
    # Fields read from the query string (GET and DELETE) and how to decode each.
    query_fields: dict[str, FieldKind] = field(default_factory=dict)
    # Fields read from the JSON body (POST, PUT, PATCH).
    body_fields: frozenset[str] = frozenset()

    @property
    def bucket(self) -> tuple[str, str]:
        parts = self.template.strip("/").split("/")
        return parts[0], parts[1] if len(parts) > 1 else ""

    def path_params(self, match: re.Match[str]) -> dict[str, str]:
        groups = match.groupdict()
        out: dict[str, str] = {}
        owner = groups.pop(REPO_OWNER, None)
        name = groups.pop(REPO_NAME, None)
        if owner is not None and name is not None:
            out["repo"] = f"{unquote(owner)}/{unquote(name)}"
        for key, value in groups.items():
            out[key] = unquote(value)
        return out


def compile_route(op: Operation) -> Route:
    fields = op.params.model_fields
    template = op.rest.path
    pattern = ""
    openapi = ""
    path_fields: list[str] = []
    greedy = False
    literal = 0
    pos = 0
    for m in _PARAM.finditer(template):
        lit = template[pos:m.start()]
        pattern += re.escape(lit)
        openapi += lit
        literal += len([s for s in lit.split("/") if s])
        name = m.group(1)
        if name not in fields:
            raise ValueError(f"{op.qualified_name}: REST path {template!r} names {{{name}}}, "
                             f"which is not a field of {op.params.__name__}")
        path_fields.append(name)
        if name == "repo":
            pattern += f"(?P<{REPO_OWNER}>[^/]+)/(?P<{REPO_NAME}>[^/]+)"
            openapi += "{owner}/{name}"
        elif name in GREEDY_PARAMS:
            pattern += f"(?P<{name}>.+)"
            openapi += "{" + name + "}"
            greedy = True
        else:
            pattern += f"(?P<{name}>[^/]+)"
            openapi += "{" + name + "}"
        pos = m.end()
    tail = template[pos:]
    pattern += re.escape(tail)
    openapi += tail
    literal += len([s for s in tail.split("/") if s])
    rest_fields = [n for n in fields if n not in path_fields]
    method = op.rest.method
    in_query = method in ("GET", "DELETE")
    return Route(
        op=op, method=method, template=template, openapi_path="/v1" + openapi,
        regex=re.compile(pattern), path_fields=tuple(path_fields), greedy=greedy,
        literal_segments=literal,
        query_fields={n: field_kind(fields[n].annotation) for n in rest_fields} if in_query else {},
        body_fields=frozenset() if in_query else frozenset(rest_fields),
    )


def _specificity(route: Route) -> tuple[int, int, int]:
    # Non-greedy before greedy, then more literal segments, then longer templates.
    return (route.greedy, -route.literal_segments, -len(route.template))


class RouteTable:
    """All REST routes; ``match`` finds the route for a method and a raw path."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self.routes: list[Route] = []
        seen: dict[tuple[str, str], Operation] = {}
        for op in operations:
            route = compile_route(op)
            key = (route.method, route.regex.pattern)
            if key in seen:
                raise ValueError(f"{op.qualified_name} and {seen[key].qualified_name} both map to "
                                 f"{route.method} {route.template}")
            seen[key] = op
            self.routes.append(route)
        self.routes.sort(key=_specificity)
        self._buckets: dict[tuple[str, str, str], list[Route]] = {}
        self._any_method: dict[tuple[str, str], list[Route]] = {}
        for r in self.routes:
            self._buckets.setdefault((r.method, *r.bucket), []).append(r)
            self._any_method.setdefault(r.bucket, []).append(r)

    @staticmethod
    def _bucket_of(path: str) -> tuple[str, str]:
        parts = path.split("/", 3)
        return (parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "")

    def match(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        """``path`` is the raw path below /v1, starting with '/'."""
        b0, b1 = self._bucket_of(path)
        for route in self._buckets.get((method, b0, b1), ()):
            m = route.regex.fullmatch(path)
            if m is not None:
                return route, m
        return None

    def allowed_methods(self, path: str) -> list[str]:
        """Methods some route accepts for this path (for 405 and its Allow header)."""
        methods = {r.method for r in self._any_method.get(self._bucket_of(path), ())
                   if r.regex.fullmatch(path)}
        return sorted(methods)
