"""GitHub REST payloads → MosAIc's provider-neutral git models.

Pure functions of (plugin id, payload): no I/O, each tested against payloads shaped as GitHub's
OpenAPI description says (``tests/providers/github/testdata``) and golden files. Schema names in the
docstrings are those of ``components/schemas`` in GitHub's description. Every object keeps the
payload as ``raw``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, unquote

from mosaic.catalog.git import (
    Branch,
    Commit,
    CommitStatus,
    Comparison,
    FileChange,
    FileCommit,
    FileContent,
    MergeResult,
    MergeStrategy,
    PullRequest,
    Repository,
    Review,
    StatusState,
)

Payload = dict[str, Any]

_REVIEW_STATES: dict[str, Literal["approved", "changes_requested", "commented", "pending", "dismissed"]] = {
    "APPROVED": "approved", "CHANGES_REQUESTED": "changes_requested", "COMMENTED": "commented",
    "PENDING": "pending", "DISMISSED": "dismissed",
}
_STATUS_STATES: dict[str, StatusState] = {
    "pending": "pending", "success": "success", "failure": "failure", "error": "error",
}
# diff-entry.status; "unchanged" (a rename or mode change without edits) reads as "changed".
_FILE_STATUSES: dict[str, Literal["added", "modified", "removed", "renamed", "copied", "changed"]] = {
    "added": "added", "modified": "modified", "removed": "removed", "renamed": "renamed",
    "copied": "copied", "changed": "changed", "unchanged": "changed",
}


def dt(value: Any) -> datetime | None:
    """GitHub timestamps are ISO 8601 in UTC with a ``Z`` suffix."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _login(user: Any) -> str | None:
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) and login else None


def web_url(web_base: str, *parts: str) -> str:
    """A web URL under the instance root, each part escaped (branch names may contain '/')."""
    return "/".join([web_base.rstrip("/"), *(quote(p, safe="/") for p in parts)])


def repository(provider: str, p: Payload) -> Repository:
    """A ``full-repository``, ``repository`` or ``minimal-repository``."""
    full_name = _str(p.get("full_name"))
    owner = _login(p.get("owner")) or full_name.partition("/")[0]
    name = _str(p.get("name")) or full_name.partition("/")[2]
    return Repository(
        provider=provider, id=str(p.get("id", full_name)), url=p.get("html_url") or None,
        owner=owner, name=name, full_name=full_name or f"{owner}/{name}",
        description=_str(p.get("description")), private=bool(p.get("private")),
        default_branch=_str(p.get("default_branch")) or "main", clone_url=p.get("clone_url") or None,
        archived=bool(p.get("archived")), created_at=dt(p.get("created_at")),
        updated_at=dt(p.get("updated_at")), raw=p,
    )


def branch(provider: str, repo: str, web_base: str, p: Payload) -> Branch:
    """A ``short-branch`` (listing) or ``branch-with-protection`` (get)."""
    name = _str(p.get("name"))
    commit = p.get("commit") or {}
    links = p.get("_links") or {}
    url = links.get("html") if isinstance(links, dict) else None
    return Branch(provider=provider, id=f"{repo}:{name}", url=url or web_url(web_base, repo, "tree", name),
                  name=name, sha=_str(commit.get("sha")), protected=bool(p.get("protected")), raw=p)


def branch_from_ref(provider: str, repo: str, web_base: str, name: str, p: Payload) -> Branch:
    """A ``git-ref`` (what creating a branch returns)."""
    target = p.get("object") or {}
    return Branch(provider=provider, id=f"{repo}:{name}", url=web_url(web_base, repo, "tree", name),
                  name=name, sha=_str(target.get("sha")), protected=False, raw=p)


def _git_commit(provider: str, sha: str, html_url: Any, message: Any, author: Any, parents: Any,
                raw: Payload) -> Commit:
    who = author if isinstance(author, dict) else {}
    return Commit(provider=provider, id=sha, url=html_url or None, sha=sha,
                  message=_str(message).rstrip("\n"), author_name=who.get("name") or None,
                  author_email=who.get("email") or None, authored_at=dt(who.get("date")),
                  parents=[_str(x.get("sha")) for x in parents or [] if isinstance(x, dict)], raw=raw)


def commit(provider: str, p: Payload) -> Commit:
    """A ``commit`` (list/get commits, compare, merges)."""
    inner = p.get("commit") or {}
    return _git_commit(provider, _str(p.get("sha")), p.get("html_url"), inner.get("message"),
                       inner.get("author"), p.get("parents"), p)


def file_content(provider: str, ref: str | None, p: Payload, data: bytes | None = None) -> FileContent:
    """A ``content-file``: text when it decodes as UTF-8, else base64. ``data`` replaces the
    payload's content when it was fetched separately (files over 1 MB come without content)."""
    if data is None:
        raw_content = _str(p.get("content"))
        try:
            data = (base64.b64decode(raw_content, validate=False) if p.get("encoding") == "base64"
                    else raw_content.encode())
        except (binascii.Error, ValueError):
            data = b""
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(data).decode("ascii"), "base64"
    sha = _str(p.get("sha"))
    path = _str(p.get("path"))
    return FileContent(provider=provider, id=f"{sha}:{path}", url=p.get("html_url") or None, path=path,
                       ref=ref, sha=sha, size=int(p.get("size") or len(data)),
                       encoding="utf-8" if encoding == "utf-8" else "base64", content=text, raw=p)


