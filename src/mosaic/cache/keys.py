"""Cache keys and invalidation tags.

A key names one read exactly: tenant, provider (the instance the caller pinned, else ``auto`` —
whatever routing picks for this request), operation, and a hash of the *normalized* params
(validated, defaults filled in, keys sorted), so ``limit`` omitted and ``limit=30`` share an entry.

Tags say which writes make an entry stale. A read is tagged with its operation and, when it
is about one repository, with that repository; a write invalidates, for each read named in
its catalog ``invalidates``, the repository-level tag when both are about a repository, else
the operation-level tag (e.g. every cached ``list_repositories`` page of the tenant). A write
on a repository also clears cached ``NotFound`` answers about it (a create makes them wrong).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import BaseModel

from mosaic.catalog.base import Operation
from mosaic.catalog.registry import CATALOG

AUTO = "auto"


def normalized(params: BaseModel) -> bytes:
    return orjson.dumps(params.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def entry_key(tenant: str, provider: str | None, op: Operation, params: BaseModel) -> str:
    digest = hashlib.blake2b(normalized(params), digest_size=16).hexdigest()
    return f"{tenant}|{provider or AUTO}|{op.qualified_name}|{digest}"


def _has_repo(op: Operation) -> bool:
    return "repo" in op.params.model_fields


def read_tags(tenant: str, op: Operation, resource: dict[str, Any]) -> tuple[str, ...]:
    base = f"{tenant}|{op.qualified_name}"
    repo = resource.get("repo") if _has_repo(op) else None
    return (base, f"{base}|{repo}") if isinstance(repo, str) else (base,)


def negative_tag(tenant: str, op: Operation, resource: dict[str, Any]) -> str | None:
    repo = resource.get("repo")
    return f"{tenant}|{op.service}|missing|{repo}" if isinstance(repo, str) else None


def _repos(resource: dict[str, Any], result: BaseModel | None) -> set[str]:
    repos: set[str] = set()
    repo = resource.get("repo")
    if isinstance(repo, str):
        repos.add(repo)
    full_name = getattr(result, "full_name", None) if result is not None else None
    if isinstance(full_name, str) and "/" in full_name:
        repos.add(full_name)
    return repos


def write_tags(tenant: str, op: Operation, resource: dict[str, Any],
               result: BaseModel | None = None) -> list[str]:
    """Every tag a successful (or possibly applied) write makes stale."""
    repos = _repos(resource, result)
    tags: list[str] = []
    for name in op.invalidates:
        target = CATALOG.get(f"{op.service}.{name}")
        if target is None:
            continue
        base = f"{tenant}|{target.qualified_name}"
        if repos and _has_repo(target):
            tags.extend(f"{base}|{r}" for r in sorted(repos))
        else:
            tags.append(base)
    tags.extend(f"{tenant}|{op.service}|missing|{r}" for r in sorted(repos))
    return list(dict.fromkeys(tags))


def all_tags(tags: Iterable[str], negative: str | None) -> tuple[str, ...]:
    return (*tags, negative) if negative else tuple(tags)
