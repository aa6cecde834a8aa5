"""Catalog pipelines ↔ GitHub Actions workflow files.

:func:`render` writes a workflow for ``create_pipeline``'s steps and triggers: one job, so the steps
share one checkout and run in order, as the catalog describes them. Each step is a ``run`` step
(GitHub's default ``bash -e`` stops at the first failing command), with its ``env`` and timeout;
artifact globs become an ``actions/upload-artifact`` step. A job has one container, so steps may
name at most one ``image``. ``workflow_dispatch`` is always added: ``trigger_pipeline`` needs it.

:func:`triggers` reads the ``on:`` of an existing workflow back into catalog triggers, as far as
they map (push, tags, pull_request, schedule, workflow_dispatch).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import yaml

from mosaic.catalog.cicd import PipelineStep, PipelineTrigger
from mosaic.errors import InvalidRequest

CHECKOUT = "actions/checkout@v4"
UPLOAD = "actions/upload-artifact@v4"
_JOB_ID = re.compile(r"[^A-Za-z0-9_-]")


def job_id(name: str) -> str:
    """A workflow job id (``[A-Za-z_][A-Za-z0-9_-]*``) from a pipeline name."""
    cleaned = _JOB_ID.sub("_", name) or "pipeline"
    return cleaned if re.match(r"[A-Za-z_]", cleaned) else f"_{cleaned}"


def _on(triggers: Iterable[PipelineTrigger], default_events: Iterable[str]) -> dict[str, Any]:
    on: dict[str, Any] = {}
    given = list(triggers)
    if not given:
        for event in default_events:
            on[event] = {}
    for t in given:
        if t.event == "push":
            push = on.setdefault("push", {})
            if t.branches:
                push.setdefault("branches", []).extend(b for b in t.branches if b not in push["branches"])
        elif t.event == "tag":
            push = on.setdefault("push", {})
            push.setdefault("tags", []).extend(t.branches or ["*"])
        elif t.event == "pull_request":
            pr = on.setdefault("pull_request", {})
            if t.branches:
                pr.setdefault("branches", []).extend(b for b in t.branches if b not in pr["branches"])
        elif t.event == "schedule":
            on.setdefault("schedule", []).append({"cron": t.cron})
    push = on.get("push")
    # `tags` alone would stop branch pushes from triggering when a push trigger was also asked for.
    if isinstance(push, dict) and "tags" in push and "branches" not in push \
            and any(t.event == "push" for t in given):
        push["branches"] = ["**"]
    on["workflow_dispatch"] = {}
    return on


def render(name: str, steps: list[PipelineStep], triggers: list[PipelineTrigger], *,
           default_events: Iterable[str], runs_on: str) -> str:
    images = sorted({s.image for s in steps if s.image})
    if len(images) > 1:
        raise InvalidRequest(f"a GitHub Actions job runs in one container; the steps name {len(images)} "
                             f"images ({', '.join(images)})", details={"field": "steps"})
    body: list[dict[str, Any]] = [{"uses": CHECKOUT}]
    for step in steps:
        entry: dict[str, Any] = {"name": step.name, "run": "\n".join(step.commands)}
        if step.env:
            entry["env"] = dict(step.env)
        if step.timeout_s:
            entry["timeout-minutes"] = max(1, math.ceil(step.timeout_s / 60))
        body.append(entry)
        if step.artifacts:
            body.append({"name": f"upload {step.name} artifacts", "uses": UPLOAD,
                         "with": {"name": step.name, "path": "\n".join(step.artifacts)}})
    job: dict[str, Any] = {"runs-on": runs_on}
    if images:
        job["container"] = images[0]
    job["steps"] = body
    doc = {"name": name, "on": _on(triggers, default_events), "jobs": {job_id(name): job}}
    header = "# Written by MosAIc create_pipeline.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120)


def load(text: str) -> dict[Any, Any]:
    """Parse a workflow file; InvalidRequest when it is not one."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"the workflow definition is not valid YAML: {exc}",
                             details={"field": "definition"}) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict) or _on_value(doc) is None:
        raise InvalidRequest("a GitHub Actions workflow needs 'on' and 'jobs' mappings",
                             details={"field": "definition"})
    return doc


def _on_value(doc: dict[Any, Any]) -> Any:
    # YAML 1.1 (PyYAML) reads an unquoted `on` key as the boolean True.
    return doc.get("on", doc.get(True))


def _globs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def triggers(doc: dict[Any, Any]) -> list[PipelineTrigger]:
    on = _on_value(doc)
    if isinstance(on, str):
        on = {on: None}
    elif isinstance(on, list):
        on = {str(e): None for e in on}
    if not isinstance(on, dict):
        return []
    found: list[PipelineTrigger] = []
    for event, spec in on.items():
        cfg = spec if isinstance(spec, dict) else {}
        if event == "push":
            if "branches" in cfg or "tags" not in cfg:
                found.append(PipelineTrigger(event="push", branches=_globs(cfg.get("branches"))))
            if "tags" in cfg:
                found.append(PipelineTrigger(event="tag", branches=_globs(cfg.get("tags"))))
        elif event in ("pull_request", "pull_request_target"):
            found.append(PipelineTrigger(event="pull_request", branches=_globs(cfg.get("branches"))))
        elif event == "schedule" and isinstance(spec, list):
            found.extend(PipelineTrigger(event="schedule", cron=str(s["cron"]))
                         for s in spec if isinstance(s, dict) and s.get("cron"))
        elif event == "workflow_dispatch":
            found.append(PipelineTrigger(event="manual"))
    return found
