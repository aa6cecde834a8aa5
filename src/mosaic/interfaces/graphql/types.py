"""Pydantic models → real GraphQL types (Strawberry), converted once at start-up.

Our own converter rather than ``strawberry.experimental.pydantic``: the catalog's models
use ``Literal`` fields, generic ``Page[T]``, ``dict[str, Any]`` payloads and unions,
which that module does not map, and every type here must be produced without a
hand-written class. The rules:

- ``str``/``bool``/``float``/dates map to their scalars; ``int`` to ``Int`` except sizes,
  offsets and durations, which may pass 2^31 and use the ``Long`` scalar;
- a ``Literal`` of strings becomes an enum (values that are not GraphQL names, such as
  ``utf-8``, get the name ``UTF_8``); Python enums stay enums;
- a model becomes an object type (output) or an input type (``<Name>Input``);
- ``list``/``tuple``/``set`` become lists; a union of models becomes a GraphQL union;
- ``raw`` payloads, ``dict`` and ``Any`` (and anything else without a GraphQL
  equivalent, such as a union of scalars) become the ``JSON`` scalar.

Output objects are resolved straight from the pydantic instances (field by attribute),
so a result is never copied into another structure.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal, NewType

import strawberry
from pydantic import BaseModel
from strawberry.scalars import JSON
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.unset import UNSET

Long = NewType("Long", int)
# Registered through StrawberryConfig.scalar_map by the schema builder.
LONG_SCALAR = strawberry.scalar(
    name="Long",
    description="A 64-bit integer (sizes, offsets, durations).",
    serialize=int,
    parse_value=int,
)

_LONG_HINT = re.compile(r"(size|bytes|offset|duration|_ms$|_ns$|timestamp|reset|^total)", re.I)
_GQL_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
_SCALARS: dict[type, Any] = {str: str, bool: bool, float: float, datetime: datetime, date: date,
                             time: time, bytes: str}


def _pascal(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name) if p)


def type_name(cls: type[BaseModel]) -> str:
    """``Page[Repository]`` → ``RepositoryPage``; other names as they are."""
    name = cls.__name__
    m = re.fullmatch(r"(\w+)\[(.+)\]", name)
    if m:
        inner = "".join(_pascal(p.rsplit(".", 1)[-1]) for p in m.group(2).split(","))
        return f"{inner}{m.group(1)}"
    return _pascal(name) if not _GQL_NAME.match(name) else name


def enum_member_name(value: str) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", value).strip("_").upper() or "EMPTY"
    return f"_{name}" if name[0].isdigit() else name


def _unwrap_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


@dataclass
class TypeRegistry:
    """Every generated type, keyed by source, so each model/enum is converted once."""

    service_prefix: str = ""
    objects: dict[type[BaseModel], Any] = field(default_factory=dict)
    inputs: dict[type[BaseModel], Any] = field(default_factory=dict)
    enums: dict[tuple[str, ...], Any] = field(default_factory=dict)
    py_enums: dict[type[enum.Enum], Any] = field(default_factory=dict)
    unions: dict[tuple[type[BaseModel], ...], Any] = field(default_factory=dict)
    names: dict[str, object] = field(default_factory=dict)

    def unique(self, name: str, owner: object) -> str:
        """A GraphQL type name not yet taken by another source (prefix, then number)."""
        taken = self.names.get(name)
        if taken is None or taken is owner:
            self.names[name] = owner
            return name
        prefixed = f"{_pascal(self.service_prefix)}{name}"
        candidate, n = prefixed, 2
        while self.names.get(candidate) not in (None, owner):
            candidate, n = f"{prefixed}{n}", n + 1
        self.names[candidate] = owner
        return candidate

    # -- annotations ---------------------------------------------------------
    def convert(self, annotation: Any, *, output: bool, field_name: str = "", owner: str = "") -> Any:
        """The GraphQL-side annotation for a pydantic field annotation (nullability kept)."""
        annotation = _unwrap_annotated(annotation)
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(annotation)
            rest = [a for a in args if a is not type(None)]
            optional = len(rest) != len(args)
            if len(rest) == 1:
                inner = self.convert(rest[0], output=output, field_name=field_name, owner=owner)
            else:
                inner = self._union(rest, output=output)
            return inner | None if optional else inner
        if origin is Literal:
            return self._literal(typing.get_args(annotation), field_name, owner)
        if origin in (list, tuple, set, frozenset):
            items = [a for a in typing.get_args(annotation) if a is not Ellipsis]
            if len(items) != 1 and not (origin is tuple and len(set(items)) == 1):
                return JSON
            return list[self.convert(items[0], output=output, field_name=field_name, owner=owner)]  # type: ignore[misc]
        if origin is not None:
            return JSON
        if isinstance(annotation, type):
            if issubclass(annotation, BaseModel):
                return self.object_type(annotation) if output else self.input_type(annotation)
            if issubclass(annotation, enum.Enum):
                return self._py_enum(annotation)
            if annotation is int or (issubclass(annotation, int) and annotation is not bool):
                return Long if _LONG_HINT.search(field_name) else int
            for py, gql in _SCALARS.items():
                if issubclass(annotation, py):
                    return gql
        return JSON

    def _union(self, members: list[Any], *, output: bool) -> Any:
        models = [m for m in (_unwrap_annotated(a) for a in members)
                  if isinstance(m, type) and issubclass(m, BaseModel)]
        if not output or len(models) != len(members):
            return JSON
        key = tuple(models)
        union = self.unions.get(key)
        if union is None:
            name = self.unique("Or".join(type_name(m) for m in models), key)
            union = typing.Annotated[
                typing.Union[tuple(self.object_type(m) for m in models)],  # noqa: UP007
                strawberry.union(name),
            ]
            self.unions[key] = union
        return union

    def _literal(self, values: tuple[Any, ...], field_name: str, owner: str) -> Any:
        if not values or not all(isinstance(v, str) for v in values):
            kinds = {type(v) for v in values}
            if kinds == {int}:
                return int
            if kinds == {bool}:
                return bool
            return JSON
        key = tuple(values)
        gql_enum = self.enums.get(key)
        if gql_enum is None:
            members: dict[str, str] = {}
            for v in values:
                name = enum_member_name(v)
                while name in members:
                    name += "_"
                members[name] = v
            name = self.unique(f"{owner}{_pascal(field_name)}", key)
            py = enum.Enum(name, members)  # type: ignore[misc]
            gql_enum = strawberry.enum(py, name=name, description="One of: " + ", ".join(values))
            self.enums[key] = gql_enum
        return gql_enum

    def _py_enum(self, cls: type[enum.Enum]) -> Any:
        found = self.py_enums.get(cls)
        if found is None:
            if all(isinstance(m.value, str) for m in cls):
                found = self._literal(tuple(m.value for m in cls), cls.__name__, "")
            else:
                found = strawberry.enum(cls, name=self.unique(cls.__name__, cls))
            self.py_enums[cls] = found
        return found

    # -- models --------------------------------------------------------------
    def object_type(self, model: type[BaseModel]) -> Any:
        found = self.objects.get(model)
        if found is not None:
            return found
        name = self.unique(type_name(model), model)
        cls: type = type(name, (), {})
        self.objects[model] = cls  # before the fields: a model may refer to itself
        annotations: dict[str, Any] = {}
        for fname, info in model.model_fields.items():
            annotations[fname] = self.convert(info.annotation, output=True, field_name=fname, owner=name)
            setattr(cls, fname, strawberry.field(description=info.description))
        cls.__annotations__ = annotations

        def is_type_of(_cls: type, obj: Any, _info: Any) -> bool:
            return isinstance(obj, model)

        cls.is_type_of = classmethod(is_type_of)  # type: ignore[attr-defined]
        strawberry.type(cls, name=name, description=(model.__doc__ or "").strip() or None)
        return cls

    def input_type(self, model: type[BaseModel]) -> Any:
        found = self.inputs.get(model)
        if found is not None:
            return found
        name = self.unique(f"{type_name(model)}Input", ("input", model))
        cls: type = type(name, (), {})
        self.inputs[model] = cls
        annotations: dict[str, Any] = {}
        for fname, info in model.model_fields.items():
            ann = self.convert(info.annotation, output=False, field_name=fname, owner=type_name(model))
            if info.is_required():
                setattr(cls, fname, strawberry.field(description=info.description))
            else:
                ann = _optional(ann)
                setattr(cls, fname, strawberry.field(description=info.description, default=UNSET))
            annotations[fname] = ann
        cls.__annotations__ = annotations
        strawberry.input(cls, name=name, description=(model.__doc__ or "").strip() or None)
        return cls


def _optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and \
            type(None) in typing.get_args(annotation):
        return annotation
    return annotation | None


def argument_annotation(registry: TypeRegistry, model: type[BaseModel], fname: str) -> tuple[Any, Any]:
    """(annotation, default) of the GraphQL argument for one params field."""
    info = model.model_fields[fname]
    owner = type_name(model).removesuffix("Params")
    ann = registry.convert(info.annotation, output=False, field_name=fname, owner=owner)
    if info.is_required() and not _is_nullable(ann):
        return ann, REQUIRED
    return _optional(ann), UNSET


def _is_nullable(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and \
        type(None) in typing.get_args(annotation)


class _Required:
    """Marker: the argument has no default (GraphQL non-null, must be given)."""


REQUIRED = _Required()


def to_plain(value: Any) -> Any:
    """A GraphQL argument value (enums, input objects, lists) back to plain JSON-like data."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    definition = getattr(value, "__strawberry_definition__", None)
    if isinstance(definition, StrawberryObjectDefinition):
        return {f.python_name: to_plain(getattr(value, f.python_name)) for f in definition.fields
                if getattr(value, f.python_name) is not UNSET}
    return value

