"""Every erratum of ``spec.py`` is still needed: GitLab's own description rejects what the erratum
allows. When a newer ``gitlab.yaml`` fixes one, its test here fails and the erratum can go."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.providers.gitlab.spec import gitlab_spec
from tests.support.spec_validation import ApiSpec, SpecViolation, load_spec

API = "https://gitlab.test/api/v4"
PROJECT = API + "/projects/acme%2Fsvc"
USER = {"id": 1, "username": "alice", "name": "Alice", "state": "active", "locked": False,
        "avatar_url": "https://gitlab.test/a.png", "web_url": "https://gitlab.test/alice"}


def _request_ok(spec: ApiSpec, request: httpx.Request) -> bool:
    try:
        spec.check_request(request)
    except SpecViolation:
        return False
    return True


def _response_ok(spec: ApiSpec, request: httpx.Request, body: Any) -> bool:
    try:
        match = spec.check_request(request)
        spec.check_response(request, httpx.Response(200, json=body, request=request), match)
    except SpecViolation:
        return False
    return True


REQUESTS = {
    "current user": httpx.Request("GET", API + "/user"),
    "merge request notes": httpx.Request("GET", PROJECT + "/merge_requests/1/notes?sort=asc&per_page=20"),
    "create a note": httpx.Request("POST", PROJECT + "/merge_requests/1/notes", json={"body": "LGTM"}),
    "branch by name": httpx.Request("GET", PROJECT + "/repository/branches/main"),
    "commit with actions": httpx.Request("POST", PROJECT + "/repository/commits", json={
        "branch": "main", "commit_message": "m",
        "actions": [{"action": "update", "file_path": "a.txt", "content": "YQ==", "encoding": "base64",
                     "last_commit_id": "abc"}]}),
}

RESPONSES = {
    "diffs are a list": (httpx.Request("GET", PROJECT + "/merge_requests/1/diffs"),
                         [{"old_path": "a", "new_path": "a", "diff": "@@ -1 +1 @@\n-a\n+b\n", "new_file": False}]),
    "reviewers are a list": (httpx.Request("GET", PROJECT + "/merge_requests/1/reviewers"),
                             [{"user": USER, "state": "requested_changes", "created_at": "2024-05-01T10:00:00Z"}]),
    "approved_by is a list": (httpx.Request("GET", API + "/projects/7/merge_requests/1/approvals"),
                              {"approved": True, "approved_by": [{"user": USER, "approved_at": "2024-05-01T10:00:00Z"}]}),
    "merge request types": (httpx.Request("GET", PROJECT + "/merge_requests/1"),
                            {"id": 9, "iid": 1, "draft": False, "labels": [], "assignees": [], "reviewers": [],
                             "user_notes_count": 2, "has_conflicts": False}),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_errata_are_needed(name: str) -> None:
    request = REQUESTS[name]
    assert not _request_ok(load_spec("gitlab"), request), f"gitlab.yaml now allows {name}: drop the erratum"
    assert _request_ok(gitlab_spec(), request)


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_response_errata_are_needed(name: str) -> None:
    request, body = RESPONSES[name]
    assert not _response_ok(load_spec("gitlab"), request, body), f"gitlab.yaml now allows {name}"
    assert _response_ok(gitlab_spec(), request, body)


def test_errata_do_not_loosen_anything_else() -> None:
    spec = gitlab_spec()
    assert not _request_ok(spec, httpx.Request("POST", PROJECT + "/repository/commits",
                                               json={"branch": "main", "commit_message": "m", "actions": []}))
    assert not _request_ok(spec, httpx.Request("POST", PROJECT + "/merge_requests/1/notes", json={"note": "x"}))
    assert not _request_ok(spec, httpx.Request("GET", PROJECT + "/merge_requests/x/notes"))
    assert not _response_ok(spec, httpx.Request("GET", PROJECT + "/merge_requests/1"), {"draft": "no"})


def test_the_patched_description_is_built_once_and_leaves_the_original_alone() -> None:
    assert gitlab_spec() is gitlab_spec()
    assert load_spec("gitlab") is load_spec("gitlab")
    assert "/api/v4/user" not in load_spec("gitlab").document["paths"]
