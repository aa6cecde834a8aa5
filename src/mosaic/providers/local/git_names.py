"""Validation of the names a caller hands to git: file paths, branch names, revisions.

Anything that reaches a git command line or a tree entry passes through here first, so a
bad value becomes an :class:`InvalidRequest` naming the problem instead of a git error,
an option injection (``--upload-pack=...``) or a path outside the repository.
"""

from __future__ import annotations

import re

from mosaic.errors import InvalidRequest

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# A revision: a branch/tag name or sha, optionally followed by ~N / ^N ancestry steps.
_REV = re.compile(r"^[A-Za-z0-9._/-]+(?:[~^][0-9]{0,4})*$")
_SHA = re.compile(r"^[0-9a-f]{4,64}$")
ZERO_SHA = "0" * 40


def check_path(path: str, *, what: str = "path") -> str:
    """A file path inside a repository: relative, no ``..``/``.``/``.git`` segment, no NUL."""
    if not path:
        raise InvalidRequest(f"{what} must not be empty", details={what: path})
    if "\x00" in path:
        raise InvalidRequest(f"{what} must not contain NUL", details={what: path.replace("\x00", "\\0")})
    if _CONTROL.search(path):
        raise InvalidRequest(f"{what} must not contain control characters", details={what: path})
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidRequest(f"{what} must be relative to the repository root: {path!r}",
                             details={what: path})
    if len(path.encode()) > 4096:
        raise InvalidRequest(f"{what} is longer than 4096 bytes", details={what: path[:100]})
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidRequest(f"{what} {path!r} has an empty, '.' or '..' segment",
                                 details={what: path})
        # Case-insensitive: '.GIT' is the git dir on case-insensitive file systems.
        if segment.lower() == ".git":
            raise InvalidRequest(f"{what} {path!r} must not contain a '.git' segment", details={what: path})
        if "\\" in segment:
            raise InvalidRequest(f"{what} {path!r} must use '/' as separator, not '\\'",
                                 details={what: path})
    return path


def check_branch(name: str, *, what: str = "branch") -> str:
    """A branch name git accepts (the rules of ``git check-ref-format --branch``)."""
    problem = _branch_problem(name)
    if problem:
        raise InvalidRequest(f"invalid {what} name {name!r}: {problem}", details={what: name})
    return name


def _branch_problem(name: str) -> str | None:
    if not name:
        return "empty"
    if name.startswith("-"):
        return "must not start with '-'"
    if name == "@" or "@{" in name:
        return "must not be '@' or contain '@{'"
    if ".." in name:
        return "must not contain '..'"
    if _REF_FORBIDDEN.search(name):
        return "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "must not start or end with '/' or contain '//'"
    if name.endswith("."):
        return "must not end with '.'"
    for component in name.split("/"):
        if component.startswith("."):
            return "no component may start with '.'"
        if component.endswith(".lock"):
            return "no component may end with '.lock'"
    if name == "HEAD":
        return "'HEAD' is reserved"
    return None


def check_rev(rev: str, *, what: str = "ref") -> str:
    """A branch, tag or (abbreviated) sha, optionally with ``~N``/``^N`` suffixes."""
    if not rev or rev.startswith("-") or ".." in rev or not _REV.match(rev):
        raise InvalidRequest(f"invalid {what} {rev!r}: expected a branch, tag or commit sha",
                             details={what: rev})
    return rev


def is_sha(value: str) -> bool:
    return bool(_SHA.match(value))
