"""The local provider's YAML pipeline format (a `definition` given to create_pipeline).

::

    steps:                      # a list of steps, or a mapping of step name -> step
      - name: test
        commands: [make test]   # or `commands: make test`
        env: {GOFLAGS: -mod=mod}        # `environment` is accepted too (Woodpecker spelling)
        timeout_s: 300
        artifacts: ["dist/**"]
    triggers:
      - event: push
        branches: [main]
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from mosaic.catalog.cicd import PipelineStep, PipelineTrigger
from mosaic.errors import InvalidRequest

MAX_DEFINITION_CHARS = 256 * 1024
_STEP_KEYS = {"name", "commands", "image", "env", "environment", "timeout_s", "artifacts"}


def _fail(message: str) -> InvalidRequest:
    return InvalidRequest(f"invalid pipeline definition: {message}")


def _errors(exc: ValidationError, where: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{where}{'.' + loc if loc else ''}: {err['msg']}")
    return "; ".join(parts)


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value  # strings pass; lists and mappings fail validation with a clear message


def _step(raw: Any, where: str, name: str | None = None) -> PipelineStep:
    if not isinstance(raw, dict):
        raise _fail(f"{where} must be a mapping")
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise _fail(f"{where} has unknown keys {unknown}; known: {sorted(_STEP_KEYS)}")
    data = dict(raw)
    if "environment" in data:
        if "env" in data:
            raise _fail(f"{where} has both 'env' and 'environment'")
        data["env"] = data.pop("environment")
    if name is not None:
        data.setdefault("name", name)
    # YAML reads `FOO: 1` as an int; environment values are strings.
    if isinstance(data.get("env"), dict):
        data["env"] = {str(k): _scalar(v) for k, v in data["env"].items()}
    try:
        return PipelineStep.model_validate(data)
    except ValidationError as exc:
        raise _fail(_errors(exc, where)) from None


def parse_definition(text: str) -> tuple[list[PipelineStep], list[PipelineTrigger]]:
    if len(text) > MAX_DEFINITION_CHARS:
        raise _fail(f"longer than {MAX_DEFINITION_CHARS} characters")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise _fail("expected a mapping with a 'steps' key")
    unknown = sorted(set(doc) - {"steps", "triggers"})
    if unknown:
        raise _fail(f"unknown top-level keys {unknown}; known: ['steps', 'triggers']")
    raw_steps = doc.get("steps")
    if isinstance(raw_steps, dict):
        steps = [_step(v, f"steps.{k}", str(k)) for k, v in raw_steps.items()]
    elif isinstance(raw_steps, list):
        steps = [_step(v, f"steps[{i}]") for i, v in enumerate(raw_steps)]
    else:
        raise _fail("'steps' must be a non-empty list or mapping of steps")
    if not steps:
        raise _fail("'steps' is empty")
    names = [s.name for s in steps]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _fail(f"step names must be unique; repeated: {', '.join(dup)}")
    raw_triggers = doc.get("triggers") or []
    if not isinstance(raw_triggers, list):
        raise _fail("'triggers' must be a list")
    triggers = []
    for i, t in enumerate(raw_triggers):
        try:
            triggers.append(PipelineTrigger.model_validate(t))
        except ValidationError as exc:
            raise _fail(_errors(exc, f"triggers[{i}]")) from None
    return steps, triggers
