"""Every erratum of ``spec.py`` is still needed: the original ``bitbucket.yaml`` rejects (or cannot
even check) what the erratum allows. When a better description fixes one, its test fails here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.providers.bitbucket.spec import bitbucket_spec
from tests.support.spec_validation import ApiSpec, SpecViolation, load_spec

from mosaic.providers.bitbucket import forms

API = "https://api.bitbucket.test/2.0"
REPO = API + "/repositories/acme/api"
AUTH = {"Authorization": "Bearer t"}


def _request_ok(spec: ApiSpec, request: httpx.Request) -> bool:
    try:
        spec.check_request(request)
    except SpecViolation:
        return False
    return True


def _response_ok(spec: ApiSpec, request: httpx.Request, response: httpx.Response) -> bool:
    try:
        spec.check_response(request, response, spec.check_request(request))
    except (SpecViolation, TypeError, AttributeError):
        # The original cannot even be checked in places: integer status keys (TypeError in the
        # validator) and schemas with keywords nested in `properties` (AttributeError in jsonschema).
        return False
    return True


def _upload() -> httpx.Request:
    body, ctype = forms.encode([forms.Field("/a.txt", b"a", "a.txt"), forms.Field("message", b"m"),
                                forms.Field("branch", b"main")])
    return httpx.Request("POST", REPO + "/src", content=body, headers={**AUTH, "Content-Type": ctype})


REQUESTS = {
    "pagination parameters": httpx.Request("GET", REPO + "/refs/branches?pagelen=3&page=2", headers=AUTH),
    "filtering with q": httpx.Request("GET", REPO + "/pullrequests?q=state%3D%22MERGED%22", headers=AUTH),
    "repositories by role": httpx.Request("GET", API + "/repositories?role=member", headers=AUTH),
    "commits exclude": httpx.Request("GET", REPO + "/commits/main?exclude=dev&path=a.txt", headers=AUTH),
    "create branch body": httpx.Request("POST", REPO + "/refs/branches", headers=AUTH,
                                        json={"name": "b", "target": {"hash": "abc1234"}}),
    "upload form": _upload(),
    "request changes": httpx.Request("POST", REPO + "/pullrequests/1/request-changes", headers=AUTH),
}


def _json(status: int, body: Any, request: httpx.Request) -> httpx.Response:
    return httpx.Response(status, json=body, request=request)


_COMMENTS = httpx.Request("GET", REPO + "/pullrequests/1/comments", headers=AUTH)
_RAW = httpx.Request("GET", REPO + "/src/abc1234/a.txt", headers=AUTH)
_MERGE = httpx.Request("POST", REPO + "/pullrequests/1/merge", headers=AUTH,
                       json={"type": "pullrequest_merge_parameters", "merge_strategy": "squash"})
_COMMITS = httpx.Request("GET", REPO + "/commits/main", headers=AUTH)
RESPONSES = {
    "comment schema and string status keys": (_COMMENTS, _json(200, {"pagelen": 10, "values": [
        {"type": "pullrequest_comment", "id": 1, "content": {"raw": "hi", "markup": "markdown", "html": "<p>hi</p>"}}]},
        _COMMENTS)),
    "raw file bytes": (_RAW, httpx.Response(200, content=b"a", headers={"content-type": "text/plain"},
                                            request=_RAW)),
    "asynchronous merge": (_MERGE, _json(202, {"task_status": "PENDING"}, _MERGE)),
    "commit listing": (_COMMITS, _json(200, {"pagelen": 30, "values": [{"type": "commit", "hash": "abc1234"}]},
                                       _COMMITS)),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_errata_are_needed(name: str) -> None:
    request = REQUESTS[name]
    assert not _request_ok(load_spec("bitbucket"), request), f"bitbucket.yaml now allows {name}"
    assert _request_ok(bitbucket_spec(), request)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_errata_are_needed(name: str) -> None:
    request, response = RESPONSES[name]
    assert not _response_ok(load_spec("bitbucket"), request, response), f"bitbucket.yaml now allows {name}"
    assert _response_ok(bitbucket_spec(), request, response)


def test_errata_do_not_loosen_anything_else() -> None:
    spec = bitbucket_spec()
    assert not _request_ok(spec, httpx.Request("GET", REPO + "/refs/branches?pagelen=500", headers=AUTH))
    assert not _request_ok(spec, httpx.Request("GET", REPO + "/refs/branches?per_page=3", headers=AUTH))
    assert not _request_ok(spec, httpx.Request("POST", REPO + "/refs/branches", headers=AUTH, json={"name": "b"}))
    assert not _request_ok(spec, httpx.Request("POST", REPO + "/src?branch=main", headers=AUTH,
                                               json={"a.txt": "a"}))
    assert not _request_ok(spec, httpx.Request("POST", REPO + "/pullrequests", headers=AUTH, json={"title": "x"}))


def test_the_patched_description_is_built_once_and_leaves_the_original_alone() -> None:
    assert bitbucket_spec() is bitbucket_spec()
    original = load_spec("bitbucket").document["paths"]
    assert "/repositories/{workspace}/{repo_slug}/pullrequests/{pull_request_id}/request-changes" not in original
    assert 200 in original["/user"]["get"]["responses"]
