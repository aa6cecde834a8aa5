"""Per-caller views: the visible set per (tenant, roles, rules version), built views per set."""

from __future__ import annotations

import asyncio
import threading

from mosaic.catalog.base import Operation
from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import Principal
from mosaic.interfaces.visibility import CallerViews, Derived

OPS = tuple(CATALOG.values())


class ReadOnly:
    """Permissions that let every role read, and nothing else."""

    def __init__(self) -> None:
        self.version = 0
        self.asked = 0

    def may_call(self, principal: Principal, tenant: str, op: Operation) -> bool:
        self.asked += 1
        return op.is_read


def test_visible_set_is_computed_once_per_role_set_and_rules_version() -> None:
    perms = ReadOnly()
    views = CallerViews(OPS, perms)
    reader = Principal(id="a", roles=("reader",))
    first = views.for_principal(reader)
    assert first and all(op.is_read for op in first)
    asked = perms.asked
    assert views.for_principal(Principal(id="b", roles=("reader",))) is first  # same roles: cached
    assert perms.asked == asked
    perms.version += 1  # the tenant's rules were reloaded
    views.for_principal(reader)
    assert perms.asked == 2 * asked
    assert CallerViews(OPS, None).for_principal(reader) == OPS  # no RBAC: everything


async def test_derived_views_are_built_once_off_the_event_loop() -> None:
    builds: list[str] = []
    loop_thread = threading.get_ident()

    def build(ops: tuple[Operation, ...]) -> int:
        builds.append("loop" if threading.get_ident() == loop_thread else "thread")
        return len(ops)

    derived = Derived(build)
    reads = tuple(op for op in OPS if op.is_read)
    got = await asyncio.gather(*(derived.get(reads) for _ in range(5)), derived.get(OPS))
    assert got == [len(reads)] * 5 + [len(OPS)]
    assert builds == ["thread", "thread"]  # one per set, however many waited
    assert await derived.get(reads) == len(reads) and len(builds) == 2
