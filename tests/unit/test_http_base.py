"""The shared HTTP provider base: config, auth styles, error mapping, rate limits, deadlines,
pagination styles, passthrough, health, and GitHub App installation tokens."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from tests.support.fake_upstream import FakeRequest, Router, json_response, link_paginate
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog.git import PassthroughParams
from mosaic.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    MosaicError,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    Timeout,
    Unauthorized,
)
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import HttpConfig, HttpProviderPlugin, safe_relative_path
from mosaic.plugins.http_pagination import (
    CursorPagination,
    LinkHeaderPagination,
    NextUrlPagination,
    PageNumberPagination,
    decode_cursor,
    encode_cursor,
)
from mosaic.plugins.http_ratelimit import parse_rate_limit, parse_retry_after

NOW = 1_717_430_000.0
BASE = "https://api.vendor.test/v2"


class Probe(HttpProviderPlugin):
    provider: ClassVar[str] = "probe"
    service = "git"
    name: ClassVar[str] = "Probe"


class PrivateTokenProbe(Probe):
    token_header: ClassVar[str] = "PRIVATE-TOKEN"
    token_format: ClassVar[str] = "{token}"


Handler = Callable[[httpx.Request], Any]


async def started(
    handler: Handler | httpx.AsyncBaseTransport,
    *,
    cls: type[Probe] = Probe,
    clock: Callable[[], float] = lambda: NOW,
    **config: Any,
) -> Probe:
    transport = handler if isinstance(handler, httpx.AsyncBaseTransport) else httpx.MockTransport(handler)
    plugin = cls("probe", transport=transport, clock=clock)
    await plugin.initialize(HttpConfig.model_validate({"baseUrl": BASE, **config}))
    await plugin.start()
    return plugin


@pytest.fixture
async def cleanup() -> AsyncIterator[list[HttpProviderPlugin]]:
    plugins: list[HttpProviderPlugin] = []
    yield plugins
    for p in plugins:
        await p.dispose()


# -- config ------------------------------------------------------------------------------------------


def test_secrets_never_show() -> None:
    cfg = HttpConfig.model_validate(
        {"baseUrl": BASE, "auth": {"type": "basic", "username": "u", "password": "pa55word-secret"}}
    )
    app = HttpConfig.model_validate(
        {
            "baseUrl": BASE,
            "auth": {"type": "app", "appId": 7, "installationId": 9, "privateKey": "-----BEGIN KEY-----zzz"},
        }
    )
    tok = HttpConfig.model_validate({"baseUrl": BASE, "auth": {"token": "tok-secret-1"}})
    shown = " ".join(
        [
            repr(cfg),
            str(cfg),
            cfg.model_dump_json(),
            repr(app),
            app.model_dump_json(),
            repr(tok),
            str(tok.model_dump()),
        ]
    )
    for secret in ("pa55word-secret", "BEGIN KEY", "tok-secret-1"):
        assert secret not in shown
    assert app.auth is not None and app.auth.app_id == "7"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"baseUrl": "ftp://x.test"}, "absolute http"),
        ({"baseUrl": "https://user:pw@x.test"}, "must not contain credentials"),
        ({"baseUrl": "https://x.test/?a=1"}, "query or fragment"),
        ({"baseUrl": BASE, "headers": {"Authorization": "token x"}}, "must not carry credentials"),
        ({"baseUrl": BASE, "auth": {"type": "token"}}, "needs token"),
        ({"baseUrl": BASE, "auth": {"type": "token", "token": ""}}, "needs token"),
        ({"baseUrl": BASE, "auth": {"type": "basic", "username": "u"}}, "needs password"),
        (
            {"baseUrl": BASE, "auth": {"type": "app", "appId": 1, "installationId": 2}},
            "exactly one of privateKey",
        ),
        ({"baseUrl": BASE, "auth": {"type": "app", "privateKey": "k"}}, "needs appId, installationId"),
        (
            {"baseUrl": BASE, "auth": {"type": "bearer", "token": "t", "username": "u"}},
            "does not use username",
        ),
        ({"baseUrl": BASE, "timeoutMs": 0}, "greater than 0"),
    ],
)
def test_config_is_checked(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpConfig.model_validate(config)


@pytest.mark.parametrize(
    ("cls", "auth", "expected"),
    [
        (Probe, {"token": "abc"}, ("authorization", "token abc")),
        (PrivateTokenProbe, {"token": "abc"}, ("private-token", "abc")),
        (Probe, {"type": "bearer", "token": "abc"}, ("authorization", "Bearer abc")),
        (
            Probe,
            {"type": "basic", "username": "u", "password": "p"},
            ("authorization", "Basic " + base64.b64encode(b"u:p").decode()),
        ),
    ],
)
async def test_auth_styles(
    cls: type[Probe], auth: dict[str, Any], expected: tuple[str, str], cleanup: list[HttpProviderPlugin]
) -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return json_response(200, {})

    plugin = await started(handler, cls=cls, auth=auth, headers={"X-Trace": "1"})
    cleanup.append(plugin)
    await plugin.request("GET", "/thing")
    assert seen[0][expected[0]] == expected[1]
    assert seen[0]["x-trace"] == "1" and seen[0]["user-agent"].startswith("mosaic/")
    assert str(seen[0].get("authorization", "")).count(" ") <= 1


async def test_one_client_per_instance_closed_on_dispose() -> None:
    plugin = await started(lambda r: json_response(200, {}))
    client = plugin._client
    await plugin.request("GET", "/a")
    await plugin.request("GET", "/b")
    assert plugin._client is client and client is not None
    await plugin.dispose()
    assert client.is_closed and plugin._client is None
    with pytest.raises(ProviderUnavailable, match="not started") as info:
        await plugin.request("GET", "/a")
    assert info.value.sent is False


async def test_redirects_stay_on_the_configured_origin(cleanup: list[HttpProviderPlugin]) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/v2/old":
            return httpx.Response(301, headers={"Location": "/v2/new"})
        if request.url.path == "/v2/away":
            return httpx.Response(302, headers={"Location": "https://elsewhere.test/steal"})
        return json_response(200, {"at": request.url.path})

    plugin = await started(handler, cls=PrivateTokenProbe, auth={"token": "gl-token"})
    cleanup.append(plugin)
    assert json.loads((await plugin.request("GET", "/old")).content) == {"at": "/v2/new"}
    with pytest.raises(ProviderUnavailable, match=r"redirected to https://elsewhere\.test"):
        await plugin.request("GET", "/away")
    assert not any("elsewhere" in url for url in seen)


# -- error mapping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (405, InvalidRequest),
        (409, Conflict),
        (410, NotFound),
        (412, Conflict),
        (422, InvalidRequest),
        (423, Conflict),
        (429, RateLimited),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (504, Timeout),
    ],
)
async def test_status_mapping(
    status: int, error: type[MosaicError], cleanup: list[HttpProviderPlugin]
) -> None:
    plugin = await started(
        lambda r: json_response(status, {"message": "vendor says no"}), auth={"token": "t0k3n"}
    )
    cleanup.append(plugin)
    with pytest.raises(error) as info:
        await plugin.request("POST", "/things", json={"name": "x"})
    assert type(info.value) is error
    assert info.value.message == f"probe: POST /things returned {status}: vendor says no"
    assert info.value.details == {"provider": "probe", "status": status, "method": "POST", "path": "/things"}
    assert plugin.metrics()["errors"] == {error.code: 1}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "message": "Validation Failed",
                "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
            },
            "Validation Failed: resource Issue; field title; code missing_field",
        ),
        ({"message": {"name": ["has already been taken"]}}, "name has already been taken"),
        (
            {"type": "error", "error": {"message": "Repository not found", "detail": "x"}},
            "Repository not found",
        ),
        ({"error": "invalid_grant", "error_description": "Bad code"}, "Bad code"),
        (["first", "second"], "first; second"),
    ],
)
async def test_vendor_messages(body: Any, expected: str, cleanup: list[HttpProviderPlugin]) -> None:
    plugin = await started(lambda r: json_response(422, body))
    cleanup.append(plugin)
    with pytest.raises(InvalidRequest) as info:
        await plugin.request("GET", "/x")
    assert info.value.message.endswith(f": {expected}")


async def test_errors_never_carry_credentials(cleanup: list[HttpProviderPlugin]) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return json_response(400, {"message": f"bad header {request.headers['authorization']}"})

    plugin = await started(echo, auth={"type": "bearer", "token": "sup3r-s3cret"})
    cleanup.append(plugin)
    with pytest.raises(InvalidRequest) as info:
        await plugin.request("GET", "/x", params={"q": "1"})
    assert "sup3r-s3cret" not in str(info.value) and "Bearer ***" in info.value.message
    assert "q=1" not in str(info.value.to_dict())


@pytest.mark.parametrize(
    ("headers", "error", "retry_after"),
    [
        (
            {
                "x-ratelimit-remaining": "0",
                "x-ratelimit-limit": "60",
                "x-ratelimit-reset": str(int(NOW) + 42),
            },
            RateLimited,
            42.0,
        ),
        ({"retry-after": "12"}, RateLimited, 12.0),
        ({"x-ratelimit-remaining": "5", "x-ratelimit-limit": "60"}, Forbidden, None),
        ({}, Forbidden, None),
    ],
)
async def test_403_is_rate_limited_only_when_the_window_says_so(
    headers: dict[str, str],
    error: type[MosaicError],
    retry_after: float | None,
    cleanup: list[HttpProviderPlugin],
) -> None:
    plugin = await started(lambda r: json_response(403, {"message": "nope"}, headers))
    cleanup.append(plugin)
    with pytest.raises(error) as info:
        await plugin.request("GET", "/x")
    assert getattr(info.value, "retry_after", None) == retry_after


async def test_rate_limit_state_reaches_the_context(cleanup: list[HttpProviderPlugin]) -> None:
    reset = email.utils.formatdate(NOW + 90, usegmt=True)
    gitlab = {"RateLimit-Limit": "600", "RateLimit-Remaining": "599", "RateLimit-ResetTime": reset}
    plugin = await started(lambda r: json_response(200, {}, gitlab))
    cleanup.append(plugin)
    ctx = RequestContext()
    await plugin.request("GET", "/x", ctx=ctx)
    assert ctx.meta["rate_limit"] == {"limit": 600, "remaining": 599, "reset": NOW + 90}
    assert plugin.metrics()["rate_limit"]["remaining"] == 599


def test_rate_limit_header_families() -> None:
    github = parse_rate_limit(
        httpx.Headers(
            {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1717430100",
                "X-RateLimit-Resource": "core",
            }
        ),
        NOW,
    )
    assert github is not None and github.exhausted and github.resource == "core"
    assert github.wait_seconds(NOW) == 100.0
    ietf = parse_rate_limit(
        httpx.Headers({"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "30"}), NOW
    )
    assert ietf is not None and ietf.reset == NOW + 30  # a small reset is a delay, not a date
    assert parse_rate_limit(httpx.Headers({"Content-Type": "application/json"}), NOW) is None
    assert parse_retry_after(email.utils.formatdate(NOW + 15, usegmt=True), NOW) == 15.0
    assert parse_retry_after("2.5", NOW) == 2.5
    assert parse_retry_after("soon", NOW) is None


@pytest.mark.parametrize(
    ("exc", "error", "sent"),
    [
        (httpx.ConnectError("connection refused"), ProviderUnavailable, False),
        (httpx.ConnectTimeout("connect timed out"), ProviderUnavailable, False),
        (httpx.PoolTimeout("pool exhausted"), ProviderUnavailable, False),
        (httpx.ReadTimeout("read timed out"), Timeout, True),
        (httpx.RemoteProtocolError("peer closed"), ProviderUnavailable, True),
        (httpx.ReadError("reset by peer"), ProviderUnavailable, True),
    ],
)
async def test_transport_errors(
    exc: Exception, error: type[ProviderUnavailable], sent: bool, cleanup: list[HttpProviderPlugin]
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    plugin = await started(fail)
    cleanup.append(plugin)
    with pytest.raises(error) as info:
        await plugin.request("GET", "/x")
    assert type(info.value) is error and info.value.sent is sent


async def test_provider_cookies_are_never_replayed(cleanup: list[HttpProviderPlugin]) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"Set-Cookie": "session=of-the-first-caller; Path=/"})

    plugin = await started(handler)
    cleanup.append(plugin)
    for _ in range(3):
        await plugin.request("GET", "/x")
    assert seen == [None, None, None]


async def _one_shot_server() -> tuple[asyncio.Server, int]:
    """Reads a request, then drops the connection without answering."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_real_pool_tells_unsent_from_sent(cleanup: list[HttpProviderPlugin]) -> None:
    """On aiohttp's pool: refused = never sent (a write may be retried); closed after the request
    went out = maybe applied (never retried as if unsent)."""
    server, port = await _one_shot_server()
    try:
        plugin = Probe("probe")
        await plugin.initialize(HttpConfig.model_validate({"baseUrl": f"http://127.0.0.1:{port}/api"}))
        await plugin.start()
        cleanup.append(plugin)
        with pytest.raises(ProviderUnavailable) as closed:
            await plugin.request("POST", "/x", json={"a": 1})
        assert closed.value.sent is True
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(ProviderUnavailable) as refused:  # nothing listens there any more
        await plugin.request("POST", "/x", json={"a": 1})
    assert refused.value.sent is False and "could not connect" in refused.value.message


