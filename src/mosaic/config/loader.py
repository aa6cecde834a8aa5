"""Load a configuration file: YAML with line numbers, ``${VAR}`` interpolation, validation.

PyYAML's node tree is walked by hand (rather than ``yaml.safe_load``) so that every
value keeps the line it came from: an error can then say ``file:line: key.path``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mosaic.config.schema import SHARED_PLUGIN_KEYS, MosaicConfig
from mosaic.errors import ConfigError
from mosaic.resilience.config import parse_shared
from mosaic.security.redaction import Masked, is_secret_key

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRETISH = re.compile(r"token|password|secret|key|credential|private", re.I)

Loc = tuple[str | int, ...]


@dataclass
class Source:
    """Where each value of a loaded document came from."""

    file: str
    lines: dict[Loc, int] = field(default_factory=dict)
    # Paths whose value came from the environment: never echo them back.
    interpolated: set[Loc] = field(default_factory=set)
    # Paths whose environment variable is missing: already reported, not validated again.
    missing: set[Loc] = field(default_factory=set)

    def line_of(self, loc: Loc) -> int | None:
        for n in range(len(loc), -1, -1):
            line = self.lines.get(loc[:n])
            if line is not None:
                return line
        return None

    def where(self, loc: Loc) -> str:
        line = self.line_of(loc)
        return f"{self.file}:{line}" if line is not None else self.file


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _scalar(node: yaml.Node) -> Any:
    """A scalar's value with YAML's own resolution (null, bools, numbers, timestamps)."""
    return _CONSTRUCTOR.construct_object(node, deep=True)


def _construct(node: yaml.Node, loc: Loc, src: Source, env: Mapping[str, str],
               problems: list[str]) -> Any:
    src.lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
            if key in out:
                problems.append(f"{src.file}:{key_node.start_mark.line + 1}: "
                                f"{format_loc((*loc, key))}: duplicate key")
            value = _construct(value_node, (*loc, key), src, env, problems)
            # A credential (literal or from ${VAR}) keeps its value but shows as '***' in any repr
            # of the config: a debug print or a traceback's locals cannot leak it.
            out[key] = Masked(value) if isinstance(value, str) and is_secret_key(key) else value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(n, (*loc, i), src, env, problems) for i, n in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    value = _scalar(node)
    if isinstance(value, str) and "${" in value:
        return _interpolate(value, loc, src, env, problems, quoted=node.style in ("'", '"'))
    return value


def _interpolate(value: str, loc: Loc, src: Source, env: Mapping[str, str], problems: list[str],
                 *, quoted: bool) -> Any:
    src.interpolated.add(loc)

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        src.missing.add(loc)
        problems.append(f"{src.where(loc)}: {format_loc(loc)}: environment variable {name} is not set "
                        f"(set it, or write ${{{name}:-default}})")
        return ""

    result = _VAR.sub(sub, value)
    # A whole-value reference such as `${PORT}` takes the YAML type of what it expands to.
    if not quoted and _VAR.fullmatch(value) and result:
        try:
            typed = yaml.safe_load(result)
        except yaml.YAMLError:
            return result
        if isinstance(typed, (int, float, bool)):
            return typed
    return result


def parse_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Any, Source, list[str]]:
    src = Source(file)
    problems: list[str] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        problem = getattr(exc, "problem", None) or str(exc)
        return None, src, [f"{where}: invalid YAML: {problem}"]
    if node is None:
        return {}, src, []
    data = _construct(node, (), src, os.environ if env is None else env, problems)
    return data, src, problems


def _describe_error(err: Mapping[str, Any], loc: Loc, src: Source) -> str:
    msg = str(err["msg"])
    if err["type"] == "missing":
        msg = "required key is missing"
    elif err["type"] == "extra_forbidden":
        msg = "unknown key"
    text = f"{src.where(loc)}: {format_loc(loc)}: {msg}"
    found = err.get("input")
    secret = loc in src.interpolated or any(isinstance(p, str) and _SECRETISH.search(p) for p in loc)
    if err["type"] not in ("missing", "extra_forbidden") and not secret and \
            isinstance(found, (str, int, float, bool)) and len(repr(found)) < 80:
        text += f" (found {found!r})"
    return text


def validation_problems(exc: ValidationError, src: Source, prefix: Loc = ()) -> list[str]:
    return [_describe_error(e, (*prefix, *e["loc"]), src) for e in exc.errors()
            if not _follows_missing((*prefix, *e["loc"]), str(e["type"]), src)]


def _follows_missing(loc: Loc, kind: str, src: Source) -> bool:
    """An error caused by an unset variable already reported (the value itself, or a
    whole-object check such as "token auth needs a token") is not reported twice."""
    if loc in src.missing:
        return True
    return kind == "value_error" and any(m[:len(loc)] == loc for m in src.missing)


def validate_plugin_configs(cfg: MosaicConfig, src: Source) -> list[str]:
    """Resolve each enabled plugin's class and validate its own config keys."""
    from mosaic.plugins.loader import PluginResolver

    resolver = PluginResolver()
    problems: list[str] = []
    for i, spec in enumerate(cfg.orchestration.plugins):
        loc: Loc = ("orchestration", "plugins", i)
        try:
            cls = resolver.resolve(spec)
        except ConfigError as exc:
            problems.extend(f"{src.where(loc)}: {format_loc(loc)}: {p}" for p in exc.problems)
            continue
        own = {k: v for k, v in spec.config.items() if k not in SHARED_PLUGIN_KEYS}
        try:
            cls.Config.model_validate(own)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, src, (*loc, "config")))
        try:
            parse_shared(spec.config)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, src, (*loc, "config")))
    return problems


def load_config(path: str | Path | None = None, *, text: str | None = None,
                env: Mapping[str, str] | None = None, check_plugins: bool = True) -> MosaicConfig:
    """Load and fully validate a configuration; raise ConfigError listing every problem."""
    file = str(path) if path is not None else "<config>"
    if text is None:
        if path is None:
            raise ConfigError(["no configuration file given"])
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{file}: cannot read: {exc.strerror}"]) from None
    data, src, problems = parse_yaml(text, file, env)
    if data is None:
        raise ConfigError(problems)
    if not isinstance(data, dict):
        raise ConfigError([f"{file}:1: expected a mapping at the top level"])
    try:
        cfg = MosaicConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + validation_problems(exc, src)) from None
    if check_plugins:
        problems += validate_plugin_configs(cfg, src)
    if problems:
        raise ConfigError(problems)
    return cfg


def plugin_own_config(cls_config: type[BaseModel], raw: Mapping[str, Any]) -> BaseModel:
    return cls_config.model_validate({k: v for k, v in raw.items() if k not in SHARED_PLUGIN_KEYS})
