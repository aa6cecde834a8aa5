"""Role-based access control per tenant, evaluated by pycasbin.

A permission is ``object:action``:

* ``object`` is ``*`` (every service), a service (``git``), one operation
  (``git.delete_repository``), ``admin`` (every admin area) or one admin area
  (``admin.keys``, ``admin.tenants``, ``admin.config``, ``admin.usage``, ``admin.audit``,
  ``admin.policies``);
* ``action`` is ``read``, ``write`` or ``*``. A catalog operation's action is its effect.

Built-in roles (every tenant):

============  ==============================================================================
admin         everything: every service ``*:*`` and ``admin:*``
maintainer    every service, read and write (destructive operations included)
developer     every service, read and write, except destructive operations (deny rules)
reader        every service, read
auditor       every service, read; ``admin.audit``, ``admin.usage``, ``admin.keys``,
              ``admin.tenants``: read
============  ==============================================================================

A tenant may add its own lines (stored in ``rbac_rules``): a role inheriting another
(``g, ci-bot, developer``) and allow/deny permissions for any role. Each tenant gets its own
enforcer holding the built-in lines plus only its own — one tenant's rules cannot reach another.
Decisions are memoised per (roles, object, action) until the tenant's rules change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import casbin
from casbin.model import Model

from mosaic.catalog.base import SERVICES, Operation
from mosaic.catalog.registry import CATALOG
from mosaic.errors import Forbidden, InvalidRequest
from mosaic.gateway.context import Principal

Action = Literal["read", "write"]
ROLES: tuple[str, ...] = ("admin", "maintainer", "developer", "reader", "auditor")
ADMIN_AREAS: tuple[str, ...] = ("keys", "tenants", "config", "usage", "audit", "policies")

MODEL = """
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && keyMatch(r.obj, p.obj) && (p.act == "*" || r.act == p.act)
"""

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "admin": ("*:*", "admin:*"),
    "maintainer": ("*:read", "*:write"),
    "developer": ("*:read", "*:write"),
    "reader": ("*:read",),
    "auditor": ("*:read", "admin.audit:read", "admin.usage:read", "admin.keys:read", "admin.tenants:read"),
}

_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")
_PERMISSION_RE = re.compile(r"^(\*|admin|admin\.[a-z]+|[a-z]+|[a-z]+\.[a-z_]+):(read|write|\*)$")


@dataclass(frozen=True, slots=True)
class Rule:
    """A tenant's own RBAC line (``inherits`` xor ``permission``)."""

    role: str
    permission: str | None = None
    inherits: str | None = None
    effect: Literal["allow", "deny"] = "allow"

    def validate(self) -> Rule:
        if not _ROLE_RE.match(self.role):
            raise InvalidRequest(f"role name {self.role[:60]!r}: lowercase letters, digits, '-' and '_'")
        if (self.permission is None) == (self.inherits is None):
            raise InvalidRequest("an RBAC rule has either a permission or an inherited role")
        if self.inherits is not None and not _ROLE_RE.match(self.inherits):
            raise InvalidRequest(f"inherited role {self.inherits[:60]!r} is not a valid role name")
        if self.permission is not None:
            objects(self.permission)
        if self.effect not in ("allow", "deny"):
            raise InvalidRequest("effect must be 'allow' or 'deny'")
        return self


def objects(permission: str) -> list[tuple[str, str]]:
    """``git:write`` → [(``git.*``, ``write``)]: casbin object patterns and the action."""
    if not _PERMISSION_RE.match(permission):
        raise InvalidRequest(f"permission {permission[:80]!r} is not 'object:action' "
                             "(e.g. git:write, project:read, git.delete_repository:write, admin:*)")
    obj, act = permission.rsplit(":", 1)
    if obj == "*":
        return [(f"{s}.*", act) for s in SERVICES]
    if obj == "admin":
        return [("admin.*", act)]
    if obj.startswith("admin."):
        if obj.removeprefix("admin.") not in ADMIN_AREAS:
            raise InvalidRequest(f"unknown admin area {obj!r} (one of: {', '.join(ADMIN_AREAS)})")
        return [(obj, act)]
    if "." in obj:
        if obj not in CATALOG:
            raise InvalidRequest(f"unknown operation {obj!r} in permission")
        return [(obj, act)]
    if obj not in SERVICES:
        raise InvalidRequest(f"unknown service {obj!r} in permission (one of: {', '.join(SERVICES)})")
    return [(f"{obj}.*", act)]


