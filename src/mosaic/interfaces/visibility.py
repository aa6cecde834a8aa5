"""What a caller is shown: the operations its roles allow in its tenant.

With RBAC (``mosaic serve --tenancy``) every interface shows a caller only what it may call:
MCP's ``tools/list``, the GraphQL schema (introspection and validation) and the OpenAPI
document. Permissions depend on the tenant and the roles only, so the visible set — and
whatever an interface derives from it (a schema, a document) — is computed once per
``(tenant, roles, rules version)`` and cached. The rules version changes whenever a tenant's
RBAC rules are reloaded, so a cached view never outlives the rules it came from.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from starlette.types import Scope

from mosaic.catalog.base import Operation
from mosaic.gateway.context import Principal
from mosaic.interfaces.auth import context_for, principal_of

__all__ = ["CallerViews", "Derived", "Permissions"]

# Views kept; a deployment has few distinct (tenant, roles) pairs, this only bounds a bad day.
MAX_VIEWS = 1024


class Permissions(Protocol):
    """The part of :class:`mosaic.security.rbac.Authorizer` the views need."""

    version: int

    def may_call(self, principal: Principal, tenant: str, op: Operation) -> bool: ...


ViewKey = tuple[str, tuple[str, ...], int]
T = TypeVar("T")


class CallerViews:
    def __init__(self, operations: Sequence[Operation], permissions: Permissions | None) -> None:
        self.operations = tuple(operations)
        self.permissions = permissions
        self._visible: dict[ViewKey, tuple[Operation, ...]] = {}

    @property
    def filtered(self) -> bool:
        return self.permissions is not None

    def key(self, principal: Principal) -> ViewKey:
        perms = self.permissions
        tenant = context_for(principal).tenant
        return tenant, tuple(sorted(principal.roles)), perms.version if perms is not None else 0

    def for_principal(self, principal: Principal) -> tuple[Operation, ...]:
        """The operations ``principal`` may call, in catalog order."""
        perms = self.permissions
        if perms is None:
            return self.operations
        key = self.key(principal)
        ops = self._visible.get(key)
        if ops is None:
            tenant = key[0]
            ops = tuple(op for op in self.operations if perms.may_call(principal, tenant, op))
            if len(self._visible) >= MAX_VIEWS:
                self._visible.clear()
            self._visible[key] = ops
        return ops

    def for_scope(self, scope: Scope) -> tuple[Operation, ...]:
        """The operations the caller of this (authenticated) request may call."""
        return self.for_principal(principal_of(scope))


class Derived(Generic[T]):
    """Something built from an operation set (a GraphQL schema, an OpenAPI document), once per
    set — several role sets often see the same one — and off the event loop: a schema takes
    tens of milliseconds to build, which must not stall every other request."""

    def __init__(self, build: Callable[[tuple[Operation, ...]], T]) -> None:
        self._build = build
        self._cache: dict[tuple[str, ...], T] = {}
        self._building: dict[tuple[str, ...], asyncio.Task[T]] = {}

    async def get(self, ops: tuple[Operation, ...]) -> T:
        key = tuple(op.qualified_name for op in ops)
        value = self._cache.get(key)
        if value is not None:
            return value
        task = self._building.get(key)
        if task is None:  # one build per set, however many callers wait for it
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._build, ops))
            self._building[key] = task
            task.add_done_callback(functools.partial(self._built, key))
        return await asyncio.shield(task)

    def _built(self, key: tuple[str, ...], task: asyncio.Task[T]) -> None:
        self._building.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        if len(self._cache) >= MAX_VIEWS:
            self._cache.clear()
        self._cache[key] = task.result()