async def test_an_environment_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch,
                                                cleanup: list[HttpProviderPlugin]) -> None:
    """Behind HTTP(S)_PROXY the providers keep httpx's own transports, which honour it."""
    lines: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                     b'{"via": 1}\n')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    try:
        plugin = Probe("probe")
        await plugin.initialize(HttpConfig.model_validate({"baseUrl": "http://forge.vendor.test/api"}))
        await plugin.start()
        cleanup.append(plugin)
        response = await plugin.request("GET", "/user")
        assert response.json() == {"via": 1}
        assert lines == [b"GET http://forge.vendor.test/api/user HTTP/1.1"]
    finally:
        server.close()
        await server.wait_closed()


async def test_the_deadline_bounds_each_request(cleanup: list[HttpProviderPlugin]) -> None:
    timeouts: list[dict[str, float]] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        if request.url.path.endswith("/slow"):
            await asyncio.sleep(5)
        return json_response(200, {})

    plugin = await started(slow, timeoutMs=20_000)
    cleanup.append(plugin)
    await plugin.request("GET", "/fast", ctx=RequestContext.with_timeout(2.0))
    assert 1.5 < timeouts[0]["read"] <= 2.0  # the context's remaining time, not the configured 20 s
    await plugin.request("GET", "/fast")
    assert timeouts[1]["read"] == 20.0
    started_at = asyncio.get_running_loop().time()
    with pytest.raises(Timeout, match="deadline"):
        await plugin.request("GET", "/slow", ctx=RequestContext.with_timeout(0.05))
    assert asyncio.get_running_loop().time() - started_at < 1.0
    with pytest.raises(Timeout) as info:
        await plugin.request("GET", "/fast", ctx=RequestContext(deadline=0.0))
    assert info.value.sent is False and len(timeouts) == 3


