"""GitLab REST v4 payloads → MosAIc's provider-neutral git models.

Pure functions of (plugin id, payload): no I/O, so each is tested against the vendor-shaped
payloads in ``tests/providers/gitlab/testdata`` and golden files. Every object keeps the payload as
``raw``. Field names are those of GitLab's entities (``API_Entities_*`` in ``gitlab.yaml`` and the
REST reference at docs.gitlab.com/api).

Where GitLab's words differ from ours: a project is a repository (its ``path_with_namespace`` is
the ``full_name``, the namespace's ``full_path`` — possibly ``group/subgroup`` — the owner); a merge
request is a pull request numbered by its ``iid``; a note is a review comment and an approval an
approving review.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from mosaic.catalog.git import (
    Branch,
    Commit,
    CommitStatus,
    Comparison,
    FileChange,
    FileContent,
    PullRequest,
    Repository,
    Review,
    StatusState,
)

Payload = dict[str, Any]

# Commit-status states (Ci::HasStatus): ours has no running/canceled/skipped. Running and the
# not-yet-started states are pending; canceled is an error (it neither passed nor failed); skipped
# satisfies a required check the way a success does.
_STATUS_STATES: dict[str, StatusState] = {
    "created": "pending", "waiting_for_resource": "pending", "preparing": "pending", "pending": "pending",
    "running": "pending", "scheduled": "pending", "manual": "pending", "success": "success",
    "failed": "failure", "canceled": "error", "skipped": "success",
}
# detailed_merge_status values that mean "cannot say yet" rather than yes/no.
_MERGE_STATUS_UNKNOWN = frozenset({"checking", "unchecked", "preparing", "approvals_syncing"})


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _username(user: Any) -> str | None:
    return user.get("username") or None if isinstance(user, dict) else None


def blob_url(web_base: str, repo: str, ref: str, path: str) -> str:
    """Web URL of a file at a ref (GitLab's ``/-/blob/`` route)."""
    return f"{web_base.rstrip('/')}/{repo}/-/blob/{quote(ref, safe='')}/{quote(path.strip('/'), safe='/')}"


def repository(provider: str, p: Payload) -> Repository:
    namespace = p.get("namespace") or {}
    full_name = _str(p.get("path_with_namespace"))
    owner = _str(namespace.get("full_path")) or full_name.rpartition("/")[0]
    return Repository(
        provider=provider, id=str(p.get("id", full_name)), url=p.get("web_url") or None, owner=owner,
        name=_str(p.get("path")) or full_name.rpartition("/")[2], full_name=full_name,
        description=_str(p.get("description")),
        # "internal" projects are visible to every signed-in user of the instance, not to the world.
        private=p.get("visibility", "private") != "public",
        default_branch=_str(p.get("default_branch")) or "main", clone_url=p.get("http_url_to_repo") or None,
        archived=bool(p.get("archived")), created_at=_dt(p.get("created_at")),
        updated_at=_dt(p.get("updated_at") or p.get("last_activity_at")), raw=p,
    )


def commit(provider: str, p: Payload) -> Commit:
    """An ``API_Entities_Commit`` or ``CommitDetail``."""
    sha = _str(p.get("id"))
    return Commit(provider=provider, id=sha, url=p.get("web_url") or None, sha=sha,
                  message=_str(p.get("message") or p.get("title")).rstrip("\n"),
                  author_name=p.get("author_name") or None, author_email=p.get("author_email") or None,
                  authored_at=_dt(p.get("authored_date") or p.get("created_at")),
                  parents=[x for x in p.get("parent_ids") or [] if isinstance(x, str)], raw=p)


def branch(provider: str, repo: str, p: Payload) -> Branch:
    name = _str(p.get("name"))
    head = p.get("commit") or {}
    return Branch(provider=provider, id=f"{repo}:{name}", url=p.get("web_url") or None, name=name,
                  sha=_str(head.get("id")), protected=bool(p.get("protected")), raw=p)


def file_content(provider: str, repo: str, web_base: str, ref: str | None, p: Payload) -> FileContent:
    """A repository file (``GET /repository/files/:file_path``); text when it is UTF-8, else base64."""
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
    sha = _str(p.get("blob_id"))
    path = _str(p.get("file_path"))
    at = ref or _str(p.get("ref")) or _str(p.get("commit_id"))
    return FileContent(provider=provider, id=f"{sha}:{path}", url=blob_url(web_base, repo, at, path),
                       path=path, ref=ref, sha=sha,
                       size=int(p.get("size") or len(data)),
                       encoding="utf-8" if encoding == "utf-8" else "base64", content=text, raw=p)


def _diff_counts(diff: str) -> tuple[int, int]:
    adds = dels = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++ "):
            adds += 1
        elif line.startswith("-") and not line.startswith("--- "):
            dels += 1
    return adds, dels


def changed_file(provider: str, p: Payload) -> FileChange:
    """An ``API_Entities_Diff`` (compare, merge request diffs): counts are read from the patch."""
    new_path, old_path = _str(p.get("new_path")), _str(p.get("old_path"))
    status: Literal["added", "modified", "removed", "renamed"] = (
        "added" if p.get("new_file") else "removed" if p.get("deleted_file")
        else "renamed" if p.get("renamed_file") else "modified")
    patch = p.get("diff") if isinstance(p.get("diff"), str) else None
    adds, dels = _diff_counts(patch or "")
    path = old_path if status == "removed" and not new_path else new_path or old_path
    return FileChange(provider=provider, id=path, path=path, status=status,
                      previous_path=old_path if status == "renamed" else None,
                      additions=adds, deletions=dels, patch=patch or None, raw=p)


def comparison(provider: str, base: str, head: str, p: Payload, behind_by: int) -> Comparison:
    """An ``API_Entities_Compare`` of ``from=base&to=head`` (merge-base comparison)."""
    commits = [c for c in p.get("commits") or [] if isinstance(c, dict)]
    diffs = [d for d in p.get("diffs") or [] if isinstance(d, dict)]
    return Comparison(provider=provider, id=f"{base}...{head}", url=p.get("web_url") or None, base=base,
                      head=head, ahead_by=len(commits), behind_by=behind_by,
                      commits=[commit(provider, c) for c in commits],
                      files=[changed_file(provider, d) for d in diffs], raw=p)


def pull_request(provider: str, repo: str, p: Payload) -> PullRequest:
    """An ``API_Entities_MergeRequest``: ``iid`` is the number, ``locked`` is still open."""
    raw_state = _str(p.get("state"))
    state: Literal["open", "closed", "merged"] = (
        "merged" if raw_state == "merged" else "closed" if raw_state == "closed" else "open")
    number = int(p.get("iid") or 0)
    detailed = _str(p.get("detailed_merge_status"))
    mergeable: bool | None = None
    if state == "open" and detailed and detailed not in _MERGE_STATUS_UNKNOWN:
        mergeable = detailed == "mergeable"
    elif state == "open" and p.get("merge_status") in ("can_be_merged", "cannot_be_merged"):
        mergeable = p.get("merge_status") == "can_be_merged"
    merged = state == "merged"
    return PullRequest(
        provider=provider, id=f"{repo}!{number}", url=p.get("web_url") or None, number=number,
        title=_str(p.get("title")), body=_str(p.get("description")), state=state,
        head=_str(p.get("source_branch")), base=_str(p.get("target_branch")), head_sha=p.get("sha") or None,
        author=_username(p.get("author")), draft=bool(p.get("draft") or p.get("work_in_progress")),
        merged=merged,
        merge_sha=(p.get("merge_commit_sha") or p.get("squash_commit_sha") or p.get("sha") or None)
        if merged else None,
        mergeable=mergeable, created_at=_dt(p.get("created_at")), updated_at=_dt(p.get("updated_at")), raw=p,
    )


def note_review(provider: str, number: int, mr_url: str | None, p: Payload,
                state: Literal["commented", "changes_requested"] = "commented") -> Review:
    """A merge request note, read as a commenting review."""
    note_id = str(p.get("id", ""))
    return Review(provider=provider, id=note_id, url=f"{mr_url}#note_{note_id}" if mr_url else None,
                  pull_number=number, state=state, body=_str(p.get("body")),
                  author=_username(p.get("author")),
                  submitted_at=_dt(p.get("created_at")), raw=p)


def approval_review(provider: str, number: int, mr_url: str | None, head_sha: str | None,
                    p: Payload, body: str = "") -> Review:
    """One entry of an approvals' ``approved_by`` (``{"user": ..., "approved_at": ...}``)."""
    user = p.get("user") or {}
    return Review(provider=provider, id=f"approval-{user.get('id', user.get('username', ''))}", url=mr_url,
                  pull_number=number, state="approved", body=body, author=_username(user),
                  commit_sha=head_sha, submitted_at=_dt(p.get("approved_at")), raw=p)


def reviewer_review(provider: str, number: int, mr_url: str | None, p: Payload) -> Review:
    """An ``API_Entities_MergeRequestReviewer`` in the ``requested_changes`` state."""
    user = p.get("user") or {}
    return Review(provider=provider, id=f"changes_requested-{user.get('id', user.get('username', ''))}",
                  url=mr_url, pull_number=number, state="changes_requested", author=_username(user), raw=p)


def commit_status(provider: str, sha: str, p: Payload) -> CommitStatus:
    """An ``API_Entities_CommitStatus``: ``name`` is the context (``context`` is its alias)."""
    return CommitStatus(provider=provider, id=str(p.get("id", "")), url=p.get("target_url") or None,
                        sha=_str(p.get("sha")) or sha,
                        state=_STATUS_STATES.get(_str(p.get("status")), "error"),
                        context=_str(p.get("name")) or "default", description=_str(p.get("description")),
                        target_url=p.get("target_url") or None, created_at=_dt(p.get("created_at")), raw=p)
