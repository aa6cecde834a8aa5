"""The local docs provider, driven through the catalog exactly as the gateway drives it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mosaic.catalog import CATALOG
from mosaic.catalog.base import Deleted, Page
from mosaic.catalog.docs import Document, SearchResults, Space, Structure
from mosaic.config.schema import MosaicConfig, Orchestration, PluginSpec
from mosaic.errors import Conflict, InvalidRequest, NotFound, ProviderUnavailable
from mosaic.gateway.context import Principal, RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.manager import PluginManager
from mosaic.providers.local.docs import LocalDocsPlugin


class Docs:
    """Calls catalog operations on one plugin instance."""

    def __init__(self, plugin: LocalDocsPlugin) -> None:
        self.plugin = plugin

    async def __call__(self, op_name: str, ctx: RequestContext | None = None, **params: Any) -> Any:
        op = CATALOG[f"docs.{op_name}"]
        return await self.plugin.call(op, op.params(**params), ctx or RequestContext())

    async def doc(self, space: str, title: str, parent: Document | None = None, **kw: Any) -> Document:
        d: Document = await self("create_document", space_id=space, title=title,
                                 parent_id=parent.id if parent else None, **kw)
        return d

    async def tree(self, space: str) -> list[tuple[str, int, int]]:
        """(title, depth, position) depth-first: the whole shape of a space at a glance."""
        s: Structure = await self("get_structure", space_id=space)
        return [(n.title, n.depth, n.position) for n in s.nodes]


async def started(data_dir: Path, plugin_id: str = "local-docs", **config: Any) -> LocalDocsPlugin:
    plugin = LocalDocsPlugin(plugin_id)
    await plugin.initialize(LocalDocsPlugin.Config.model_validate({"dataDir": data_dir, **config}))
    await plugin.start()
    return plugin


async def shutdown(plugin: LocalDocsPlugin) -> None:
    await plugin.stop()
    await plugin.dispose()


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[Docs]:
    plugin = await started(tmp_path)
    try:
        yield Docs(plugin)
    finally:
        await shutdown(plugin)


@pytest.fixture
async def eng(docs: Docs) -> Space:
    space: Space = await docs("create_space", key="eng", name="Engineering", description="How we build")
    return space


# ---------------------------------------------------------------------------
# Catalog declarations


def test_catalog_declares_every_docs_operation() -> None:
    names = CATALOG.names("docs")
    assert names == {
        "create_space", "get_space", "list_spaces", "create_document", "get_document",
        "update_document", "delete_document", "list_documents", "move_document", "search_documents",
        "organize_content", "get_structure", "list_revisions", "get_revision",
    }
    assert LocalDocsPlugin.capabilities() == names
    for name in names:
        op = CATALOG[f"docs.{name}"]
        assert op.rest.path.startswith("/docs/")
        # Every path placeholder is a parameter, so REST can fill it.
        for part in op.rest.path.split("/"):
            if part.startswith("{"):
                assert part.strip("{}") in op.params.model_fields, (name, part)
        for stale in op.invalidates:
            assert stale in names and CATALOG[f"docs.{stale}"].is_read
        assert op.summary.endswith(".")
    assert CATALOG["docs.organize_content"].rest.method == "PUT"
    assert CATALOG["docs.organize_content"].rest.path == "/docs/spaces/{space_id}/structure"
    assert CATALOG["docs.delete_document"].destructive and CATALOG["docs.delete_document"].idempotent
    assert CATALOG["docs.create_document"].rest.status == 201
    assert not CATALOG["docs.create_document"].idempotent


def test_params_reject_bad_input() -> None:
    with pytest.raises(ValidationError, match="key"):
        CATALOG["docs.create_space"].params(key="no spaces/allowed", name="x")
    with pytest.raises(ValidationError, match="title must not be empty"):
        CATALOG["docs.create_document"].params(space_id="eng", title="   ")
    with pytest.raises(ValidationError, match="single line"):
        CATALOG["docs.create_document"].params(space_id="eng", title="two\nlines")
    with pytest.raises(ValidationError, match="whitespace"):
        CATALOG["docs.create_document"].params(space_id="eng", title="t", labels=["two words"])
    with pytest.raises(ValidationError, match="query must not be empty"):
        CATALOG["docs.search_documents"].params(query="  ")
    with pytest.raises(ValidationError, match="expected_version"):
        CATALOG["docs.update_document"].params(document_id="1", expected_version=0)
    with pytest.raises(ValidationError, match="extra"):
        CATALOG["docs.get_document"].params(document_id="1", bogus=True)


def test_config_uses_camel_case_and_requires_data_dir(tmp_path: Path) -> None:
    cfg = LocalDocsPlugin.Config.model_validate({"dataDir": str(tmp_path), "baseUrl": "http://h:1/v1/"})
    assert cfg.model_dump() == {"data_dir": tmp_path, "base_url": "http://h:1/v1"}
    with pytest.raises(ValidationError, match="dataDir"):
        LocalDocsPlugin.Config.model_validate({})
    with pytest.raises(ValidationError, match="extra"):
        LocalDocsPlugin.Config.model_validate({"dataDir": str(tmp_path), "dir": "x"})
    with pytest.raises(ValidationError, match="http"):
        LocalDocsPlugin.Config.model_validate({"dataDir": str(tmp_path), "baseUrl": "ftp://x"})


# ---------------------------------------------------------------------------
# Lifecycle, storage, health


async def test_database_file_wal_and_health(tmp_path: Path) -> None:
    plugin = LocalDocsPlugin("local-docs")
    await plugin.initialize(LocalDocsPlugin.Config.model_validate({"dataDir": tmp_path}))
    assert (await plugin.health_check()).status == "unhealthy"  # not started yet
    await plugin.start()
    try:
        health = await plugin.health_check()
        assert health.status == "healthy" and health.latency_ms is not None
        db_file = tmp_path / "docs" / "docs.sqlite3"
        assert db_file.is_file()
        with sqlite3.connect(db_file) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"spaces", "documents", "revisions", "documents_fts"} <= tables
    finally:
        await shutdown(plugin)
    with pytest.raises(ProviderUnavailable, match="not open"):
        await Docs(plugin)("list_spaces")


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    first = await started(tmp_path)
    await Docs(first)("create_space", key="eng", name="Engineering")
    doc = await Docs(first).doc("eng", "Runbook", body="restart the pager")
    await shutdown(first)

    second = await started(tmp_path)
    try:
        again: Document = await Docs(second)("get_document", document_id=doc.id)
        assert again.title == "Runbook" and again.body == "restart the pager"
        hits: SearchResults = await Docs(second)("search_documents", query="pager")
        assert [h.document_id for h in hits.hits] == [doc.id]
    finally:
        await shutdown(second)


async def test_two_instances_with_different_data_dirs_are_independent(tmp_path: Path) -> None:
    a = await started(tmp_path / "a", "docs-a")
    b = await started(tmp_path / "b", "docs-b")
    try:
        da, db = Docs(a), Docs(b)
        await da("create_space", key="eng", name="Engineering A")
        # The same key is free in the other instance.
        space_b: Space = await db("create_space", key="eng", name="Engineering B")
        assert space_b.provider == "docs-b" and space_b.name == "Engineering B"
        only_a = await da.doc("eng", "Only in A", body="alpha")
        with pytest.raises(NotFound):
            await db("get_document", document_id=only_a.id)
        assert (await db("search_documents", query="alpha")).hits == []
        assert [h.title for h in (await da("search_documents", query="alpha")).hits] == ["Only in A"]
        assert (await da("get_space", space_id="eng")).name == "Engineering A"
    finally:
        await shutdown(a)
        await shutdown(b)


# ---------------------------------------------------------------------------
# Spaces


async def test_spaces_create_get_conflict_and_missing(docs: Docs, eng: Space) -> None:
    assert (eng.id, eng.key, eng.name, eng.description, eng.provider) == (
        "eng", "eng", "Engineering", "How we build", "local-docs")
    assert eng.url is None and eng.raw["id"] == "eng" and eng.created_at is not None
    got: Space = await docs("get_space", space_id="eng")
    assert got == eng
    with pytest.raises(Conflict, match="already exists"):
        await docs("create_space", key="eng", name="Again")
    with pytest.raises(NotFound, match="'nope'"):
        await docs("get_space", space_id="nope")


async def test_urls_follow_base_url(tmp_path: Path) -> None:
    plugin = await started(tmp_path, baseUrl="http://127.0.0.1:8080/v1")
    try:
        d = Docs(plugin)
        space: Space = await d("create_space", key="ops", name="Ops")
        doc = await d.doc("ops", "Page")
        assert space.url == "http://127.0.0.1:8080/v1/docs/spaces/ops"
        assert doc.url == f"http://127.0.0.1:8080/v1/docs/documents/{doc.id}"
    finally:
        await shutdown(plugin)


async def test_list_spaces_paginates(docs: Docs) -> None:
    for key in ("c", "a", "e", "b", "d"):
        await docs("create_space", key=key, name=key.upper())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page: Page[Space] = await docs("list_spaces", limit=2, cursor=cursor)
        seen += [s.key for s in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["a", "b", "c", "d", "e"] and pages == 3


# ---------------------------------------------------------------------------
# Documents


async def test_create_and_get_document(docs: Docs, eng: Space) -> None:
    ctx = RequestContext(principal=Principal(id="alice"))
    guide: Document = await docs("create_document", ctx, space_id="eng", title="  Guide  ",
                                 body="# Guide\n\nWelcome.", labels=["howto", "onboarding", "howto"])
    assert (guide.title, guide.version, guide.position, guide.parent_id, guide.author) == (
        "Guide", 1, 0, None, "alice")
    assert guide.labels == ["howto", "onboarding"] and guide.format == "markdown"
    assert guide.path == [] and guide.raw["labels"] == ["howto", "onboarding"] and "body" not in guide.raw
    install = await docs.doc("eng", "Install", guide)
    linux = await docs.doc("eng", "Linux", install, body="apt install")
    got: Document = await docs("get_document", document_id=linux.id)
    assert got.body == "apt install" and got.space_id == "eng" and got.parent_id == install.id
    assert [(c.id, c.title) for c in got.path] == [(guide.id, "Guide"), (install.id, "Install")]
    assert got.created_at == got.updated_at


async def test_create_document_positions(docs: Docs, eng: Space) -> None:
    await docs.doc("eng", "B")
    await docs.doc("eng", "D")
    a = await docs.doc("eng", "A", position=0)
    c = await docs.doc("eng", "C", position=2)
    e = await docs.doc("eng", "E", position=99)  # past the end: appended
    assert (a.position, c.position, e.position) == (0, 2, 4)
    assert await docs.tree("eng") == [("A", 0, 0), ("B", 0, 1), ("C", 0, 2), ("D", 0, 3), ("E", 0, 4)]


async def test_create_document_errors(docs: Docs, eng: Space) -> None:
    await docs("create_space", key="other", name="Other")
    foreign = await docs.doc("other", "Elsewhere")
    with pytest.raises(NotFound, match="space 'nope'"):
        await docs.doc("nope", "X")
    with pytest.raises(NotFound, match="parent document '999'"):
        await docs("create_document", space_id="eng", title="X", parent_id="999")
    with pytest.raises(NotFound, match="parent document 'abc'"):
        await docs("create_document", space_id="eng", title="X", parent_id="abc")
    with pytest.raises(InvalidRequest, match="is in space 'other'"):
        await docs("create_document", space_id="eng", title="X", parent_id=foreign.id)
    assert await docs.tree("eng") == []


async def test_get_document_not_found(docs: Docs, eng: Space) -> None:
    for bad in ("12345", "abc", "-1", "0", "99999999999999999999999"):
        with pytest.raises(NotFound, match="not found"):
            await docs("get_document", document_id=bad)


async def test_update_document_versions_and_revisions(docs: Docs, eng: Space) -> None:
    doc = await docs.doc("eng", "Draft", body="v1 body", labels=["wip"], message="first cut")
    v2: Document = await docs("update_document", RequestContext(principal=Principal(id="bob")),
                              document_id=doc.id, body="v2 body", message="fix typo")
    assert (v2.version, v2.title, v2.body, v2.labels) == (2, "Draft", "v2 body", ["wip"])
    assert v2.updated_at is not None and doc.updated_at is not None and v2.updated_at >= doc.updated_at
    v3: Document = await docs("update_document", document_id=doc.id, title="Final", labels=[],
                              expected_version=2)
    assert (v3.version, v3.title, v3.body, v3.labels) == (3, "Final", "v2 body", [])

    # The same change again is a no-op: no new version.
    same: Document = await docs("update_document", document_id=doc.id, title="Final", labels=[])
    assert same.version == 3

    revs: Page[Any] = await docs("list_revisions", document_id=doc.id)
    assert [(r.version, r.title, r.body) for r in revs.items] == [
        (3, "Final", None), (2, "Draft", None), (1, "Draft", None)]
    assert [r.author for r in revs.items] == ["local", "bob", "local"]
    assert [r.message for r in revs.items] == ["", "fix typo", "first cut"]
    assert revs.items[0].id == f"{doc.id}@3"
    first = await docs("get_revision", document_id=doc.id, version=1)
    assert (first.title, first.body, first.labels, first.document_id) == ("Draft", "v1 body", ["wip"], doc.id)
    with pytest.raises(NotFound, match="no version 7 \\(latest is 3\\)"):
        await docs("get_revision", document_id=doc.id, version=7)
    with pytest.raises(NotFound):
        await docs("list_revisions", document_id="424242")
    with pytest.raises(NotFound):
        await docs("update_document", document_id="424242", body="x")


async def test_revisions_paginate(docs: Docs, eng: Space) -> None:
    doc = await docs.doc("eng", "Log", body="0")
    for i in range(1, 7):
        await docs("update_document", document_id=doc.id, body=str(i))
    versions: list[int] = []
    cursor = None
    for _ in range(10):
        page = await docs("list_revisions", document_id=doc.id, limit=3, cursor=cursor)
        versions += [r.version for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert versions == [7, 6, 5, 4, 3, 2, 1]


async def test_stale_expected_version_is_a_conflict(docs: Docs, eng: Space) -> None:
    doc = await docs.doc("eng", "Shared", body="start")
    await docs("update_document", document_id=doc.id, body="someone else", expected_version=1)
    with pytest.raises(Conflict) as err:
        await docs("update_document", document_id=doc.id, body="mine", expected_version=1)
    assert "version 2" in err.value.message and "expected version 1" in err.value.message
    assert err.value.details == {"document_id": doc.id, "current_version": 2, "expected_version": 1}
    assert (await docs("get_document", document_id=doc.id)).body == "someone else"


async def test_concurrent_updates_with_same_expected_version_one_wins(docs: Docs, eng: Space) -> None:
    doc = await docs.doc("eng", "Race", body="start")
    results = await asyncio.gather(
        docs("update_document", document_id=doc.id, body="left", expected_version=1),
        docs("update_document", document_id=doc.id, body="right", expected_version=1),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, Document)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(conflicts) == 1
    current: Document = await docs("get_document", document_id=doc.id)
    assert current.version == 2 and current.body == wins[0].body
    assert len((await docs("list_revisions", document_id=doc.id)).items) == 2


async def test_concurrent_updates_across_instances_on_one_file(tmp_path: Path) -> None:
    # A reload briefly runs two instances on the same data dir: the write lock still holds.
    a = await started(tmp_path, "old")
    b = await started(tmp_path, "new")
    try:
        await Docs(a)("create_space", key="eng", name="Eng")
        doc = await Docs(a).doc("eng", "Race")
        results = await asyncio.gather(
            Docs(a)("update_document", document_id=doc.id, body="a", expected_version=1),
            Docs(b)("update_document", document_id=doc.id, body="b", expected_version=1),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "Document"]
    finally:
        await shutdown(a)
        await shutdown(b)


async def test_delete_document(docs: Docs, eng: Space) -> None:
    a = await docs.doc("eng", "A")
    b = await docs.doc("eng", "B", body="unique-word-bravo")
    await docs.doc("eng", "C")
    gone: Deleted = await docs("delete_document", document_id=b.id)
    assert gone == Deleted(provider="local-docs", id=b.id, deleted=True)
    # Siblings close the gap.
    assert await docs.tree("eng") == [("A", 0, 0), ("C", 0, 1)]
    with pytest.raises(NotFound):
        await docs("get_document", document_id=b.id)
    with pytest.raises(NotFound):
        await docs("get_revision", document_id=b.id, version=1)
    assert (await docs("search_documents", query="unique-word-bravo")).hits == []
    # Idempotent: deleting again (or a never-existing id) reports nothing deleted, no error.
    again: Deleted = await docs("delete_document", document_id=b.id)
    assert again.deleted is False
    assert (await docs("delete_document", document_id="not-an-id")).deleted is False
    # Ids are never reused.
    assert int((await docs.doc("eng", "D")).id) > int(b.id) > int(a.id)


async def test_delete_with_children_needs_recursive(docs: Docs, eng: Space) -> None:
    root = await docs.doc("eng", "Root")
    child = await docs.doc("eng", "Child", root, body="findme")
    grandchild = await docs.doc("eng", "Grandchild", child, body="findme too")
    await docs("update_document", document_id=grandchild.id, body="findme again")
    sibling = await docs.doc("eng", "Sibling")
    before = await docs.tree("eng")

    with pytest.raises(Conflict, match="has 1 child document") as err:
        await docs("delete_document", document_id=root.id)
    assert err.value.details["descendants"] == 2
    assert await docs.tree("eng") == before

    res: Deleted = await docs("delete_document", document_id=root.id, recursive=True)
    assert res.deleted
    assert await docs.tree("eng") == [("Sibling", 0, 0)]
    for gone in (root, child, grandchild):
        with pytest.raises(NotFound):
            await docs("get_document", document_id=gone.id)
    assert (await docs("search_documents", query="findme")).hits == []
    assert (await docs("get_document", document_id=sibling.id)).position == 0


async def test_list_documents_paginates_over_many_pages(docs: Docs, eng: Space) -> None:
    await docs("create_space", key="other", name="Other")
    await docs.doc("other", "Not listed")
    parent = await docs.doc("eng", "Parent")
    created = [parent] + [await docs.doc("eng", f"Doc {i}", parent if i % 2 else None) for i in range(7)]
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        page: Page[Document] = await docs("list_documents", space_id="eng", limit=3, cursor=cursor)
        assert all(d.body is None for d in page.items)
        ids += [d.id for d in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3 and ids == [d.id for d in created]

    # A document added between pages still shows up later; none repeats.
    first: Page[Document] = await docs("list_documents", space_id="eng", limit=4)
    late = await docs.doc("eng", "Late")
    rest: Page[Document] = await docs("list_documents", space_id="eng", limit=100, cursor=first.next_cursor)
    assert [d.id for d in first.items + rest.items] == [d.id for d in created] + [late.id]


async def test_list_documents_children_top_level_and_bodies(docs: Docs, eng: Space) -> None:
    parent = await docs.doc("eng", "Parent", body="p")
    kids = [await docs.doc("eng", f"Kid {i}", parent, body=f"k{i}") for i in range(5)]
    await docs("move_document", document_id=kids[4].id, parent_id=parent.id, position=0)
    await docs.doc("eng", "Top two")

    titles: list[str] = []
    cursor = None
    while True:
        page: Page[Document] = await docs("list_documents", space_id="eng", parent_id=parent.id,
                                          limit=2, cursor=cursor, include_body=True)
        titles += [d.title for d in page.items]
        assert all(d.body == "k" + d.title[-1] for d in page.items)
        assert all([c.id for c in d.path] == [parent.id] for d in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert titles == ["Kid 4", "Kid 0", "Kid 1", "Kid 2", "Kid 3"]

    top: Page[Document] = await docs("list_documents", space_id="eng", top_level=True)
    assert [d.title for d in top.items] == ["Parent", "Top two"]

    with pytest.raises(InvalidRequest, match="not both"):
        await docs("list_documents", space_id="eng", parent_id=parent.id, top_level=True)
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        await docs("list_documents", space_id="eng", cursor="garbage!")
    # A cursor from another listing is refused, not misread.
    first: Page[Document] = await docs("list_documents", space_id="eng", limit=1)
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        await docs("list_documents", space_id="eng", parent_id=parent.id, cursor=first.next_cursor)
    with pytest.raises(NotFound):
        await docs("list_documents", space_id="nope")
    with pytest.raises(NotFound):
        await docs("list_documents", space_id="eng", parent_id="31337")


# ---------------------------------------------------------------------------
# Moving and organizing


async def test_move_document_within_and_across_parents(docs: Docs, eng: Space) -> None:
    a = await docs.doc("eng", "A")
    b = await docs.doc("eng", "B")
    c = await docs.doc("eng", "C")
    a1 = await docs.doc("eng", "A1", a)

    moved: Document = await docs("move_document", document_id=c.id, position=0)
    assert moved.position == 0 and moved.parent_id is None
    assert await docs.tree("eng") == [("C", 0, 0), ("A", 0, 1), ("A1", 1, 0), ("B", 0, 2)]

    moved = await docs("move_document", document_id=b.id, parent_id=a.id, position=0)
    assert (moved.parent_id, moved.position, [p.title for p in moved.path]) == (a.id, 0, ["A"])
    assert await docs.tree("eng") == [("C", 0, 0), ("A", 0, 1), ("B", 1, 0), ("A1", 1, 1)]

    # Moving a subtree carries its children; omitting parent_id moves to the top level.
    await docs("move_document", document_id=a1.id, parent_id=b.id)
    moved = await docs("move_document", document_id=b.id)
    assert moved.parent_id is None and moved.position == 2
    assert await docs.tree("eng") == [("C", 0, 0), ("A", 0, 1), ("B", 0, 2), ("A1", 1, 0)]

    # Repeating a move changes nothing.
    again: Document = await docs("move_document", document_id=b.id)
    assert again.position == 2
    assert await docs.tree("eng") == [("C", 0, 0), ("A", 0, 1), ("B", 0, 2), ("A1", 1, 0)]


async def test_move_document_refuses_cycles(docs: Docs, eng: Space) -> None:
    a = await docs.doc("eng", "A")
    b = await docs.doc("eng", "B", a)
    c = await docs.doc("eng", "C", b)
    before = await docs.tree("eng")
    with pytest.raises(InvalidRequest, match="own descendant"):
        await docs("move_document", document_id=a.id, parent_id=c.id)
    with pytest.raises(InvalidRequest, match="under itself"):
        await docs("move_document", document_id=a.id, parent_id=a.id)
    with pytest.raises(NotFound):
        await docs("move_document", document_id=a.id, parent_id="777")
    with pytest.raises(NotFound):
        await docs("move_document", document_id="777")
    with pytest.raises(NotFound, match="space 'nope'"):
        await docs("move_document", document_id=a.id, space_id="nope")
    assert await docs.tree("eng") == before


async def test_move_document_to_another_space_carries_subtree(docs: Docs, eng: Space) -> None:
    await docs("create_space", key="ops", name="Ops")
    keep = await docs.doc("eng", "Keep")
    a = await docs.doc("eng", "A")
    a1 = await docs.doc("eng", "A1", a, body="deepword")
    ops_root = await docs.doc("ops", "Ops root")
    with pytest.raises(InvalidRequest, match="is in space 'ops'"):
        await docs("move_document", document_id=a.id, parent_id=ops_root.id)

    moved: Document = await docs("move_document", document_id=a.id, space_id="ops", parent_id=ops_root.id)
    assert moved.space_id == "ops" and moved.parent_id == ops_root.id
    assert (await docs("get_document", document_id=a1.id)).space_id == "ops"
    assert await docs.tree("eng") == [("Keep", 0, 0)]
    assert await docs.tree("ops") == [("Ops root", 0, 0), ("A", 1, 0), ("A1", 2, 0)]
    hits: SearchResults = await docs("search_documents", query="deepword", space_id="ops")
    assert [h.document_id for h in hits.hits] == [a1.id] and hits.hits[0].space_id == "ops"
    assert (await docs("search_documents", query="deepword", space_id="eng")).hits == []
    assert (await docs("get_document", document_id=keep.id)).position == 0


async def test_organize_content_applies_whole_hierarchy(docs: Docs, eng: Space) -> None:
    a, b, c, d = [await docs.doc("eng", t) for t in "ABCD"]
    result: Structure = await docs("organize_content", space_id="eng", entries=[
        {"document_id": d.id, "parent_id": None, "position": 0},
        {"document_id": b.id, "parent_id": d.id, "position": 1},
        {"document_id": c.id, "parent_id": d.id, "position": 0},
        {"document_id": a.id, "parent_id": c.id, "position": 0},
    ])
    shape = [("D", 0, 0), ("C", 1, 0), ("A", 2, 0), ("B", 1, 1)]
    assert [(n.title, n.depth, n.position) for n in result.nodes] == shape
    assert result.space_id == "eng" and result.provider == "local-docs"
    assert await docs.tree("eng") == shape
    assert [p.title for p in (await docs("get_document", document_id=a.id)).path] == ["D", "C"]

    # The structure's nodes can be sent straight back: applying it again changes nothing.
    entries = [{"document_id": n.document_id, "parent_id": n.parent_id, "position": n.position}
               for n in result.nodes]
    again: Structure = await docs("organize_content", space_id="eng", entries=entries)
    assert again.nodes == result.nodes


async def test_organize_content_partial_keeps_others_in_order(docs: Docs, eng: Space) -> None:
    a, _b, _c, d = [await docs.doc("eng", t) for t in "ABCD"]
    x = await docs.doc("eng", "X", a)
    await docs("organize_content", space_id="eng", entries=[
        {"document_id": d.id, "parent_id": None, "position": 1},
        {"document_id": x.id, "parent_id": None, "position": 0},
    ])
    assert await docs.tree("eng") == [("X", 0, 0), ("D", 0, 1), ("A", 0, 2), ("B", 0, 3), ("C", 0, 4)]


async def test_organize_content_is_all_or_nothing(docs: Docs, eng: Space) -> None:
    await docs("create_space", key="other", name="Other")
    foreign = await docs.doc("other", "Foreign")
    a = await docs.doc("eng", "A")
    b = await docs.doc("eng", "B", a)
    c = await docs.doc("eng", "C")
    before = await docs.tree("eng")

    with pytest.raises(InvalidRequest, match="its own ancestor") as err:
        await docs("organize_content", space_id="eng", entries=[
            {"document_id": c.id, "parent_id": None, "position": 0},   # valid on its own
            {"document_id": a.id, "parent_id": b.id, "position": 0},   # a under b under a
        ])
    assert sorted(err.value.details["cycle"]) == sorted([a.id, b.id])
    assert await docs.tree("eng") == before

    bad_batches: list[tuple[list[dict[str, Any]], str]] = [
        ([{"document_id": c.id, "parent_id": None, "position": 0},
          {"document_id": "4040", "parent_id": None, "position": 0}], "not found in this space: 4040"),
        ([{"document_id": c.id, "parent_id": "nope", "position": 0}], "not found in this space: nope"),
        ([{"document_id": foreign.id, "parent_id": None, "position": 0}], "not found in this space"),
        ([{"document_id": c.id, "parent_id": None, "position": 1},
          {"document_id": c.id, "parent_id": a.id, "position": 0}], "more than once"),
        ([{"document_id": c.id, "parent_id": c.id, "position": 0}], "its own ancestor"),
    ]
    for entries, message in bad_batches:
        with pytest.raises(InvalidRequest, match=message):
            await docs("organize_content", space_id="eng", entries=entries)
        assert await docs.tree("eng") == before
    assert await docs.tree("other") == [("Foreign", 0, 0)]
    with pytest.raises(NotFound):
        await docs("organize_content", space_id="nope",
                   entries=[{"document_id": a.id, "parent_id": None, "position": 0}])


async def test_get_structure_of_empty_and_missing_space(docs: Docs, eng: Space) -> None:
    empty: Structure = await docs("get_structure", space_id="eng")
    assert empty.nodes == [] and empty.id == "eng"
    with pytest.raises(NotFound):
        await docs("get_structure", space_id="nope")


# ---------------------------------------------------------------------------
# Search


async def test_search_ranks_title_matches_first_with_highlighted_snippets(docs: Docs, eng: Space) -> None:
    body_once = await docs.doc("eng", "Networking notes",
                               body="Some text. Later we mention kubernetes briefly among other things.")
    title_hit = await docs.doc("eng", "Kubernetes handbook", body="Clusters, pods and deployments.")
    await docs.doc("eng", "Unrelated", body="Nothing to see here.")
    res: SearchResults = await docs("search_documents", query="kubernetes")
    assert [h.document_id for h in res.hits] == [title_hit.id, body_once.id]
    assert res.total == 2 and res.next_cursor is None and res.query == "kubernetes"
    assert res.hits[0].score > res.hits[1].score > 0
    assert res.hits[0].title == "Kubernetes handbook" and res.hits[0].space_id == "eng"
    assert "<mark>Kubernetes</mark>" in res.hits[0].snippet
    assert "<mark>kubernetes</mark>" in res.hits[1].snippet

    # Every word must match; stemming finds other forms of a word.
    both: SearchResults = await docs("search_documents", query="kubernetes pods")
    assert [h.document_id for h in both.hits] == [title_hit.id]
    stem: SearchResults = await docs("search_documents", query="deployment")
    assert [h.document_id for h in stem.hits] == [title_hit.id]


async def test_search_follows_updates(docs: Docs, eng: Space) -> None:
    doc = await docs.doc("eng", "Page", body="the old zebra")
    await docs("update_document", document_id=doc.id, body="the new giraffe")
    assert (await docs("search_documents", query="zebra")).hits == []
    assert [h.document_id for h in (await docs("search_documents", query="giraffe")).hits] == [doc.id]
    await docs("update_document", document_id=doc.id, title="Giraffe facts")
    hits = (await docs("search_documents", query="giraffe")).hits
    assert [h.title for h in hits] == ["Giraffe facts"]


@pytest.mark.parametrize("query", [
    '"foo" AND (', "*", '"', '""', "'", 'foo"bar', "NEAR", "NEAR(foo bar, 2)", "foo NEAR/2 bar",
    "title:foo", "^foo", "foo OR", "NOT", "AND OR NOT", ")(", "{title body}: foo", "foo*", "-foo",
    "+", "🙂", "\\", "%_", "'; DROP TABLE documents; --", "foo\x00bar",
])
async def test_search_never_fails_on_hostile_input(docs: Docs, eng: Space, query: str) -> None:
    await docs.doc("eng", "Foo and bar", body='Here foo sits NEAR bar, "quoted" and title: foo.')
    res: SearchResults = await docs("search_documents", query=query)
    assert res.query == query.strip()
    assert all(h.title == "Foo and bar" for h in res.hits)
    # Words are searched as words: operators are just text.
    assert len((await docs("search_documents", query='"foo" AND (')).hits) == 1
    assert await docs.tree("eng") == [("Foo and bar", 0, 0)]


async def test_search_paginates_and_filters(docs: Docs, eng: Space) -> None:
    await docs("create_space", key="ops", name="Ops")
    expected = [await docs.doc("eng", f"Page {i}", body="common " * (i + 1)) for i in range(7)]
    await docs.doc("ops", "Ops page", body="common")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        res: SearchResults = await docs("search_documents", query="common", space_id="eng",
                                        limit=3, cursor=cursor)
        assert res.total == 7
        seen += [h.document_id for h in res.hits]
        pages += 1
        cursor = res.next_cursor
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(d.id for d in expected) and len(set(seen)) == 7
    everywhere: SearchResults = await docs("search_documents", query="common", limit=100)
    assert everywhere.total == 8
    with pytest.raises(NotFound):
        await docs("search_documents", query="common", space_id="nope")
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        await docs("search_documents", query="common", cursor="AAAA")


# ---------------------------------------------------------------------------
# Through the gateway: entry point, params validation and typed errors


async def test_through_the_gateway(tmp_path: Path) -> None:
    spec = PluginSpec(id="docs-local", type="docs", provider="local", default=True,
                      config={"dataDir": str(tmp_path)})
    gw = Gateway(MosaicConfig(orchestration=Orchestration(plugins=[spec])), PluginManager())
    await gw.start()
    try:
        space = await gw.execute("docs.create_space", {"key": "eng", "name": "Engineering"})
        assert isinstance(space, Space) and space.provider == "docs-local"
        doc = await gw.execute("docs_create_document", {"space_id": "eng", "title": "Hello", "body": "world"})
        assert isinstance(doc, Document)
        res = await gw.execute("docs.search_documents", {"query": "world"})
        assert isinstance(res, SearchResults) and [h.document_id for h in res.hits] == [doc.id]
        with pytest.raises(InvalidRequest, match="query"):
            await gw.execute("docs.search_documents", {"query": "   "})
        with pytest.raises(InvalidRequest, match="title"):
            await gw.execute("docs.create_document", {"space_id": "eng", "title": ""})
        with pytest.raises(NotFound):
            await gw.execute("docs.get_document", {"document_id": "999"})
    finally:
        await gw.stop()
