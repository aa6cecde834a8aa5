"""MCP tools derived from the catalog: schemas, annotations, filters and compact results.

One tool per catalog operation, named ``service_operation``. Everything here is computed
once at start-up (schemas, descriptions, the compaction plan of each result model); a
call only looks things up.

Compact results (the default) drop every ``raw`` payload and every *optional* field
that is empty (null, "", [] or {}). Required fields always stay, so the compact output
still validates against the tool's (compact) output schema.
"""

from __future__ import annotations

import copy
import difflib
import functools
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from mosaic.catalog.base import SERVICES, Operation
from mosaic.errors import InvalidRequest

# ---------------------------------------------------------------------------
# Compaction


Shape = typing.Literal["one", "many", "map"]


class _Plan:
    """For one model class: each field's key, whether it is required, and its sub-plan."""

    __slots__ = ("_exclude", "fields")

    def __init__(self) -> None:
        self.fields: tuple[tuple[str, bool, _Plan | None, Shape], ...] = ()
        self._exclude: dict[str, Any] | bool | None = False

    def exclude(self) -> dict[str, Any] | None:
        """Where the ``raw`` payloads are, as a pydantic ``exclude`` spec: never serialized at all."""
        if self._exclude is False:
            self._exclude = self._spec(0)
        return self._exclude if isinstance(self._exclude, dict) else None

    def _spec(self, depth: int) -> dict[str, Any] | None:
        spec: dict[str, Any] = {}
        for key, _, sub, shape in self.fields:
            if key == "raw":
                spec[key] = True
            elif sub is not None and depth < _EXCLUDE_DEPTH:
                inner = sub._spec(depth + 1)
                if inner:
                    spec[key] = inner if shape == "one" else {"__all__": inner}
        return spec or None


# Self-referencing models (a document tree) get their deeper payloads dropped by _prune instead.
_EXCLUDE_DEPTH = 4


_PLANS: dict[type[BaseModel], _Plan] = {}


def _model_in(annotation: Any) -> tuple[type[BaseModel], Shape] | None:
    """The one model class a field holds, and how: directly, in a list, or as a dict's values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "one"
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if origin is typing.Annotated:
        return _model_in(args[0])
    if origin in (list, tuple, set, frozenset) and len(args) == 1:
        inner = _model_in(args[0])
        return (inner[0], "many") if inner is not None and inner[1] == "one" else None
    if origin is dict and len(args) == 2:
        inner = _model_in(args[1])
        return (inner[0], "map") if inner is not None and inner[1] == "one" else None
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _model_in(args[0])
    return None


def plan_for(cls: type[BaseModel]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    plan = _PLANS[cls] = _Plan()  # registered first: models may refer to themselves
    fields: list[tuple[str, bool, _Plan | None, Shape]] = []
    for name, info in cls.model_fields.items():
        found = _model_in(info.annotation)
        if found is None:
            fields.append((name, info.is_required(), None, "one"))
        else:
            fields.append((name, info.is_required(), plan_for(found[0]), found[1]))
    plan.fields = tuple(fields)
    return plan


def _prune(data: dict[str, Any], plan: _Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, required, sub, shape in plan.fields:
        if key == "raw" or key not in data:
            continue
        value = data[key]
        if sub is not None and value is not None:
            if shape == "one":
                if isinstance(value, dict):
                    value = _prune(value, sub)
            elif shape == "many":
                if isinstance(value, list):
                    value = [_prune(x, sub) if isinstance(x, dict) else x for x in value]
            elif isinstance(value, dict):
                value = {k: _prune(v, sub) if isinstance(v, dict) else v for k, v in value.items()}
        if not required and (value is None or value == "" or value == [] or value == {}):
            continue
        out[key] = value
    return out


def compact_dump(result: BaseModel) -> dict[str, Any]:
    plan = plan_for(type(result))
    data = result.__pydantic_serializer__.to_python(result, mode="json", exclude=plan.exclude())
    out: dict[str, Any] = _prune(data, plan)
    return out


def full_dump(result: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = result.__pydantic_serializer__.to_python(result, mode="json")
    return out


def slim(schema: Any, drop: frozenset[str]) -> Any:
    """Remove annotation keywords (``title``, ``description``) a client does not need.

    Property *names* are never touched, even a property called ``title``.
    """
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in drop and isinstance(value, str):
                continue
            if key in ("properties", "$defs", "patternProperties") and isinstance(value, dict):
                out[key] = {k: slim(v, drop) for k, v in value.items()}
            else:
                out[key] = slim(value, drop)
        return out
    if isinstance(schema, list):
        return [slim(x, drop) for x in schema]
    return schema


_TITLES = frozenset({"title"})
_ANNOTATIONS = frozenset({"title", "description"})


def _drop_raw(schema: Any) -> Any:
    """The compact output schema: the result schema with every ``raw`` property removed."""
    if isinstance(schema, dict):
        out = {k: _drop_raw(v) for k, v in schema.items()}
        props = out.get("properties")
        if isinstance(props, dict) and "raw" in props:
            out["properties"] = {k: v for k, v in props.items() if k != "raw"}
            if "required" in out:
                out["required"] = [r for r in out["required"] if r != "raw"]
        return out
    if isinstance(schema, list):
        return [_drop_raw(x) for x in schema]
    return schema


# ---------------------------------------------------------------------------
# Tool specs


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    op: Operation
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    compact_output_schema: dict[str, Any]

    @property
    def read_only(self) -> bool:
        return self.op.is_read

    def annotations(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "readOnlyHint": self.op.is_read,
            "destructiveHint": self.op.destructive,
            "idempotentHint": self.op.safe_to_repeat,
            # Every service reaches a forge, CI system or wiki outside this process.
            "openWorldHint": True,
        }

    def definition(self, *, compact: bool) -> dict[str, Any]:
        """The tool as ``tools/list`` shows it (MCP wire names)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.compact_output_schema if compact else self.output_schema,
            "annotations": self.annotations(),
        }


