"""Find provider plugin classes: the ``mosaic.providers`` entry points, or a module path.

Built-in providers are registered through the same entry-point group as third-party
packages, so there is no list of built-ins anywhere in this code.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from mosaic.catalog.base import SERVICES
from mosaic.catalog.registry import CATALOG
from mosaic.errors import ConfigError
from mosaic.plugins.contract import ProviderPlugin

if TYPE_CHECKING:
    from mosaic.config.schema import PluginSpec

GROUP = "mosaic.providers"


def discover() -> dict[str, EntryPoint]:
    """Entry points keyed ``provider.service`` (e.g. ``gitea.git``)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def contract_problems(cls: object) -> list[str]:
    """Everything that stops a class from serving as a provider plugin."""
    if not (inspect.isclass(cls) and issubclass(cls, ProviderPlugin)):
        return [f"{cls!r} is not a subclass of mosaic.plugins.contract.ProviderPlugin"]
    problems: list[str] = []
    for attr in ("provider", "service", "name"):
        if not isinstance(getattr(cls, attr, None), str):
            problems.append(f"{cls.__qualname__} does not define class attribute {attr!r}")
    service = getattr(cls, "service", None)
    if service not in SERVICES:
        problems.append(f"{cls.__qualname__}.service must be one of {', '.join(SERVICES)}")
        return problems
    for op_name in cls.capabilities():
        method = getattr(cls, op_name)
        if not inspect.iscoroutinefunction(method):
            problems.append(f"{cls.__qualname__}.{op_name} must be 'async def'")
        elif len(inspect.signature(method).parameters) != 3:
            problems.append(f"{cls.__qualname__}.{op_name} must take (self, params, ctx)")
    for op_name in cls.unsupported:
        if op_name not in CATALOG.names(service):
            problems.append(f"{cls.__qualname__}.unsupported names unknown operation {op_name!r}")
    if not cls.capabilities():
        problems.append(f"{cls.__qualname__} implements no operation of the {service} service")
    return problems


class PluginResolver:
    def __init__(self) -> None:
        self._eps = discover()
        self._cache: dict[str, type[ProviderPlugin]] = {}

    def available(self) -> dict[str, EntryPoint]:
        return dict(self._eps)

    def load_entry_point(self, name: str) -> type[ProviderPlugin]:
        if name in self._cache:
            return self._cache[name]
        ep = self._eps.get(name)
        if ep is None:
            known = ", ".join(sorted(self._eps)) or "none"
            raise ConfigError([f"no provider plugin {name!r} is installed (installed: {known})"])
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the gateway down
            raise ConfigError([f"plugin {name!r} ({ep.value}) failed to import: "
                               f"{type(exc).__name__}: {exc}"]) from None
        problems = contract_problems(cls)
        if problems:
            raise ConfigError([f"plugin {name!r}: {p}" for p in problems])
        self._cache[name] = cls
        return cls  # type: ignore[no-any-return]

    def load_module_path(self, path: str) -> type[ProviderPlugin]:
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, attr)
        except Exception as exc:
            raise ConfigError([f"module {path!r} could not be loaded: {type(exc).__name__}: {exc}"]) from None
        problems = contract_problems(cls)
        if problems:
            raise ConfigError([f"module {path!r}: {p}" for p in problems])
        return cls  # type: ignore[no-any-return]

    def resolve(self, spec: PluginSpec) -> type[ProviderPlugin]:
        cls = (self.load_module_path(spec.module) if spec.module
               else self.load_entry_point(f"{spec.provider}.{spec.type}"))
        if cls.service != spec.type:
            raise ConfigError([f"plugin class {cls.__qualname__} serves {cls.service!r}, "
                               f"not type {spec.type!r}"])
        return cls

    def all_classes(self) -> dict[str, type[ProviderPlugin] | ConfigError]:
        out: dict[str, type[ProviderPlugin] | ConfigError] = {}
        for name in sorted(self._eps):
            try:
                out[name] = self.load_entry_point(name)
            except ConfigError as exc:
                out[name] = exc
        return out