async def test_expected_statuses(cleanup: list[HttpProviderPlugin]) -> None:
    plugin = await started(lambda r: httpx.Response(404 if r.url.path.endswith("/gone") else 202))
    cleanup.append(plugin)
    assert (await plugin.request("GET", "/gone", expected=(204, 404))).status_code == 404
    with pytest.raises(ProviderUnavailable, match="unexpected status 202"):
        await plugin.request("GET", "/x", expected=(200,))


# -- pagination ------------------------------------------------------------------------------------


def test_cursor_round_trip_and_rejections() -> None:
    keys = frozenset({"page", "per_page"})
    assert decode_cursor(encode_cursor({"page": "3", "per_page": "50"}), keys) == {
        "page": "3",
        "per_page": "50",
    }
    for bad in (
        "%%%",
        encode_cursor({"page": "1", "state": "all"}),
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b'{"page": 2}').decode(),
    ):
        with pytest.raises(InvalidRequest, match="cursor"):
            decode_cursor(bad, keys)


def _github_style(items: list[int]) -> Router:
    router = Router(prefix="/v2")

    @router.route("GET", "/items")
    def listing(req: FakeRequest) -> httpx.Response:
        chunk, headers = link_paginate(req, items, size_param="per_page", default_size=30, max_size=100)
        return json_response(200, chunk, headers)

    @router.route("GET", "/elsewhere")
    def elsewhere(req: FakeRequest) -> httpx.Response:
        raise AssertionError("a cursor must never move the request to another path")

    return router


