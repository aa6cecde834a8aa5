"""GitHub's API description for the tests, loaded once per session, and a transport routing by host.

``github.json`` is 13 MB: :func:`github_spec` reuses the process-wide parse of ``load_spec`` and
caches its own validators, so the cost is paid once per test session.

Unlike the go-swagger descriptions the shared validator was first written for, GitHub's OpenAPI 3
document declares every nullable field (``nullable: true``) and *requires* many of them (``language``,
``conclusion``, ``auto_merge``...). The shared validator drops ``null`` values from responses before
checking them, which would turn each such ``null`` into a missing required property; GitHub's
responses are therefore checked with their nulls kept (:class:`GitHubSpec`). (The shared validator
would do better with a per-spec option for this; it is not this directory's file to change.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import cache
from typing import Any

import httpx
import orjson
from tests.support.spec_validation import ApiSpec, Match, SpecViolation, load_spec

_CONTENTS = "/repos/{owner}/{repo}/contents/{path}"


def _only_null_enums(report: str) -> bool:
    """True when every schema error is a ``null`` refused by an enum of a ``nullable`` field.

    GitHub marks such fields ``nullable: true`` with an ``enum`` that does not list ``null`` (a job's
    ``conclusion`` while it runs); OpenAPI 3.0.3 asks for ``null`` in the enum, so openapi-core refuses
    what GitHub actually sends. Only that is forgiven.
    """
    problems = [line for line in report.splitlines() if line.strip().startswith("at ")]
    return bool(problems) and all(": None is not one of [" in line for line in problems)


class GitHubSpec(ApiSpec):
    def check_response(
        self, request: httpx.Request, response: httpx.Response, match: Match, *, api_root: str | None = None
    ) -> None:
        if match.template.template == _CONTENTS and response.status_code == 200:
            body = orjson.loads(response.content) if response.content else None
            if isinstance(body, list):
                # The answer is a oneOf discriminated by `type`, one alternative being the array of a
                # directory listing, which no discriminator can select: checked by hand instead.
                self._check_directory(body, request)
                return
        try:
            super().check_response(request, response, match, api_root=api_root)
        except SpecViolation as exc:
            if _only_null_enums(str(exc)):
                return
            # Some error answers are described as oneOf(basic-error, repository-rule-violation-error):
            # two all-optional object schemas, so every error body matches both and no body can
            # satisfy the oneOf. Only that impossibility is forgiven.
            if (
                response.status_code >= 400
                and str(exc).count("is valid under each of")
                and "repository-rule-violation-error" in str(exc)
            ):
                return
            raise

    def _check_directory(self, body: list[Any], request: httpx.Request) -> None:
        schema = self.document["components"]["schemas"]["content-directory"]["items"]
        kinds = schema["properties"]["type"]["enum"]
        for item in body:
            missing = [k for k in schema["required"] if not isinstance(item, dict) or k not in item]
            if missing or item.get("type") not in kinds:
                raise SpecViolation(
                    f"GET {request.url.path} → 200: directory entry {item!r} lacks "
                    f"{', '.join(missing) or 'a valid type'}"
                )


@cache
def github_spec() -> GitHubSpec:
    base = load_spec("github")
    return GitHubSpec(**{f.name: getattr(base, f.name) for f in dataclasses.fields(ApiSpec)})


class HostRouter(httpx.AsyncBaseTransport):
    """Hands each request to the transport of its host (and path prefix): the API to the
    spec-validated fake, a download location to its own fake. Any other host fails the test.

    ``routes`` maps ``"host"`` or ``"host/path-prefix"`` to a transport; the longest match wins.
    """

    def __init__(self, routes: Mapping[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = sorted(routes.items(), key=lambda kv: -len(kv[0]))
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        where = f"{request.url.host}{request.url.path}"
        for key, transport in self.routes:
            if where == key or where.startswith(key if "/" in key else key + "/"):
                return await transport.handle_async_request(request)
        raise AssertionError(f"request to an unexpected location: {request.url.host}{request.url.path}")

    async def aclose(self) -> None:
        for _, transport in self.routes:
            await transport.aclose()


def as_transport(handler: Any) -> httpx.AsyncBaseTransport:
    return handler if isinstance(handler, httpx.AsyncBaseTransport) else httpx.MockTransport(handler)
