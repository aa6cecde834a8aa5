"""Gitea/Forgejo API payloads → MosAIc's provider-neutral git models.

Pure functions of (plugin id, payload): no I/O, so each is tested against the vendor-shaped
payloads in ``tests/providers/gitea/testdata`` and golden files. Every object keeps the payload
as ``raw``. Field names are those of the Swagger definitions in Gitea's ``v1_json.tmpl``.
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
    PullRequest,
    Repository,
    Review,
    StatusState,
)

Payload = dict[str, Any]

# ReviewStateType → our review state. REQUEST_REVIEW is a pending request for a review.
_REVIEW_STATES: dict[str, Literal["approved", "changes_requested", "commented", "pending", "dismissed"]] = {
    "APPROVED": "approved", "REQUEST_CHANGES": "changes_requested", "COMMENT": "commented",
    "PENDING": "pending", "REQUEST_REVIEW": "pending",
}
# Gitea has two states we don't: "warning" fails a required check like a failure does, and
# "skipped" satisfies one like a success.
_STATUS_STATES: dict[str, StatusState] = {
    "pending": "pending", "success": "success", "error": "error", "failure": "failure",
    "warning": "failure", "skipped": "success",
}
_FILE_STATUSES: dict[str, Literal["added", "modified", "removed", "renamed", "copied", "changed"]] = {
    "added": "added", "modified": "modified", "deleted": "removed", "removed": "removed",
    "renamed": "renamed", "copied": "copied", "changed": "changed",
}


def _dt(value: Any) -> datetime | None:
    """Gitea timestamps are RFC 3339; Go's zero time means "never"."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _login(user: Any) -> str | None:
    return user.get("login") or user.get("username") if isinstance(user, dict) else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def web_url(web_base: str, *parts: str) -> str:
    """A web URL under the instance root, each part escaped (branch names may contain '/')."""
    return "/".join([web_base.rstrip("/"), *(quote(p, safe="/") for p in parts)])


def repository(provider: str, p: Payload) -> Repository:
    owner = _login(p.get("owner")) or _str(p.get("full_name")).split("/", 1)[0]
    return Repository(
        provider=provider, id=str(p.get("id", p.get("full_name", ""))), url=p.get("html_url") or None,
        owner=owner, name=_str(p.get("name")),
        full_name=_str(p.get("full_name")) or f"{owner}/{p.get('name')}",
        description=_str(p.get("description")), private=bool(p.get("private")),
        default_branch=_str(p.get("default_branch")) or "main", clone_url=p.get("clone_url") or None,
        archived=bool(p.get("archived")), created_at=_dt(p.get("created_at")),
        updated_at=_dt(p.get("updated_at")), raw=p,
    )


def branch(provider: str, repo: str, web_base: str, p: Payload) -> Branch:
    name = _str(p.get("name"))
    commit = p.get("commit") or {}
    return Branch(provider=provider, id=f"{repo}:{name}", url=web_url(web_base, repo, "src/branch", name),
                  name=name, sha=_str(commit.get("id")), protected=bool(p.get("protected")), raw=p)


def commit(provider: str, p: Payload) -> Commit:
    """A ``Commit`` (list/get commits, compare)."""
    inner = p.get("commit") or {}
    author = inner.get("author") or {}
    sha = _str(p.get("sha"))
    return Commit(provider=provider, id=sha, url=p.get("html_url") or None, sha=sha,
                  message=_str(inner.get("message")).rstrip("\n"), author_name=author.get("name") or None,
                  author_email=author.get("email") or None, authored_at=_dt(author.get("date")),
                  parents=[_str(x.get("sha")) for x in p.get("parents") or [] if isinstance(x, dict)], raw=p)


def file_commit_response(provider: str, p: Payload) -> Commit:
    """A ``FileCommitResponse`` (the commit a contents write made)."""
    author = p.get("author") or {}
    sha = _str(p.get("sha"))
    return Commit(provider=provider, id=sha, url=p.get("html_url") or None, sha=sha,
                  message=_str(p.get("message")).rstrip("\n"), author_name=author.get("name") or None,
                  author_email=author.get("email") or None, authored_at=_dt(author.get("date")),
                  parents=[_str(x.get("sha")) for x in p.get("parents") or [] if isinstance(x, dict)], raw=p)


