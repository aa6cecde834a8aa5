"""Validate every HTTP request a provider sends (and every answer a fake gives) against the
vendor's own API description in ``../shared/specs`` (``MOSAIC_SPECS_DIR`` overrides).

A request the real service would reject fails the test: unknown path or method, a path or query
parameter of the wrong type, a query parameter the operation does not declare (e.g. ``per_page``
sent to Gitea, which only reads ``limit``), a missing or malformed JSON body, missing credentials.
Responses of fakes are checked the same way, so testdata and fakes stay shaped like the vendor's.

Usage::

    spec = load_spec("gitea")                        # parsed once per process, lazily
    transport = SpecValidatingTransport(spec, httpx.MockTransport(handler))
    plugin = GiteaGitPlugin("gitea", transport=transport)

Swagger 2.0 descriptions are converted in-process (``swagger2.py``); path and operation matching is
ours (``paths.py``, so that catch-all parameters such as Gitea's ``{filepath}`` can hold '/'), and
parameters, bodies and responses are checked by ``openapi-core``.

Deliberate leniencies, each because the vendor's description under-specifies what its server does:
* ``null`` values in *responses* are ignored: go-swagger descriptions (Gitea, Forgejo) never say
  ``x-nullable`` although the servers serialize nil pointers as ``null``. Descriptions that do mark
  ``nullable`` (GitHub's) set ``SpecOptions.keep_nulls`` and are checked with their nulls;
* an error status (4xx/5xx) the operation does not document is accepted: every vendor can answer
  401/403/429/5xx on any path;
* ``SpecOptions.item_or_list`` names operations whose summary says they answer "an entry, or a list
  of entries" while the schema only has the entry (Gitea's contents of a path that is a directory):
  a list answer is checked item by item against the entry schema.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import yaml
from jsonschema_path import SchemaPath
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.datatypes import TemplateResult
from openapi_core.templating.paths.datatypes import PathOperationServer
from openapi_core.templating.paths.finders import BasePathFinder
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.validators import V30ResponseValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

from .paths import Template, TemplateSet
from .swagger2 import swagger2_to_openapi3

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class SpecOptions:
    file: str
    # Path parameters that may contain '/' (routed by the vendor with a catch-all).
    greedy: tuple[str, ...] = ()
    # (METHOD, template) answering an object or a list of such objects (see the module docstring).
    item_or_list: tuple[tuple[str, str], ...] = ()
    # Check ``null`` values in responses as they are: for descriptions that say ``nullable``
    # wherever the server sends null (GitHub's), dropping them would break required properties.
    keep_nulls: bool = False


SPECS: dict[str, SpecOptions] = {
    "gitea": SpecOptions(
        "gitea.json",
        greedy=("filepath", "basehead"),
        item_or_list=(("GET", "/repos/{owner}/{repo}/contents/{filepath}"),),
    ),
    "forgejo": SpecOptions(
        "forgejo.json",
        greedy=("filepath", "basehead"),
        item_or_list=(("GET", "/repos/{owner}/{repo}/contents/{filepath}"),),
    ),
    "woodpecker": SpecOptions("woodpecker.json"),
    "github": SpecOptions("github.json", greedy=("path", "basehead"), keep_nulls=True),
    "gitlab": SpecOptions("gitlab.yaml"),
    "bitbucket": SpecOptions("bitbucket.yaml", greedy=("path",)),
    "circleci": SpecOptions("circleci.json"),
    "notion": SpecOptions("notion.json"),
    "confluence": SpecOptions("confluence-v2.json"),
    "jira": SpecOptions("jira.json"),
    "jira-software": SpecOptions("jira-software.json"),
    "plane": SpecOptions("plane.yaml"),
    "asana": SpecOptions("asana.yaml"),
}


class SpecViolation(AssertionError):
    """A request (or a fake's response) the vendor's API description does not allow."""


def specs_dir() -> Path:
    env = os.environ.get("MOSAIC_SPECS_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "specs"


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if path.suffix in (".yaml", ".yml"):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        data = yaml.load(raw, Loader=loader)
    else:
        data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an API description")
    return data


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


@dataclass(slots=True)
class Match:
    """Where a request landed in the description."""

    template: Template
    method: str
    params: dict[str, str]
    operation: dict[str, Any]


class _OpenAPIRequest:
    """The request as openapi-core wants it, already resolved to its template and path values."""

    host_url = "http://spec.invalid"

    def __init__(self, request: httpx.Request, match: Match, path: str) -> None:
        self.method = match.method.lower()
        self.path = path
        self.path_pattern = match.template.template
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "").lower()
        query = parse_qsl(request.url.query.decode("ascii", "replace"), keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for key, value in query:
            multi.setdefault(key, []).append(value)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(multi),
            header=Headers(list(request.headers.multi_items())),
            cookie=ImmutableMultiDict(),
            path=dict(match.params),
        )


class _OpenAPIResponse:
    def __init__(self, response: httpx.Response, data: bytes | None) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "").lower()
        self.headers = Headers(list(response.headers.multi_items()))
        self.data = data


class _ExactPathFinder(BasePathFinder):
    """Hands openapi-core the operation we matched ourselves (its own finder matches suffixes and
    cannot let a parameter span '/')."""

    def find(self, method: str, name: str) -> PathOperationServer:
        template = name[len(_OpenAPIRequest.host_url) :]
        path = self.spec / "paths" / template
        operation = path / method
        return PathOperationServer(
            path, operation, None, TemplateResult(template, {}), TemplateResult("/", {})
        )


@dataclass
class ApiSpec:
    name: str
    source: Path
    document: dict[str, Any]
    base_path: str
    greedy: tuple[str, ...]
    item_or_list: tuple[tuple[str, str], ...] = ()
    keep_nulls: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    # -- matching -------------------------------------------------------------
    @cached_property
    def templates(self) -> TemplateSet:
        started = time.perf_counter()
        ts = TemplateSet(self.greedy)
        for path, item in self.document.get("paths", {}).items():
            ts.add(path, [m for m in item if m in _METHODS])
        self.timings["templates"] = time.perf_counter() - started
        return ts

    @cached_property
    def _schema_path(self) -> SchemaPath:
        started = time.perf_counter()
        sp = SchemaPath.from_dict(self.document)
        self.timings["schema_path"] = time.perf_counter() - started
        return sp

    @cached_property
    def _request_validator(self) -> V30RequestValidator:
        return V30RequestValidator(self._schema_path, path_finder_cls=_ExactPathFinder)

    @cached_property
    def _response_validator(self) -> V30ResponseValidator:
        return V30ResponseValidator(self._schema_path, path_finder_cls=_ExactPathFinder)

    def operation(self, method: str, template: str) -> dict[str, Any]:
        op: dict[str, Any] = self.document["paths"][template][method.lower()]
        return op

    def _relative(self, request: httpx.Request, api_root: str | None) -> str:
        root = (self.base_path if api_root is None else api_root).rstrip("/")
        raw = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if root and not (raw == root or raw.startswith(root + "/")):
            raise SpecViolation(f"{request.method} {raw}: not under the API root {root!r} of {self.name}")
        return raw[len(root) :] or "/"

    def match(self, request: httpx.Request, api_root: str | None = None) -> tuple[Match, str]:
        path = self._relative(request, api_root)
        template, params, allowed = self.templates.find(request.method, path)
        if template is None:
            if allowed:
                raise SpecViolation(
                    f"{request.method} {path}: {self.name} allows only "
                    f"{', '.join(sorted(allowed))} on this path"
                )
            raise SpecViolation(f"{request.method} {path}: no such path in {self.name} ({self.source.name})")
        op = self.operation(request.method, template.template)
        return Match(template, request.method.upper(), params, op), path

    # -- requests -------------------------------------------------------------
    def _declared_query(self, op: dict[str, Any]) -> set[str]:
        names = {p["name"] for p in self._params(op) if p.get("in") == "query"}
        schemes = self.document.get("components", {}).get("securitySchemes", {})
        names |= {s["name"] for s in schemes.values() if s.get("type") == "apiKey" and s.get("in") == "query"}
        return names

    def _params(self, op: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for p in op.get("parameters", []):
            if "$ref" in p:
                p = self.document["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]]
            out.append(p)
        return out

    def check_request(
        self, request: httpx.Request, *, api_root: str | None = None, strict_query: bool = True
    ) -> Match:
        """Raise SpecViolation unless the description allows this request."""
        match, path = self.match(request, api_root)
        where = f"{match.method} {path} ({match.template.template})"
        op = match.operation
        if strict_query:
            declared = self._declared_query(op)
            sent = {
                k for k, _ in parse_qsl(request.url.query.decode("ascii", "replace"), keep_blank_values=True)
            }
            unknown = sorted(sent - declared)
            if unknown:
                raise SpecViolation(
                    f"{where}: query parameter(s) {', '.join(unknown)} not declared; "
                    f"declared: {', '.join(sorted(declared)) or 'none'}"
                )
        if request.content and "requestBody" not in op:
            raise SpecViolation(f"{where}: sends a body but the operation takes none")
        body = op.get("requestBody")
        if body and body.get("required") and not request.content:
            raise SpecViolation(f"{where}: the request body is required")
        with warnings.catch_warnings():
            # openapi-core warns on security schemes it cannot check (oauth2, openIdConnect) and
            # treats them as absent: the other schemes of the description still apply.
            warnings.simplefilter("ignore", UserWarning)
            errors = list(self._request_validator.iter_errors(_OpenAPIRequest(request, match, path)))
        if errors:
            raise SpecViolation(f"{where}: " + "; ".join(_describe(e) for e in errors))
        return match

    # -- responses ------------------------------------------------------------
    def check_response(
        self, request: httpx.Request, response: httpx.Response, match: Match, *, api_root: str | None = None
    ) -> None:
        """Raise SpecViolation unless the description allows this answer to ``request``."""
        path = self._relative(request, api_root)
        where = f"{match.method} {path} → {response.status_code}"
        responses = match.operation.get("responses", {})
        if str(response.status_code) not in responses and "default" not in responses:
            if response.status_code >= 400:
                return
            raise SpecViolation(f"{where}: status not documented (documented: {', '.join(responses)})")
        data: bytes | None = response.content or None
        bodies: list[bytes | None] = [data]
        if data and "json" in response.headers.get("content-type", ""):
            value = orjson.loads(data)
            if not self.keep_nulls:
                value = _strip_nulls(value)
            if isinstance(value, list) and (match.method, match.template.template) in self.item_or_list:
                bodies = [orjson.dumps(item) for item in value]
            else:
                bodies = [orjson.dumps(value)]
        errors = [
            e
            for body in bodies
            for e in self._response_validator.iter_errors(
                _OpenAPIRequest(request, match, path), _OpenAPIResponse(response, body)
            )
        ]
        if errors:
            raise SpecViolation(
                f"{where}: response does not match {self.name}: " + "; ".join(_describe(e) for e in errors)
            )


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    for inner in getattr(exc, "schema_errors", None) or []:
        loc = "/".join(str(p) for p in getattr(inner, "path", [])) or "<root>"
        parts.append(f"  at {loc}: {getattr(inner, 'message', inner)}")
    cause = exc.__cause__
    if cause is not None and not parts[1:]:
        for inner in getattr(cause, "schema_errors", None) or []:
            loc = "/".join(str(p) for p in getattr(inner, "path", [])) or "<root>"
            parts.append(f"  at {loc}: {getattr(inner, 'message', inner)}")
        if not parts[1:]:
            parts.append(f"  ({type(cause).__name__}: {cause})")
    return "\n".join(parts)


@cache
def load_spec(name: str) -> ApiSpec:
    """The named vendor description (a key of SPECS, or a file name in specs_dir()), parsed once."""
    options = SPECS.get(name) or SpecOptions(name)
    source = specs_dir() / options.file
    timings: dict[str, float] = {}
    started = time.perf_counter()
    raw = _read(source)
    timings["read"] = time.perf_counter() - started
    if raw.get("swagger") == "2.0":
        started = time.perf_counter()
        document = swagger2_to_openapi3(raw)
        timings["convert"] = time.perf_counter() - started
    elif str(raw.get("openapi", "")).startswith("3."):
        document = raw
    else:
        raise ValueError(f"{source}: neither Swagger 2.0 nor OpenAPI 3")
    servers = document.get("servers") or [{"url": "/"}]
    base_path = urlsplit(str(servers[0].get("url", "/"))).path.rstrip("/")
    # Matching is ours and host-agnostic: drop every server so openapi-core never compares hosts.
    document["servers"] = [{"url": "/"}]
    for item in document.get("paths", {}).values():
        item.pop("servers", None)
        for method in _METHODS:
            if isinstance(item.get(method), dict):
                item[method].pop("servers", None)
    return ApiSpec(
        name=name,
        source=source,
        document=document,
        base_path=base_path,
        greedy=options.greedy,
        item_or_list=options.item_or_list,
        keep_nulls=options.keep_nulls,
        timings=timings,
    )


@dataclass(slots=True)
class Exchange:
    request: httpx.Request
    response: httpx.Response | None
    template: str | None


class SpecValidatingTransport(httpx.AsyncBaseTransport):
    """Checks each request against ``spec`` before handing it to ``inner``, and each response after.

    A violation raises :class:`SpecViolation` out of the client call (failing the test) and is also
    kept in ``violations``, so that code which swallows exceptions cannot hide one: call
    :meth:`assert_clean` at the end (the ``spec_transport`` fixture does).
    """

    def __init__(
        self,
        spec: ApiSpec,
        inner: httpx.AsyncBaseTransport,
        *,
        api_root: str | None = None,
        validate_responses: bool = True,
        strict_query: bool = True,
    ) -> None:
        self.spec = spec
        self.inner = inner
        self.api_root = api_root
        self.validate_responses = validate_responses
        self.strict_query = strict_query
        self.exchanges: list[Exchange] = []
        self.violations: list[SpecViolation] = []

    @property
    def requests(self) -> list[httpx.Request]:
        return [e.request for e in self.exchanges]

    def calls(self) -> list[tuple[str, str]]:
        """(method, matched template) of every request, in order."""
        return [(e.request.method, e.template or "?") for e in self.exchanges]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        exchange = Exchange(request, None, None)
        self.exchanges.append(exchange)
        try:
            match = self.spec.check_request(request, api_root=self.api_root, strict_query=self.strict_query)
        except SpecViolation as exc:
            self.violations.append(exc)
            raise
        exchange.template = match.template.template
        response = await self.inner.handle_async_request(request)
        await response.aread()
        exchange.response = response
        if self.validate_responses:
            try:
                self.spec.check_response(request, response, match, api_root=self.api_root)
            except SpecViolation as exc:
                self.violations.append(exc)
                raise
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def assert_clean(self) -> None:
        if self.violations:
            raise SpecViolation(
                f"{len(self.violations)} request(s) violated {self.spec.name}:\n"
                + "\n".join(str(v) for v in self.violations)
            )


def validating(
    spec: str | ApiSpec, inner: httpx.AsyncBaseTransport | Any, **kwargs: Any
) -> SpecValidatingTransport:
    """``SpecValidatingTransport`` over a transport or a MockTransport handler function."""
    api = load_spec(spec) if isinstance(spec, str) else spec
    transport = inner if isinstance(inner, httpx.AsyncBaseTransport) else httpx.MockTransport(inner)
    return SpecValidatingTransport(api, transport, **kwargs)


__all__ = [
    "SPECS",
    "ApiSpec",
    "Exchange",
    "SpecValidatingTransport",
    "SpecViolation",
    "load_spec",
    "specs_dir",
    "validating",
]
