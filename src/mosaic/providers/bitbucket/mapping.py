"""Bitbucket Cloud API 2.0 payloads → MosAIc's provider-neutral git models.

Pure functions of (plugin id, payload): no I/O, so each is tested against the vendor-shaped
payloads in ``tests/providers/bitbucket/testdata`` and golden files. Every object keeps the
payload as ``raw``. Field names are those of ``bitbucket.yaml`` and developer.atlassian.com's
Bitbucket Cloud REST reference.

Where Bitbucket's words differ from ours: a workspace is an owner; a repository's ``slug`` is its
name in ``owner/name``; a participant who approved (or requested changes) is a review; a comment
is a commenting review. People are named by ``nickname`` — Bitbucket no longer exposes usernames.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from mosaic.catalog.git import (
    Branch,
    Commit,
    CommitStatus,
    FileChange,
    PullRequest,
    Repository,
    Review,
    StatusState,
)

Payload = dict[str, Any]

_STATUS_STATES: dict[str, StatusState] = {
    "INPROGRESS": "pending", "SUCCESSFUL": "success", "FAILED": "failure", "STOPPED": "error",
}
_PR_STATES: dict[str, Literal["open", "closed", "merged"]] = {
    "OPEN": "open", "MERGED": "merged", "DECLINED": "closed", "SUPERSEDED": "closed",
}
_FILE_STATUSES: dict[str, Literal["added", "modified", "removed", "renamed", "changed"]] = {
    "added": "added", "modified": "modified", "removed": "removed", "renamed": "renamed",
}
_RAW_AUTHOR = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<email>[^>]*)>\s*$")


def git_blob_sha(data: bytes) -> str:
    """The id git gives a blob with this content (``git hash-object``). Bitbucket's API exposes no
    blob ids, so this is how a file's ``sha`` is known: computed from the bytes it serves."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _href(p: Payload, name: str) -> str | None:
    link = (p.get("links") or {}).get(name)
    return link.get("href") or None if isinstance(link, dict) else None


def person(account: Any) -> str | None:
    """How an account is named: its nickname (usernames are gone from Bitbucket's API)."""
    if not isinstance(account, dict):
        return None
    return account.get("nickname") or account.get("username") or account.get("display_name") or None


def parse_author(raw: str) -> tuple[str | None, str | None]:
    """``"Name <email>"`` (a commit's ``author.raw``) → (name, email)."""
    found = _RAW_AUTHOR.match(raw or "")
    if not found:
        return (raw.strip() or None), None
    return found.group("name") or None, found.group("email") or None


def repository(provider: str, p: Payload) -> Repository:
    full_name = _str(p.get("full_name"))
    workspace = p.get("workspace") or {}
    owner = _str(workspace.get("slug")) or full_name.partition("/")[0]
    clone = next((c.get("href") for c in (p.get("links") or {}).get("clone") or []
                  if isinstance(c, dict) and c.get("name") == "https"), None)
    mainbranch = p.get("mainbranch") or {}
    return Repository(
        provider=provider, id=_str(p.get("uuid")) or full_name, url=_href(p, "html"), owner=owner,
        name=_str(p.get("slug")) or full_name.partition("/")[2], full_name=full_name,
        description=_str(p.get("description")), private=bool(p.get("is_private")),
        default_branch=_str(mainbranch.get("name")) or "main", clone_url=clone,
        created_at=_dt(p.get("created_on")), updated_at=_dt(p.get("updated_on")), raw=p,
    )


def commit(provider: str, p: Payload) -> Commit:
    author = p.get("author") or {}
    name, email = parse_author(_str(author.get("raw")))
    sha = _str(p.get("hash"))
    return Commit(provider=provider, id=sha, url=_href(p, "html"), sha=sha,
                  message=_str(p.get("message")).rstrip("\n"), author_name=name or person(author.get("user")),
                  author_email=email, authored_at=_dt(p.get("date")),
                  parents=[_str(x.get("hash")) for x in p.get("parents") or [] if isinstance(x, dict)], raw=p)


def branch(provider: str, repo: str, p: Payload) -> Branch:
    name = _str(p.get("name"))
    target = p.get("target") or {}
    return Branch(provider=provider, id=f"{repo}:{name}", url=_href(p, "html"), name=name,
                  sha=_str(target.get("hash")), raw=p)


