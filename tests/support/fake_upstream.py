"""Building blocks for stateful fakes of vendor APIs, served through ``httpx.MockTransport``.

A fake is a :class:`Router`: a table of (method, path template) → handler. Handlers get a
:class:`FakeRequest` (path parameters already decoded) and return an ``httpx.Response`` (see
:func:`json_response`) or raise :class:`HttpError`. The router answers 404/405 for unknown
routes, can be told to answer the next matching requests with a canned response
(:meth:`Router.inject`, for rate limits and outages), and logs every request.

Wrap ``router.transport()`` in ``SpecValidatingTransport`` so that both what the plugin sends and
what the fake answers are checked against the vendor's description.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson

from .paths import TemplateSet


class HttpError(Exception):
    """Raised by a handler to answer with an error status and a JSON body."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=orjson.dumps(body),
        headers={"content-type": "application/json;charset=utf-8", **(headers or {})},
    )


def empty_response(status: int = 204, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=dict(headers or {}))


@dataclass
class FakeRequest:
    request: httpx.Request
    params: dict[str, str]
    template: str

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def headers(self) -> httpx.Headers:
        return self.request.headers

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the last value of a repeated key wins)."""
        return dict(parse_qsl(self.request.url.query.decode("ascii", "replace"), keep_blank_values=True))

    def query_int(self, name: str, default: int) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise HttpError(400, {"message": f"{name} must be an integer"}) from None

    def json(self) -> Any:
        if not self.request.content:
            return None
        try:
            return orjson.loads(self.request.content)
        except orjson.JSONDecodeError:
            raise HttpError(400, {"message": "request body is not JSON"}) from None


Handler = Callable[[FakeRequest], httpx.Response]


@dataclass
class Injected:
    response: Callable[[], httpx.Response]
    method: str | None
    template: str | None
    times: int


@dataclass
class Router:
    """Route table of a fake upstream. ``prefix`` is the API root inside the URL (``/api/v1``)."""

    prefix: str = ""
    greedy: Iterable[str] = ()
    not_found_body: Callable[[str], Any] = field(default=lambda path: {"message": f"no route {path}"})
    log: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._templates = TemplateSet(self.greedy)
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._injected: list[Injected] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        self._templates.add(template, [method])
        self._handlers[(method.upper(), template)] = handler

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, template, handler)
            return handler

        return register

    def inject(
        self,
        response: httpx.Response | Callable[[], httpx.Response],
        *,
        method: str | None = None,
        template: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``response`` instead of the handler."""
        if isinstance(response, httpx.Response):
            canned = response

            def make() -> httpx.Response:
                return _copy(canned)
        else:
            make = response
        self._injected.append(Injected(make, method.upper() if method else None, template, times))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode("ascii").split("?", 1)[0]
        path = raw[len(self.prefix) :] if self.prefix and raw.startswith(self.prefix) else raw
        tmpl, params, allowed = self._templates.find(request.method, path)
        self.log.append((request.method, tmpl.template if tmpl else path))
        for inj in self._injected:
            if (
                inj.times > 0
                and inj.method in (None, request.method)
                and (inj.template is None or (tmpl is not None and tmpl.template == inj.template))
            ):
                inj.times -= 1
                return inj.response()
        if tmpl is None:
            if allowed:
                return json_response(405, {"message": f"method {request.method} not allowed"})
            return json_response(404, self.not_found_body(path))
        handler = self._handlers[(request.method.upper(), tmpl.template)]
        try:
            return handler(FakeRequest(request, params, tmpl.template))
        except HttpError as err:
            if err.body is None:
                return empty_response(err.status, err.headers)
            return json_response(err.status, err.body, err.headers)


def _copy(response: httpx.Response) -> httpx.Response:
    return httpx.Response(response.status_code, headers=response.headers, content=response.content)


def link_paginate(
    request: FakeRequest,
    items: list[Any],
    *,
    page_param: str = "page",
    size_param: str = "limit",
    default_size: int = 30,
    max_size: int = 50,
    total_header: str | None = "X-Total-Count",
) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` for the requested page and build the ``Link`` (next/prev/first/last) and total
    headers the way Gitea/GitHub do, with absolute URLs of the same endpoint."""
    size = request.query_int(size_param, default_size)
    size = default_size if size <= 0 else min(size, max_size)
    page = max(1, request.query_int(page_param, 1))
    last = max(1, -(-len(items) // size))
    chunk = items[(page - 1) * size : page * size]

    def url(n: int) -> str:
        return str(request.request.url.copy_set_param(page_param, n).copy_set_param(size_param, size))

    links: list[str] = []
    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
    headers: dict[str, str] = {}
    if links:
        headers["Link"] = ",".join(links)
    if total_header:
        headers[total_header] = str(len(items))
    return chunk, headers