async def _all_pages(
    plugin: HttpProviderPlugin,
    pagination: Any,
    limit: int,
    path: str = "/items",
    params: dict[str, Any] | None = None,
) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        items, cursor = await plugin.fetch_page(
            path, ctx=RequestContext(), pagination=pagination, limit=limit, cursor=cursor, params=params
        )
        pages.append(items)
        if cursor is None or len(pages) > 10:
            return pages


async def test_link_header_pages(cleanup: list[HttpProviderPlugin]) -> None:
    router = _github_style(list(range(8)))
    plugin = await started(router.transport())
    cleanup.append(plugin)
    pages = await _all_pages(plugin, LinkHeaderPagination(), 3, params={"sort": "created"})
    assert pages == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert len(router.log) == 3


async def test_page_number_with_and_without_total(cleanup: list[HttpProviderPlugin]) -> None:
    items = list(range(7))

    def handler(request: httpx.Request) -> httpx.Response:
        page, size = (
            int(request.url.params["page"]) if "page" in request.url.params else 1,
            int(request.url.params["size"]),
        )
        chunk = items[(page - 1) * size : page * size]
        total = {"X-Total-Count": "7"} if request.url.path.endswith("/counted") else {}
        return json_response(200, {"data": chunk}, total)

    plugin = await started(handler)
    cleanup.append(plugin)
    counted = PageNumberPagination(size_param="size", items_key="data")
    assert await _all_pages(plugin, counted, 7, "/counted") == [items]  # the total says: no second page
    assert await _all_pages(plugin, counted, 3, "/counted") == [[0, 1, 2], [3, 4, 5], [6]]
    assert await _all_pages(plugin, counted, 7, "/plain") == [items, []]  # a full page may have a sequel