def _full_hash(value: Any, full: Mapping[str, str]) -> str | None:
    """A full commit hash: Bitbucket abbreviates the ones in pull requests to 12 digits; ``full``
    maps those to the full hashes when the caller looked them up, else an abbreviation is None
    (a prefix is not a sha, and the catalog's fields are compared as shas)."""
    if not isinstance(value, str) or not value:
        return None
    return full.get(value) or (value if len(value) == 40 else None)


def pull_request(provider: str, repo: str, p: Payload, full: Mapping[str, str] | None = None) -> PullRequest:
    """A ``pullrequest``; ``full`` maps abbreviated hashes to full ones (see ``_full_hash``)."""
    full = full or {}
    state = _PR_STATES.get(_str(p.get("state")), "open")
    source = p.get("source") or {}
    destination = p.get("destination") or {}
    number = int(p.get("id") or 0)
    merge_commit = p.get("merge_commit") or {}
    summary = p.get("summary") or {}
    return PullRequest(
        provider=provider, id=f"{repo}#{number}", url=_href(p, "html"), number=number,
        title=_str(p.get("title")), body=_str(p.get("description")) or _str(summary.get("raw")), state=state,
        head=_str((source.get("branch") or {}).get("name")),
        base=_str((destination.get("branch") or {}).get("name")),
        head_sha=_full_hash((source.get("commit") or {}).get("hash"), full), author=person(p.get("author")),
        draft=bool(p.get("draft")), merged=state == "merged",
        merge_sha=_full_hash(merge_commit.get("hash"), full),
        created_at=_dt(p.get("created_on")), updated_at=_dt(p.get("updated_on")), raw=p,
    )


def abbreviated_hashes(p: Payload) -> set[str]:
    """The commit hashes a pull request payload abbreviates (head and merge commit)."""
    found = {((p.get("source") or {}).get("commit") or {}).get("hash"),
             (p.get("merge_commit") or {}).get("hash")}
    return {h for h in found if isinstance(h, str) and h and len(h) < 40}


def participant_review(provider: str, number: int, pr_url: str | None, p: Payload,
                       body: str = "") -> Review | None:
    """A participant who approved or requested changes; None for one who only took part."""
    state = _str(p.get("state"))
    if p.get("approved") or state == "approved":
        kind: Literal["approved", "changes_requested"] = "approved"
    elif state == "changes_requested":
        kind = "changes_requested"
    else:
        return None
    user = p.get("user") or {}
    return Review(provider=provider, id=f"{kind}-{_str(user.get('uuid')) or person(user) or ''}", url=pr_url,
                  pull_number=number, state=kind, body=body, author=person(user),
                  submitted_at=_dt(p.get("participated_on")), raw=p)


def comment_review(provider: str, number: int, p: Payload,
                   state: Literal["commented", "changes_requested", "approved"] = "commented") -> Review:
    """A pull request comment, read as a commenting review."""
    content = p.get("content") or {}
    return Review(provider=provider, id=str(p.get("id", "")), url=_href(p, "html"), pull_number=number,
                  state=state, body=_str(content.get("raw")), author=person(p.get("user")),
                  submitted_at=_dt(p.get("created_on")), raw=p)


def commit_status(provider: str, sha: str, p: Payload) -> CommitStatus:
    """A ``commitstatus`` (a build status: ``key`` is the context)."""
    status_id = _str(p.get("uuid")) or _str(p.get("key"))
    return CommitStatus(provider=provider, id=status_id, url=p.get("url") or None,
                        sha=sha, state=_STATUS_STATES.get(_str(p.get("state")), "error"),
                        context=_str(p.get("key")) or "default", description=_str(p.get("description")),
                        target_url=p.get("url") or None, created_at=_dt(p.get("created_on")), raw=p)


def diffstat(provider: str, p: Payload) -> FileChange:
    """A ``diffstat`` entry: counts per file, no patch."""
    new, old = p.get("new") or {}, p.get("old") or {}
    status = _FILE_STATUSES.get(_str(p.get("status")), "changed")
    path = _str(new.get("path")) or _str(old.get("path"))
    return FileChange(provider=provider, id=path, path=path, status=status,
                      previous_path=_str(old.get("path")) or None if status == "renamed" else None,
                      additions=int(p.get("lines_added") or 0), deletions=int(p.get("lines_removed") or 0),
                      raw=p)