def file_commit(provider: str, p: Payload) -> FileCommit:
    """A ``file-commit`` (contents create/update)."""
    content = p.get("content") or {}
    made = p.get("commit") or {}
    sha = _str(made.get("sha"))
    result = _git_commit(provider, sha, made.get("html_url"), made.get("message"), made.get("author"),
                         made.get("parents"), made)
    return FileCommit(provider=provider, id=sha, url=content.get("html_url") or None,
                      path=_str(content.get("path")), sha=_str(content.get("sha")), commit=result, raw=p)


def pull_request(provider: str, repo: str, p: Payload) -> PullRequest:
    """A ``pull-request`` (get/create/update) or ``pull-request-simple`` (listing, no ``merged``)."""
    # A full pull request says `merged`; a listed one only has `merged_at`.
    merged = bool(p["merged"]) if "merged" in p else p.get("merged_at") is not None
    state: Literal["open", "closed", "merged"] = "merged" if merged else (
        "closed" if p.get("state") == "closed" else "open")
    head = p.get("head") or {}
    base = p.get("base") or {}
    number = int(p.get("number") or 0)
    mergeable = p.get("mergeable")
    return PullRequest(
        provider=provider, id=f"{repo}#{number}", url=p.get("html_url") or None, number=number,
        title=_str(p.get("title")), body=_str(p.get("body")), state=state, head=_str(head.get("ref")),
        base=_str(base.get("ref")), head_sha=head.get("sha") or None, author=_login(p.get("user")),
        draft=bool(p.get("draft")), merged=merged,
        # GitHub fills merge_commit_sha for open pull requests too (its test merge): only a merged
        # pull request has a merge commit.
        merge_sha=(p.get("merge_commit_sha") or None) if merged else None,
        mergeable=mergeable if isinstance(mergeable, bool) and state == "open" else None,
        created_at=dt(p.get("created_at")), updated_at=dt(p.get("updated_at")), raw=p,
    )


def merge_result(provider: str, url: str | None, strategy: MergeStrategy, p: Payload) -> MergeResult:
    """A ``pull-request-merge-result``."""
    sha = p.get("sha") or None
    return MergeResult(provider=provider, id=sha or "", url=url, merged=bool(p.get("merged")), sha=sha,
                       strategy=strategy, message=_str(p.get("message")), raw=p)


def review(provider: str, pull_number: int, p: Payload) -> Review:
    """A ``pull-request-review``."""
    return Review(provider=provider, id=str(p.get("id", "")), url=p.get("html_url") or None,
                  pull_number=pull_number, state=_REVIEW_STATES.get(_str(p.get("state")), "commented"),
                  body=_str(p.get("body")), author=_login(p.get("user")),
                  commit_sha=p.get("commit_id") or None, submitted_at=dt(p.get("submitted_at")), raw=p)


def commit_status(provider: str, ref: str, p: Payload) -> CommitStatus:
    """A ``status``. It has no sha field, but its API ``url`` ends in ``/statuses/{sha}``."""
    url = _str(p.get("url"))
    sha = unquote(url.rsplit("/statuses/", 1)[1]) if "/statuses/" in url else ref
    return CommitStatus(provider=provider, id=str(p.get("id", "")), url=p.get("target_url") or None, sha=sha,
                        state=_STATUS_STATES.get(_str(p.get("state")), "error"),
                        context=_str(p.get("context")) or "default", description=_str(p.get("description")),
                        target_url=p.get("target_url") or None, created_at=dt(p.get("created_at")), raw=p)


def changed_file(provider: str, p: Payload) -> FileChange:
    """A ``diff-entry`` (pull request files, compare, commit files)."""
    path = _str(p.get("filename"))
    return FileChange(provider=provider, id=path, url=p.get("blob_url") or None, path=path,
                      status=_FILE_STATUSES.get(_str(p.get("status")), "changed"),
                      previous_path=p.get("previous_filename") or None,
                      additions=int(p.get("additions") or 0), deletions=int(p.get("deletions") or 0),
                      patch=p.get("patch") or None, raw=p)


def comparison(provider: str, base: str, head: str, p: Payload) -> Comparison:
    """A ``commit-comparison``."""
    merge_base = p.get("merge_base_commit") or {}
    return Comparison(
        provider=provider, id=f"{base}...{head}", url=p.get("html_url") or None, base=base, head=head,
        merge_base=merge_base.get("sha") or None, ahead_by=int(p.get("ahead_by") or 0),
        behind_by=int(p.get("behind_by") or 0),
        commits=[commit(provider, c) for c in p.get("commits") or [] if isinstance(c, dict)],
        files=[changed_file(provider, f) for f in p.get("files") or [] if isinstance(f, dict)], raw=p,
    )