async def test_vendor_cursor_and_next_url(cleanup: list[HttpProviderPlugin]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/search"):  # Notion style
            start = int(request.url.params.get("start_cursor", "0"))
            nxt = start + 2 if start + 2 < 5 else None
            return json_response(
                200,
                {
                    "results": list(range(start, min(start + 2, 5))),
                    "next_cursor": None if nxt is None else str(nxt),
                    "has_more": nxt is not None,
                },
            )
        page = int(request.url.params.get("page", "1"))  # Bitbucket style
        body: dict[str, Any] = {"values": [page * 10, page * 10 + 1], "pagelen": 2, "page": page}
        if page < 3:
            body["next"] = f"https://api.vendor.test/v2/repositories/w?pagelen=2&page={page + 1}&evil=1"
        return json_response(200, body)

    plugin = await started(handler)
    cleanup.append(plugin)
    notion = CursorPagination(
        cursor_param="start_cursor",
        size_param="page_size",
        items_key="results",
        next_token=lambda response, body: body.get("next_cursor"),
    )
    assert await _all_pages(plugin, notion, 2, "/search") == [[0, 1], [2, 3], [4]]
    bitbucket = NextUrlPagination()
    assert await _all_pages(plugin, bitbucket, 2, "/repositories/w") == [[10, 11], [20, 21], [30, 31]]


async def test_a_next_link_elsewhere_keeps_our_path(cleanup: list[HttpProviderPlugin]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v2/items"
        link = '<https://other.host/v2/elsewhere?page=2&per_page=1&token=stolen>; rel="next"'
        return json_response(200, [1], {"Link": link} if "page" not in request.url.params else {})

    plugin = await started(handler)
    cleanup.append(plugin)
    items, cursor = await plugin.fetch_page(
        "/items", ctx=RequestContext(), pagination=LinkHeaderPagination(), limit=1
    )
    assert items == [1]
    assert cursor is not None and decode_cursor(cursor, LinkHeaderPagination().cursor_keys) == {
        "page": "2",
        "per_page": "1",
    }
    await plugin.fetch_page(
        "/items", ctx=RequestContext(), pagination=LinkHeaderPagination(), limit=1, cursor=cursor
    )


# -- passthrough and health ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/repos/a/b", "/a%2Fb/c", "/search/code"])
def test_relative_paths_are_accepted(path: str) -> None:
    assert safe_relative_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "repos",
        "//evil.test/x",
        "/x/../../admin",
        "/%2e%2e/admin",
        "/%252e%252e/x",
        "/a?b=c",
        "/a#frag",
        "/a\\b",
        "/a\nb",
        "http://evil.test/x",
    ],
)
def test_paths_that_leave_the_api_are_refused(path: str) -> None:
    with pytest.raises(InvalidRequest, match="path"):
        safe_relative_path(path)