def file_content(provider: str, ref: str | None, p: Payload) -> FileContent:
    """A ``ContentsResponse`` of type file; text when it decodes as UTF-8, else base64."""
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
    """A ``FileResponse`` (contents create/update)."""
    content = p.get("content") or {}
    made = file_commit_response(provider, p.get("commit") or {})
    return FileCommit(provider=provider, id=made.sha, url=content.get("html_url") or None,
                      path=_str(content.get("path")), sha=_str(content.get("sha")), commit=made, raw=p)


def pull_request(provider: str, repo: str, p: Payload) -> PullRequest:
    merged = bool(p.get("merged"))
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
        draft=bool(p.get("draft")), merged=merged, merge_sha=p.get("merge_commit_sha") or None,
        mergeable=mergeable if isinstance(mergeable, bool) and state == "open" else None,
        created_at=_dt(p.get("created_at")), updated_at=_dt(p.get("updated_at")), raw=p,
    )


def review(provider: str, pull_number: int, p: Payload) -> Review:
    state = "dismissed" if p.get("dismissed") else _REVIEW_STATES.get(_str(p.get("state")), "commented")
    return Review(provider=provider, id=str(p.get("id", "")), url=p.get("html_url") or None,
                  pull_number=pull_number, state=state, body=_str(p.get("body")),
                  author=_login(p.get("user")), commit_sha=p.get("commit_id") or None,
                  submitted_at=_dt(p.get("submitted_at")), raw=p)


def commit_status(provider: str, ref: str, p: Payload) -> CommitStatus:
    """A ``CommitStatus``. It has no sha field, but its API ``url`` ends in ``/statuses/{sha}``."""
    url = _str(p.get("url"))
    sha = unquote(url.rsplit("/statuses/", 1)[1]) if "/statuses/" in url else ref
    # A status has no web page of its own; its link is target_url.
    return CommitStatus(provider=provider, id=str(p.get("id", "")), url=None, sha=sha,
                        state=_STATUS_STATES.get(_str(p.get("status")), "error"),
                        context=_str(p.get("context")) or "default", description=_str(p.get("description")),
                        target_url=p.get("target_url") or None, created_at=_dt(p.get("created_at")), raw=p)


def changed_file(provider: str, p: Payload) -> FileChange:
    """A ``ChangedFile`` (pull request files): Gitea gives counts but no patch."""
    path = _str(p.get("filename"))
    return FileChange(provider=provider, id=path, url=p.get("html_url") or None, path=path,
                      status=_FILE_STATUSES.get(_str(p.get("status")), "changed"),
                      previous_path=p.get("previous_filename") or None,
                      additions=int(p.get("additions") or 0), deletions=int(p.get("deletions") or 0), raw=p)


def affected_file(provider: str, p: Payload) -> FileChange:
    """A ``CommitAffectedFiles`` (compare/commit files): a name and a status only."""
    path = _str(p.get("filename"))
    return FileChange(provider=provider, id=path, path=path,
                      status=_FILE_STATUSES.get(_str(p.get("status")), "changed"), raw=p)


def comparison(provider: str, repo: str, web_base: str, base: str, head: str, p: Payload,
               behind_by: int) -> Comparison:
    """A ``Compare``: Forgejo lists the changed files, Gitea's has commits only (``files`` stays empty)."""
    commits_raw = [c for c in p.get("commits") or [] if isinstance(c, dict)]
    files = p.get("files")
    files_raw: list[Any] = files if isinstance(files, list) else []
    return Comparison(
        provider=provider, id=f"{base}...{head}", url=web_url(web_base, repo, "compare", f"{base}...{head}"),
        base=base, head=head, ahead_by=int(p.get("total_commits") or len(commits_raw)), behind_by=behind_by,
        commits=[commit(provider, c) for c in commits_raw],
        files=[affected_file(provider, f) for f in files_raw if isinstance(f, dict)], raw=p,
    )
