"""MCP tools from the catalog: names, schemas, annotations, filters, compact results, snapshot."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from mosaic.catalog.base import Page
from mosaic.catalog.git import Commit, FileCommit, PullRequest, Repository
from mosaic.catalog.registry import CATALOG
from mosaic.errors import InvalidRequest
from mosaic.interfaces.mcp.snapshot import render
from mosaic.interfaces.mcp.tools import ToolFilter, build_tools, compact_dump, full_dump, slim

SNAPSHOT = Path(__file__).parent / "snapshots" / "mcp_tools.json"
TOOLS = build_tools(CATALOG.values())


def test_one_tool_per_operation_with_schemas_and_annotations() -> None:
    assert set(TOOLS) == {op.tool_name for op in CATALOG.values()}
    for name, spec in TOOLS.items():
        op = spec.op
        assert name == f"{op.service}_{op.name}"
        # The params model's JSON schema, less the property titles that repeat property names.
        assert spec.input_schema == slim(op.params.model_json_schema() | {"type": "object"},
                                         frozenset({"title"}))
        assert spec.output_schema["type"] == "object"
        ann = spec.annotations()
        assert ann["readOnlyHint"] is op.is_read
        assert ann["destructiveHint"] is op.destructive
        assert ann["idempotentHint"] is (op.is_read or op.idempotent)
        assert spec.description.startswith(op.summary.rstrip())
        assert len(spec.description) < 400  # tool descriptions are read by a model: keep them short
        jsonschema.Draft202012Validator.check_schema(spec.input_schema)
        jsonschema.Draft202012Validator.check_schema(spec.compact_output_schema)
    assert TOOLS["git_delete_repository"].annotations()["destructiveHint"] is True
    assert "next_cursor" in TOOLS["git_list_branches"].description


def test_filters_toolsets_tools_and_read_only() -> None:
    everything = ToolFilter.parse(None, None, None, TOOLS)
    assert all(everything.allows(t) for t in TOOLS.values())

    git = ToolFilter.parse("git", None, False, TOOLS)
    assert {t.op.service for t in TOOLS.values() if git.allows(t)} == {"git"}

    ro = ToolFilter.parse("git,docs", None, "true", TOOLS)
    shown = [t for t in TOOLS.values() if ro.allows(t)]
    assert shown and all(t.op.is_read and t.op.service in ("git", "docs") for t in shown)

    named = ToolFilter.parse(None, "git_get_repository, git.get_file", None, TOOLS)
    assert {t.name for t in TOOLS.values() if named.allows(t)} == {"git_get_repository", "git_get_file"}

    # Toolsets and tools add up; read-only still hides writes that were named.
    both = ToolFilter.parse("docs", "git_create_repository,git_get_repository", True, TOOLS)
    names = {t.name for t in TOOLS.values() if both.allows(t)}
    assert "git_get_repository" in names and "git_create_repository" not in names
    assert all(TOOLS[n].op.service in ("docs", "git") for n in names)

    assert ToolFilter.parse("all", None, None, TOOLS).toolsets is None


def test_filter_errors_name_what_was_wrong() -> None:
    with pytest.raises(InvalidRequest, match=r"unknown toolset.*gti"):
        ToolFilter.parse("gti", None, None, TOOLS)
    with pytest.raises(InvalidRequest, match="git_get_repository"):
        ToolFilter.parse(None, "git_get_repositry", None, TOOLS)
    with pytest.raises(InvalidRequest, match="read-only"):
        ToolFilter.parse(None, None, "maybe", TOOLS)


def _repo(**kw: object) -> Repository:
    base: dict[str, object] = dict(provider="p", id="1", owner="acme", name="api", full_name="acme/api",
                                   raw={"big": "payload"})
    base.update(kw)
    return Repository.model_validate(base)


def test_compact_drops_raw_and_empty_optional_fields_but_keeps_required() -> None:
    repo = _repo(description="", clone_url=None, created_at=datetime(2024, 1, 2, tzinfo=UTC))
    data = compact_dump(repo)
    assert "raw" not in data and "description" not in data and "clone_url" not in data
    assert data["full_name"] == "acme/api" and data["private"] is False
    assert data["created_at"].startswith("2024-01-02T00:00:00")
    full = full_dump(repo)
    assert full["raw"] == {"big": "payload"} and full["description"] == ""

    # Nested models and pages are compacted too; a required empty string stays.
    commit = Commit(provider="p", id="c", sha="abc", message="", raw={"x": 1})
    fc = compact_dump(FileCommit(provider="p", id="f", path="a", sha="s", commit=commit, raw={"y": 2}))
    assert "raw" not in fc and "raw" not in fc["commit"] and fc["commit"]["message"] == ""
    assert "parents" not in fc["commit"]
    page = Page[PullRequest](items=[PullRequest(provider="p", id="1", number=1, title="t", head="h",
                                                base="main", raw={"z": 1})], next_cursor=None)
    pd = compact_dump(page)
    assert "next_cursor" not in pd and "raw" not in pd["items"][0]


def test_compact_output_validates_against_the_compact_output_schema() -> None:
    spec = TOOLS["git_get_repository"]
    jsonschema.validate(compact_dump(_repo()), spec.compact_output_schema)
    jsonschema.validate(full_dump(_repo()), spec.output_schema)
    assert "raw" not in spec.compact_output_schema["properties"]


def test_tools_list_stays_small_with_filters() -> None:
    """The point of toolsets/read-only: a client that needs a few tools pays for a few."""
    def size(flt: ToolFilter) -> int:
        return len(json.dumps([t.definition(compact=True) for t in TOOLS.values() if flt.allows(t)]))

    everything = size(ToolFilter())
    git_read = size(ToolFilter.parse("git", None, True, TOOLS))
    three = size(ToolFilter.parse(None, "git_get_repository,git_get_file,git_create_pull_request", None, TOOLS))
    assert git_read < everything / 4 and three < 8_000


def test_tool_schema_snapshot() -> None:
    """Every tool's schema is checked in: a diff here is an interface change for MCP clients.

    Regenerate on purpose with ``MOSAIC_UPDATE_SNAPSHOTS=1 pytest tests/interfaces -k snapshot``
    (or ``python -m mosaic.interfaces.mcp.snapshot --write tests/interfaces/snapshots/mcp_tools.json``).
    """
    current = render()
    if os.environ.get("MOSAIC_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_bytes(current)
    assert SNAPSHOT.exists(), "no snapshot yet: run with MOSAIC_UPDATE_SNAPSHOTS=1"
    expected = json.loads(SNAPSHOT.read_text())
    actual = json.loads(current)
    added = sorted(set(actual) - set(expected))
    removed = sorted(set(expected) - set(actual))
    changed = sorted(n for n in set(actual) & set(expected) if actual[n] != expected[n])
    assert not (added or removed or changed), (
        f"MCP tool schemas changed (added {added}, removed {removed}, changed {changed}). "
        "If intended, regenerate with MOSAIC_UPDATE_SNAPSHOTS=1.")