async def test_passthrough(cleanup: list[HttpProviderPlugin]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return json_response(
                201,
                {"got": json.loads(request.content), "q": dict(request.url.params)},
                {"Set-Cookie": "session=1"},
            )
        return httpx.Response(200, text="plain text", headers={"content-type": "text/plain"})

    plugin = await started(handler, auth={"token": "t"})
    cleanup.append(plugin)
    ctx = RequestContext()
    made = await plugin.passthrough(
        PassthroughParams(method="POST", path="/things", query={"dry": "1"}, body={"a": 1}), ctx
    )
    assert (made.status, made.body, made.provider) == (201, {"got": {"a": 1}, "q": {"dry": "1"}}, "probe")
    assert "set-cookie" not in made.headers and made.headers["content-type"].startswith("application/json")
    text = await plugin.passthrough(PassthroughParams(path="/readme"), ctx)
    assert text.body == "plain text"
    assert Probe.supports("passthrough")


async def test_health(cleanup: list[HttpProviderPlugin]) -> None:
    answers = [
        json_response(200, {"login": "me"}, {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "50"}),
        json_response(429, {"message": "slow down"}, {"retry-after": "3"}),
        httpx.Response(500),
    ]
    plugin = await started(lambda r: answers.pop(0), auth={"token": "t"})
    cleanup.append(plugin)
    ok = await plugin.health_check()
    assert (
        ok.status == "healthy"
        and ok.rate_limit == {"limit": 100, "remaining": 50}
        and ok.latency_ms is not None
    )
    limited = await plugin.health_check()
    assert limited.status == "degraded" and "429" in limited.detail
    down = await plugin.health_check()
    assert down.status == "unhealthy"
    assert plugin.metrics()["requests"] == 3
    fresh = Probe("cold")
    assert (await fresh.health_check()).status == "unhealthy"


# -- GitHub App installation tokens ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> tuple[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """GitHub's ``POST /app/installations/{id}/access_tokens`` and one installation API call."""

    def __init__(self, public_key: Any, clock: Clock) -> None:
        self.public_key = public_key
        self.clock = clock
        self.issued: list[str] = []
        self.jwts: list[dict[str, Any]] = []
        self.revoked: set[str] = set()
        self.router = Router()
        self.router.add("POST", "/app/installations/{installation_id}/access_tokens", self.exchange)
        self.router.add("GET", "/installation/repositories", self.repositories)

    def exchange(self, req: FakeRequest) -> httpx.Response:
        scheme, _, token = req.headers["authorization"].partition(" ")
        assert scheme == "Bearer" and req.params["installation_id"] == "99"
        try:
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError:
            return json_response(401, {"message": "A JSON web token could not be decoded"})
        self.jwts.append(claims)
        value = f"ghs_token{len(self.issued) + 1}"
        self.issued.append(value)
        expires = datetime.fromtimestamp(self.clock.now + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return json_response(
            201,
            {
                "token": value,
                "expires_at": expires,
                "permissions": {"contents": "read"},
                "repository_selection": "all",
            },
        )

    def repositories(self, req: FakeRequest) -> httpx.Response:
        token = req.headers["authorization"].removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return json_response(401, {"message": "Bad credentials"})
        return json_response(200, {"total_count": 0, "repositories": []})


@pytest.fixture
async def app_env(
    rsa_key: tuple[str, Any], spec_transport: Callable[..., SpecValidatingTransport]
) -> AsyncIterator[tuple[Probe, TokenEndpoint, Clock]]:
    clock = Clock()
    endpoint = TokenEndpoint(rsa_key[1], clock)
    transport = spec_transport("github", endpoint.router.transport())
    plugin = Probe("gh-app", transport=transport, clock=clock)
    await plugin.initialize(
        HttpConfig.model_validate(
            {
                "baseUrl": "https://api.github.com",
                "auth": {"type": "app", "appId": 12345, "installationId": 99, "privateKey": rsa_key[0]},
            }
        )
    )
    await plugin.start()
    yield plugin, endpoint, clock
    await plugin.dispose()


async def test_app_jwt_is_exchanged_cached_and_refreshed(app_env: tuple[Probe, TokenEndpoint, Clock]) -> None:
    plugin, endpoint, clock = app_env
    await plugin.request("GET", "/installation/repositories")
    assert endpoint.issued == ["ghs_token1"]
    claims = endpoint.jwts[0]
    assert claims == {"iat": int(NOW) - 60, "exp": int(NOW) + 540, "iss": "12345"}
    clock.now = NOW + 3600 - 301  # still more than 5 minutes left: cached
    await plugin.request("GET", "/installation/repositories")
    assert endpoint.issued == ["ghs_token1"]
    clock.now = NOW + 3600 - 299  # inside the 5-minute margin: renewed
    await plugin.request("GET", "/installation/repositories")
    assert endpoint.issued == ["ghs_token1", "ghs_token2"]
    assert endpoint.jwts[1]["iat"] == int(clock.now) - 60


async def test_app_token_exchange_is_single_flight(app_env: tuple[Probe, TokenEndpoint, Clock]) -> None:
    plugin, endpoint, _ = app_env
    await asyncio.gather(*(plugin.request("GET", "/installation/repositories") for _ in range(20)))
    assert endpoint.issued == ["ghs_token1"]


async def test_a_revoked_app_token_is_replaced(app_env: tuple[Probe, TokenEndpoint, Clock]) -> None:
    plugin, endpoint, _ = app_env
    await plugin.request("GET", "/installation/repositories")
    endpoint.revoked.add("ghs_token1")
    with pytest.raises(Unauthorized) as info:
        await plugin.request("GET", "/installation/repositories")
    assert "ghs_token1" not in str(info.value)
    await plugin.request("GET", "/installation/repositories")
    assert endpoint.issued == ["ghs_token1", "ghs_token2"]


async def test_app_key_problems(rsa_key: tuple[str, Any], tmp_path: Path) -> None:
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    endpoint = TokenEndpoint(rsa_key[1], Clock())
    key_file = tmp_path / "app.pem"
    key_file.write_text(other)
    plugin = Probe("gh-app", transport=endpoint.router.transport(), clock=lambda: NOW)
    await plugin.initialize(
        HttpConfig.model_validate(
            {
                "baseUrl": "https://api.github.com",
                "auth": {
                    "type": "app",
                    "appId": "12345",
                    "installationId": 99,
                    "privateKeyPath": str(key_file),
                },
            }
        )
    )
    await plugin.start()
    try:
        with pytest.raises(Unauthorized, match="GitHub App authentication failed") as info:
            await plugin.request("GET", "/installation/repositories")
        assert "PRIVATE KEY" not in str(info.value)
    finally:
        await plugin.dispose()

    broken = Probe("gh-app")
    await broken.initialize(
        HttpConfig.model_validate(
            {
                "baseUrl": "https://api.github.com",
                "auth": {
                    "type": "app",
                    "appId": "1",
                    "installationId": 2,
                    "privateKey": "-----BEGIN PRIVATE KEY-----\nnope\n",
                },
            }
        )
    )
    with pytest.raises(ConfigError, match="not a valid PEM RSA key") as cfg_info:
        await broken.start()
    assert "nope" not in str(cfg_info.value)
    missing = Probe("gh-app")
    await missing.initialize(
        HttpConfig.model_validate(
            {
                "baseUrl": "https://api.github.com",
                "auth": {
                    "type": "app",
                    "appId": "1",
                    "installationId": 2,
                    "privateKeyPath": str(tmp_path / "none.pem"),
                },
            }
        )
    )
    with pytest.raises(ConfigError, match="cannot be read"):
        await missing.start()