def _builtin_lines() -> tuple[list[list[str]], list[list[str]]]:
    policies: list[list[str]] = []
    for role, perms in ROLE_PERMISSIONS.items():
        for perm in perms:
            policies.extend([role, obj, act, "allow"] for obj, act in objects(perm))
    for op in CATALOG.values():
        if op.destructive:
            policies.append(["developer", op.qualified_name, "write", "deny"])
    return policies, []


def _enforcer(rules: Iterable[Rule]) -> casbin.Enforcer:
    model = Model()
    model.load_model_from_text(MODEL)
    enforcer = casbin.Enforcer(model, enable_log=False)
    policies, groupings = _builtin_lines()
    for rule in rules:
        if rule.inherits is not None:
            groupings.append([rule.role, rule.inherits])
        else:
            assert rule.permission is not None
            policies.extend([rule.role, obj, act, rule.effect] for obj, act in objects(rule.permission))
    if policies:
        enforcer.add_policies(policies)
    if groupings:
        enforcer.add_grouping_policies(groupings)
    return enforcer


class Authorizer:
    """Answers "may these roles do this action on this object, in this tenant?"."""

    def __init__(self) -> None:
        self._default = _enforcer(())
        self._tenants: dict[str, casbin.Enforcer] = {}
        self._custom_roles: dict[str, frozenset[str]] = {}
        self._memo: dict[tuple[str, tuple[str, ...], str, str], bool] = {}
        # Bumped whenever rules change: views cached per role set (tool lists, schemas) key on it.
        self.version = 0

    def load_tenant(self, tenant: str, rules: Sequence[Rule]) -> None:
        """Install a tenant's own rules (replacing earlier ones)."""
        checked = [r.validate() for r in rules]
        if checked:
            self._tenants[tenant] = _enforcer(checked)
            self._custom_roles[tenant] = frozenset(r.role for r in checked)
        else:
            self._tenants.pop(tenant, None)
            self._custom_roles.pop(tenant, None)
        self._memo = {k: v for k, v in self._memo.items() if k[0] != tenant}
        self.version += 1

    def roles(self, tenant: str) -> frozenset[str]:
        return frozenset(ROLES) | self._custom_roles.get(tenant, frozenset())

    def allowed(self, roles: Sequence[str], tenant: str, obj: str, act: str) -> bool:
        key = (tenant, tuple(roles), obj, act)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        enforcer = self._tenants.get(tenant, self._default)
        # Roles are evaluated one by one: a deny on one role must not cancel another role's grant
        # (a maintainer who is also a developer may still delete).
        result = any(enforcer.enforce(role, obj, act) for role in roles)
        if len(self._memo) > 50_000:
            self._memo.clear()
        self._memo[key] = result
        return result

    def may_call(self, principal: Principal, tenant: str, op: Operation) -> bool:
        return self.allowed(principal.roles, tenant, op.qualified_name, op.effect.value)

    def visible(self, principal: Principal, tenant: str, ops: Iterable[Operation]) -> list[Operation]:
        """The operations this principal may call: what MCP tool lists and API listings show."""
        return [op for op in ops if self.may_call(principal, tenant, op)]

    def require(self, principal: Principal, tenant: str, obj: str, act: str) -> None:
        if not self.allowed(principal.roles, tenant, obj, act):
            raise Forbidden(f"{principal.id} may not {act} {obj} in tenant {tenant!r}",
                            details={"object": obj, "action": act, "roles": list(principal.roles)})

    def require_admin(self, principal: Principal, tenant: str, area: str, act: Action) -> None:
        self.require(principal, tenant, f"admin.{area}", act)