def _is_page(op: Operation) -> bool:
    fields = op.result.model_fields
    return "items" in fields and "next_cursor" in fields


def describe(op: Operation) -> str:
    """The summary an agent reads, plus what it needs to call the tool correctly."""
    parts = [op.summary.rstrip()]
    if _is_page(op):
        parts.append("Returns one page {items, next_cursor}; pass next_cursor back as `cursor` for more.")
    if op.destructive:
        parts.append("Destructive: ask the user before calling.")
    elif not op.is_read and not op.idempotent:
        parts.append("Not idempotent: do not retry blindly.")
    return " ".join(parts)


def _title(op: Operation) -> str:
    words = op.name.replace("_", " ")
    return f"{op.service.capitalize() if op.service != 'cicd' else 'CI/CD'}: {words}"


def _object_schema(model: type[BaseModel],
                   mode: typing.Literal["validation", "serialization"]) -> dict[str, Any]:
    schema = model.model_json_schema(mode=mode)
    schema.setdefault("type", "object")
    return schema


def build_tools(operations: Iterable[Operation]) -> dict[str, ToolSpec]:
    """One tool per operation (the specs are immutable and cached per set of operations)."""
    return dict(_build_tools(tuple(operations)))


@functools.lru_cache(maxsize=8)
def _build_tools(operations: tuple[Operation, ...]) -> tuple[tuple[str, ToolSpec], ...]:
    tools: dict[str, ToolSpec] = {}
    for op in operations:
        output = _object_schema(op.result, "serialization")
        tools[op.tool_name] = ToolSpec(
            name=op.tool_name, op=op, title=_title(op), description=describe(op),
            # Property titles repeat the property names: tokens an agent pays for nothing.
            input_schema=slim(_object_schema(op.params, "validation"), _TITLES),
            output_schema=output,
            # Clients validate results with it; the prose lives in the input side.
            compact_output_schema=slim(_drop_raw(copy.deepcopy(output)), _ANNOTATIONS),
        )
        plan_for(op.result)
    return tuple(tools.items())


# ---------------------------------------------------------------------------
# Filters


def _split(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = [s.strip() for s in items if s and s.strip()]
    return out or None


def _truthy(value: str | bool | None, what: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("", "0", "false", "no", "off"):
        return False
    raise InvalidRequest(f"{what} must be true or false, not {value!r}")


@dataclass(frozen=True, slots=True)
class ToolFilter:
    """Which tools an MCP client sees: by service (toolset), by name, and read-only.

    Toolsets and tools add up (a tool is shown if its service is a selected toolset
    or it is named); with neither, every tool is shown. Read-only then hides writes.
    """

    toolsets: frozenset[str] | None = None
    tools: frozenset[str] | None = None
    read_only: bool = False

    def allows(self, spec: ToolSpec) -> bool:
        if self.read_only and not spec.read_only:
            return False
        if self.toolsets is None and self.tools is None:
            return True
        return (self.toolsets is not None and spec.op.service in self.toolsets) or \
            (self.tools is not None and spec.name in self.tools)

    @classmethod
    def parse(cls, toolsets: str | Iterable[str] | None, tools: str | Iterable[str] | None,
              read_only: str | bool | None, known: dict[str, ToolSpec]) -> ToolFilter:
        """Validate user input (CLI flags or HTTP headers); unknown names are an error."""
        sets = _split(toolsets)
        if sets is not None:
            if "all" in sets:
                sets = None
            else:
                bad = [s for s in sets if s not in SERVICES]
                if bad:
                    raise InvalidRequest(f"unknown toolset(s) {', '.join(bad)}; "
                                         f"toolsets are: all, {', '.join(SERVICES)}")
        names = _split(tools)
        resolved: list[str] | None = None
        if names is not None:
            resolved = []
            for n in names:
                name = n.replace(".", "_", 1) if "." in n else n
                if name not in known:
                    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    raise InvalidRequest(f"unknown tool {n!r}{hint}")
                resolved.append(name)
        return cls(
            toolsets=frozenset(sets) if sets is not None else None,
            tools=frozenset(resolved) if resolved is not None else None,
            read_only=_truthy(read_only, "read-only"),
        )


def parse_bool(value: str | bool | None, what: str) -> bool:
    return _truthy(value, what)
