"""The shape of a catalog operation and of the provider-neutral domain objects.

An :class:`Operation` is the single declaration from which the plugin contract,
REST routes, GraphQL fields, MCP tools and CLI calls are derived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

Service = Literal["git", "cicd", "docs", "project"]
SERVICES: tuple[Service, ...] = ("git", "cicd", "docs", "project")


class Effect(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Rest:
    """How an operation maps onto a resource-oriented REST route (under ``/v1``)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    status: int = 200


@dataclass(frozen=True, slots=True)
class Operation:
    service: Service
    name: str
    params: type[BaseModel]
    result: type[BaseModel]
    effect: Effect
    rest: Rest
    summary: str
    # Reads are always idempotent; a write is idempotent when repeating it with the
    # same params leaves the same state (e.g. set a status, delete, put a file with sha).
    idempotent: bool = False
    destructive: bool = False
    # Seconds a result may be cached; None = never cached (writes, volatile reads).
    cache_ttl: float | None = None
    # Names (same service) of reads whose cached results a successful call makes stale.
    invalidates: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def qualified_name(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def tool_name(self) -> str:
        return f"{self.service}_{self.name}"

    @property
    def is_read(self) -> bool:
        return self.effect is Effect.READ

    @property
    def safe_to_repeat(self) -> bool:
        return self.is_read or self.idempotent


# ---------------------------------------------------------------------------
# Models

class Params(BaseModel):
    """Base of every operation's parameters: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Entity(BaseModel):
    """Base of every domain object: where it lives, and the provider's own payload."""

    model_config = ConfigDict(populate_by_name=True)

    provider: str = Field(description="Id of the provider instance that served this object.")
    id: str = Field(description="Provider-scoped identifier.")
    url: str | None = Field(default=None, description="Web URL of the object, when it has one.")
    raw: dict[str, Any] = Field(default_factory=dict, description="The provider's own payload.")


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class ListParams(Params):
    cursor: str | None = Field(default=None, description="Opaque cursor from a previous page.")
    limit: int = Field(default=30, ge=1, le=100, description="Maximum number of items per page.")


class Deleted(BaseModel):
    provider: str
    id: str
    deleted: bool = True


_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_repo(value: str) -> str:
    """A repository is ``owner/name`` (GitLab subgroups: ``group/sub/name``)."""
    if not _REPO_RE.match(value) or any(p in {".", ".."} for p in value.split("/")):
        raise ValueError("expected 'owner/name' made of letters, digits, '.', '_' and '-'")
    return value


def check_name(value: str) -> str:
    if not _NAME_RE.match(value) or value in {".", ".."}:
        raise ValueError("expected a name made of letters, digits, '.', '_' and '-'")
    return value


class RepoParams(Params):
    repo: str = Field(description="Repository as 'owner/name'.", examples=["acme/api"])

    @field_validator("repo")
    @classmethod
    def _repo(cls, v: str) -> str:
        return check_repo(v)


class RepoListParams(ListParams):
    repo: str = Field(description="Repository as 'owner/name'.", examples=["acme/api"])

    @field_validator("repo")
    @classmethod
    def _repo(cls, v: str) -> str:
        return check_repo(v)
