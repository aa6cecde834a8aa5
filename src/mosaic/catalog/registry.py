"""The catalog: every operation of every service, declared once, looked up by name."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from mosaic.catalog.base import SERVICES, Operation, Service
from mosaic.errors import UnknownOperation


class Catalog(Mapping[str, Operation]):
    """Operations by qualified name (``git.create_repository``); also by tool name."""

    def __init__(self, operations: tuple[Operation, ...]) -> None:
        self._ops: dict[str, Operation] = {}
        for op in operations:
            if op.qualified_name in self._ops:
                raise ValueError(f"operation {op.qualified_name} declared twice")
            self._ops[op.qualified_name] = op
        self._aliases = {op.tool_name: op for op in operations}

    def __getitem__(self, key: str) -> Operation:
        return self._ops[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def resolve(self, name: str) -> Operation:
        """Find an operation by ``service.name`` or ``service_name``, or say what was meant."""
        op = self._ops.get(name) or self._aliases.get(name)
        if op is not None:
            return op
        close = difflib.get_close_matches(name, list(self._ops) + list(self._aliases), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownOperation(f"unknown operation {name!r}{hint}",
                               details={"operation": name, "suggestions": close})

    def for_service(self, service: Service) -> list[Operation]:
        return [op for op in self._ops.values() if op.service == service]

    def names(self, service: Service) -> frozenset[str]:
        return frozenset(op.name for op in self._ops.values() if op.service == service)


def _load() -> Catalog:
    import importlib

    ops: list[Operation] = []
    for service in SERVICES:
        try:
            module = importlib.import_module(f"mosaic.catalog.{service}")
        except ModuleNotFoundError as exc:  # a service module still being written
            if exc.name != f"mosaic.catalog.{service}":
                raise
            continue
        ops.extend(module.OPERATIONS)
    return Catalog(tuple(ops))


CATALOG: Catalog = _load()
