"""The embedded docs provider: spaces and markdown documents in SQLite, searched with FTS5.

Every document keeps all its versions; positions among siblings are kept dense (0..n-1)
so that ``position`` is always the document's index in its parent's list of children.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mosaic.catalog.base import Deleted, ListParams, Page
from mosaic.catalog.docs import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Breadcrumb,
    CreateDocumentParams,
    CreateSpaceParams,
    DeleteDocumentParams,
    Document,
    DocumentParams,
    GetRevisionParams,
    GetStructureParams,
    ListDocumentsParams,
    ListRevisionsParams,
    MoveDocumentParams,
    OrganizeContentParams,
    Revision,
    SearchDocumentsParams,
    SearchHit,
    SearchResults,
    Space,
    SpaceParams,
    Structure,
    UpdateDocumentParams,
    stale_version,
)
from mosaic.errors import Conflict, InvalidRequest, NotFound, PluginError
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.providers.local.docs_paging import decode_cursor, encode_cursor
from mosaic.providers.local.docs_schema import database_path
from mosaic.providers.local.docs_search import fts_query
from mosaic.providers.local.docs_store import (
    DOC_COLUMNS,
    DocsStore,
    Tx,
    breadcrumbs,
    child_count,
    close_gap,
    document_row,
    dump_labels,
    load_labels,
    now,
    open_gap,
    parse_id,
    space_nodes,
    space_row,
    subtree,
)
from mosaic.providers.local.docs_tree import plan_organization, walk

# Title matches count ten times a body match.
_BM25 = "bm25(documents_fts, 10.0, 1.0)"
_SNIPPET = f"snippet(documents_fts, -1, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 24)"


class LocalDocsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    data_dir: Path = Field(alias="dataDir", description="Directory holding docs/docs.sqlite3.")
    base_url: str | None = Field(
        default=None, alias="baseUrl",
        description="Where these objects are served (e.g. the gateway's REST base); sets `url`.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v.rstrip("/")


def _missing_document(document_id: str) -> NotFound:
    return NotFound(f"document {document_id!r} not found", details={"document_id": document_id})


def _missing_space(space_id: str) -> NotFound:
    return NotFound(f"space {space_id!r} not found", details={"space_id": space_id})


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


class LocalDocsPlugin(ProviderPlugin):
    provider = "local"
    service = "docs"
    name = "Local docs (SQLite FTS5)"
    version = "0.1.0"
    Config = LocalDocsConfig

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self._cfg: LocalDocsConfig | None = None
        self._store: DocsStore | None = None

    # -- lifecycle ----------------------------------------------------------
    async def initialize(self, config: BaseModel) -> None:
        await super().initialize(config)
        if not isinstance(config, LocalDocsConfig):
            raise PluginError(f"{self.id}: expected LocalDocsConfig, got {type(config).__name__}")
        self._cfg = config
        self._store = DocsStore(database_path(config.data_dir))

    async def start(self) -> None:
        await self.store.open()
        await super().start()

    async def dispose(self) -> None:
        if self._store is not None:
            await self._store.close()
        await super().dispose()

    async def health_check(self) -> HealthStatus:
        if not self.started or self._store is None:
            return await super().health_check()
        t0 = time.perf_counter()
        try:
            await self._store.ping()
        except Exception as exc:  # a health probe reports failures, it never raises them
            return HealthStatus(status="unhealthy", detail=f"docs database: {type(exc).__name__}: {exc}")
        return HealthStatus(status="healthy", latency_ms=round((time.perf_counter() - t0) * 1000, 3))

    @property
    def store(self) -> DocsStore:
        if self._store is None:
            raise PluginError(f"{self.id}: initialize() was not called")
        return self._store

    # -- mapping ------------------------------------------------------------
    def _url(self, kind: str, ident: str) -> str | None:
        base = self._cfg.base_url if self._cfg else None
        return f"{base}/docs/{kind}/{ident}" if base else None

    def _space(self, row: sqlite3.Row) -> Space:
        return Space(
            provider=self.id, id=row["id"], url=self._url("spaces", row["id"]), raw=dict(row),
            key=row["id"], name=row["name"], description=row["description"],
            created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]),
        )

    def _document(self, row: sqlite3.Row, path: list[Breadcrumb]) -> Document:
        raw: dict[str, Any] = {k: row[k] for k in row.keys() if k != "body"}  # noqa: SIM118
        raw["labels"] = load_labels(row["labels"])
        doc_id = str(row["id"])
        return Document(
            provider=self.id, id=doc_id, url=self._url("documents", doc_id), raw=raw,
            space_id=row["space_id"],
            parent_id=None if row["parent_id"] is None else str(row["parent_id"]),
            title=row["title"], body=row["body"] if "body" in row.keys() else None,  # noqa: SIM118
            format=row["format"], version=row["version"], position=row["position"], path=path,
            author=row["author"], labels=raw["labels"],
            created_at=_ts(row["created_at"]), updated_at=_ts(row["updated_at"]),
        )

    def _revision(self, row: sqlite3.Row) -> Revision:
        raw: dict[str, Any] = {k: row[k] for k in row.keys() if k != "body"}  # noqa: SIM118
        raw["labels"] = load_labels(row["labels"])
        doc_id = str(row["document_id"])
        return Revision(
            provider=self.id, id=f"{doc_id}@{row['version']}",
            url=self._url("documents", f"{doc_id}/revisions/{row['version']}"), raw=raw,
            document_id=doc_id, version=row["version"], title=row["title"],
            body=row["body"] if "body" in row.keys() else None,  # noqa: SIM118
            format=row["format"], labels=raw["labels"], author=row["author"],
            message=row["message"], created_at=_ts(row["created_at"]),
        )

    async def _load_document(self, tx: Tx, pk: int, document_id: str) -> Document:
        row = await document_row(tx, pk)
        if row is None:
            raise _missing_document(document_id)
        return self._document(row, (await breadcrumbs(tx, [pk]))[pk])

    async def _require_space(self, tx: Tx, space_id: str) -> sqlite3.Row:
        row = await space_row(tx, space_id)
        if row is None:
            raise _missing_space(space_id)
        return row

    async def _structure(self, tx: Tx, space: sqlite3.Row) -> Structure:
        nodes = await space_nodes(tx, space["id"])
        return Structure(provider=self.id, id=space["id"], url=self._url("spaces", space["id"]),
                         raw={"documents": len(nodes)}, space_id=space["id"], nodes=walk(nodes))

    async def _parent_in(self, tx: Tx, parent_id: str | None, space_id: str) -> int | None:
        """The key of ``parent_id`` after checking it is a document of ``space_id``."""
        if parent_id is None:
            return None
        pk = parse_id(parent_id)
        row = None if pk is None else await document_row(tx, pk, body=False)
        if pk is None or row is None:
            raise NotFound(f"parent document {parent_id!r} not found", details={"parent_id": parent_id})
        if row["space_id"] != space_id:
            raise InvalidRequest(
                f"parent document {parent_id!r} is in space {row['space_id']!r}, not {space_id!r}",
                details={"parent_id": parent_id, "space_id": space_id},
            )
        return pk

    # -- spaces -------------------------------------------------------------
    async def create_space(self, p: CreateSpaceParams, ctx: RequestContext) -> Space:
        async with self.store.write() as tx:
            if await space_row(tx, p.key) is not None:
                raise Conflict(f"a space with key {p.key!r} already exists", details={"key": p.key})
            ts = now()
            await tx.run("INSERT INTO spaces (id, name, description, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?)", p.key, p.name, p.description, ts, ts)
            row = await self._require_space(tx, p.key)
        return self._space(row)

    async def get_space(self, p: SpaceParams, ctx: RequestContext) -> Space:
        async with self.store.read() as tx:
            row = await self._require_space(tx, p.space_id)
        return self._space(row)

    async def list_spaces(self, p: ListParams, ctx: RequestContext) -> Page[Space]:
        after = decode_cursor("spaces", p.cursor, (str,))
        async with self.store.read() as tx:
            rows = await tx.all("SELECT * FROM spaces WHERE id > ? ORDER BY id LIMIT ?",
                                after[0] if after else "", p.limit + 1)
        more = len(rows) > p.limit
        rows = rows[: p.limit]
        return Page[Space](items=[self._space(r) for r in rows],
                           next_cursor=encode_cursor("spaces", (rows[-1]["id"],)) if more else None)

    # -- documents ----------------------------------------------------------
    async def create_document(self, p: CreateDocumentParams, ctx: RequestContext) -> Document:
        async with self.store.write() as tx:
            await self._require_space(tx, p.space_id)
            parent = await self._parent_in(tx, p.parent_id, p.space_id)
            count = await child_count(tx, p.space_id, parent)
            position = count if p.position is None else min(p.position, count)
            await open_gap(tx, p.space_id, parent, position)
            ts, author, labels = now(), ctx.principal.id, dump_labels(p.labels)
            pk = await tx.insert(
                "INSERT INTO documents (space_id, parent_id, position, title, body, format, labels, "
                "version, author, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                p.space_id, parent, position, p.title, p.body, p.format, labels, author, ts, ts,
            )
            await tx.run(
                "INSERT INTO revisions (document_id, version, title, body, format, labels, author, "
                "message, created_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
                pk, p.title, p.body, p.format, labels, author, p.message, ts,
            )
            return await self._load_document(tx, pk, str(pk))

    async def get_document(self, p: DocumentParams, ctx: RequestContext) -> Document:
        pk = parse_id(p.document_id)
        if pk is None:
            raise _missing_document(p.document_id)
        async with self.store.read() as tx:
            return await self._load_document(tx, pk, p.document_id)

    async def update_document(self, p: UpdateDocumentParams, ctx: RequestContext) -> Document:
        pk = parse_id(p.document_id)
        if pk is None:
            raise _missing_document(p.document_id)
        async with self.store.write() as tx:
            row = await document_row(tx, pk)
            if row is None:
                raise _missing_document(p.document_id)
            current = int(row["version"])
            if p.expected_version is not None and p.expected_version != current:
                raise stale_version(p.document_id, p.expected_version, current)
            title = row["title"] if p.title is None else p.title
            body = row["body"] if p.body is None else p.body
            fmt = row["format"] if p.format is None else p.format
            labels = row["labels"] if p.labels is None else dump_labels(p.labels)
            if (title, body, fmt, labels) == (row["title"], row["body"], row["format"], row["labels"]):
                # Nothing changes: no new version, so repeating an update is harmless.
                return self._document(row, (await breadcrumbs(tx, [pk]))[pk])
            ts, author, version = now(), ctx.principal.id, current + 1
            changed = await tx.run(
                "UPDATE documents SET title = ?, body = ?, format = ?, labels = ?, version = ?, "
                "updated_at = ? WHERE id = ? AND version = ?",
                title, body, fmt, labels, version, ts, pk, current,
            )
            if changed != 1:  # pragma: no cover - the write lock makes this unreachable
                raise Conflict(f"document {p.document_id!r} changed during the update; retry")
            await tx.run(
                "INSERT INTO revisions (document_id, version, title, body, format, labels, author, "
                "message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                pk, version, title, body, fmt, labels, author, p.message, ts,
            )
            return await self._load_document(tx, pk, p.document_id)

    async def delete_document(self, p: DeleteDocumentParams, ctx: RequestContext) -> Deleted:
        pk = parse_id(p.document_id)
        if pk is None:
            return Deleted(provider=self.id, id=p.document_id, deleted=False)
        async with self.store.write() as tx:
            row = await document_row(tx, pk, body=False)
            if row is None:
                return Deleted(provider=self.id, id=p.document_id, deleted=False)
            ids = await subtree(tx, pk)
            if len(ids) > 1 and not p.recursive:
                children = await child_count(tx, row["space_id"], pk)
                raise Conflict(
                    f"document {p.document_id!r} has {children} child document(s) "
                    f"({len(ids) - 1} descendant(s) in all); move or delete them first, "
                    "or pass recursive=true to delete the whole subtree",
                    details={"document_id": p.document_id, "children": children,
                             "descendants": len(ids) - 1},
                )
            # One statement: the parent_id foreign key is checked once the subtree is gone.
            await tx.run(f"DELETE FROM documents WHERE id IN ({','.join('?' * len(ids))})", *ids)
            await close_gap(tx, row["space_id"], row["parent_id"], row["position"])
        return Deleted(provider=self.id, id=p.document_id, deleted=True)

    async def list_documents(self, p: ListDocumentsParams, ctx: RequestContext) -> Page[Document]:
        if p.parent_id is not None and p.top_level:
            raise InvalidRequest("pass either parent_id or top_level=true, not both")
        cols = DOC_COLUMNS + (", body" if p.include_body else "")
        key: tuple[str, ...]  # columns of the sort key, stored in the cursor
        async with self.store.read() as tx:
            await self._require_space(tx, p.space_id)
            if p.parent_id is not None or p.top_level:
                parent = await self._parent_in(tx, p.parent_id, p.space_id)
                after = decode_cursor("children", p.cursor, (int, int)) or (-1, 0)
                rows = await tx.all(
                    f"SELECT {cols} FROM documents WHERE space_id = ? AND parent_id IS ? "
                    "AND (position, id) > (?, ?) ORDER BY position, id LIMIT ?",
                    p.space_id, parent, *after, p.limit + 1,
                )
                kind, key = "children", ("position", "id")
            else:
                start = decode_cursor("space", p.cursor, (int,)) or (0,)
                rows = await tx.all(
                    f"SELECT {cols} FROM documents WHERE space_id = ? AND id > ? ORDER BY id LIMIT ?",
                    p.space_id, *start, p.limit + 1,
                )
                kind, key = "space", ("id",)
            more = len(rows) > p.limit
            rows = rows[: p.limit]
            paths = await breadcrumbs(tx, [r["id"] for r in rows])
        cursor = encode_cursor(kind, tuple(rows[-1][k] for k in key)) if more else None
        return Page[Document](items=[self._document(r, paths[r["id"]]) for r in rows], next_cursor=cursor)

    async def move_document(self, p: MoveDocumentParams, ctx: RequestContext) -> Document:
        pk = parse_id(p.document_id)
        if pk is None:
            raise _missing_document(p.document_id)
        async with self.store.write() as tx:
            row = await document_row(tx, pk, body=False)
            if row is None:
                raise _missing_document(p.document_id)
            target = p.space_id or row["space_id"]
            if target != row["space_id"]:
                await self._require_space(tx, target)
            parent = await self._parent_in(tx, p.parent_id, target)
            ids = await subtree(tx, pk)
            if parent is not None and parent in ids:
                what = "itself" if parent == pk else f"its own descendant {p.parent_id!r}"
                raise InvalidRequest(f"cannot move document {p.document_id!r} under {what}",
                                     details={"document_id": p.document_id, "parent_id": p.parent_id})
            await close_gap(tx, row["space_id"], row["parent_id"], row["position"])
            count = await child_count(tx, target, parent, excluding=pk)
            position = count if p.position is None else min(p.position, count)
            await open_gap(tx, target, parent, position, excluding=pk)
            await tx.run("UPDATE documents SET space_id = ?, parent_id = ?, position = ? WHERE id = ?",
                         target, parent, position, pk)
            if target != row["space_id"] and len(ids) > 1:
                await tx.run(f"UPDATE documents SET space_id = ? WHERE id IN ({','.join('?' * len(ids))})",
                             target, *ids)
            return await self._load_document(tx, pk, p.document_id)

    # -- search -------------------------------------------------------------
    async def search_documents(self, p: SearchDocumentsParams, ctx: RequestContext) -> SearchResults:
        offset = int((decode_cursor("search", p.cursor, (int,)) or (0,))[0])
        match = fts_query(p.query)
        where, args = "documents_fts MATCH ?", [match]
        if p.space_id is not None:
            where, args = where + " AND d.space_id = ?", [match, p.space_id]
        async with self.store.read() as tx:
            if p.space_id is not None:
                await self._require_space(tx, p.space_id)
            if match is None:
                return SearchResults(provider=self.id, query=p.query, hits=[], total=0)
            rows = await tx.all(
                f"SELECT d.id, d.space_id, d.title, {_SNIPPET} AS snippet, {_BM25} AS relevance "
                f"FROM documents_fts JOIN documents d ON d.id = documents_fts.rowid "
                f"WHERE {where} ORDER BY relevance, d.id LIMIT ? OFFSET ?",
                *args, p.limit + 1, offset,
            )
            total_row = await tx.one(
                f"SELECT count(*) FROM documents_fts JOIN documents d ON d.id = documents_fts.rowid "
                f"WHERE {where}", *args,
            )
        more = len(rows) > p.limit
        hits = [
            SearchHit(document_id=str(r["id"]), space_id=r["space_id"], title=r["title"],
                      snippet=r["snippet"], score=round(-float(r["relevance"]), 6),
                      url=self._url("documents", str(r["id"])))
            for r in rows[: p.limit]
        ]
        return SearchResults(
            provider=self.id, query=p.query, hits=hits, total=int(total_row[0]) if total_row else None,
            next_cursor=encode_cursor("search", (offset + p.limit,)) if more else None,
        )

    # -- structure ----------------------------------------------------------
    async def organize_content(self, p: OrganizeContentParams, ctx: RequestContext) -> Structure:
        async with self.store.write() as tx:
            space = await self._require_space(tx, p.space_id)
            nodes = await space_nodes(tx, p.space_id)
            # Fully checked before any write: an error leaves the tree as it was.
            plan = plan_organization(nodes, p.entries)
            changes = [
                (None if parent is None else int(parent), position, int(doc))
                for doc, (parent, position) in plan.items()
                if (nodes[doc].parent_id, nodes[doc].position) != (parent, position)
            ]
            if changes:
                await tx.run_many("UPDATE documents SET parent_id = ?, position = ? WHERE id = ?", changes)
            return await self._structure(tx, space)

    async def get_structure(self, p: GetStructureParams, ctx: RequestContext) -> Structure:
        async with self.store.read() as tx:
            space = await self._require_space(tx, p.space_id)
            return await self._structure(tx, space)

    # -- revisions ----------------------------------------------------------
    async def list_revisions(self, p: ListRevisionsParams, ctx: RequestContext) -> Page[Revision]:
        pk = parse_id(p.document_id)
        if pk is None:
            raise _missing_document(p.document_id)
        before = decode_cursor("revisions", p.cursor, (int,))
        async with self.store.read() as tx:
            if await document_row(tx, pk, body=False) is None:
                raise _missing_document(p.document_id)
            rows = await tx.all(
                "SELECT document_id, version, title, format, labels, author, message, created_at "
                "FROM revisions WHERE document_id = ? AND version < ? ORDER BY version DESC LIMIT ?",
                pk, before[0] if before else 2**62, p.limit + 1,
            )
        more = len(rows) > p.limit
        rows = rows[: p.limit]
        cursor = encode_cursor("revisions", (rows[-1]["version"],)) if more else None
        return Page[Revision](items=[self._revision(r) for r in rows], next_cursor=cursor)

    async def get_revision(self, p: GetRevisionParams, ctx: RequestContext) -> Revision:
        pk = parse_id(p.document_id)
        if pk is None:
            raise _missing_document(p.document_id)
        async with self.store.read() as tx:
            doc = await document_row(tx, pk, body=False)
            if doc is None:
                raise _missing_document(p.document_id)
            row = await tx.one("SELECT * FROM revisions WHERE document_id = ? AND version = ?", pk, p.version)
        if row is None:
            raise NotFound(
                f"document {p.document_id!r} has no version {p.version} (latest is {doc['version']})",
                details={"document_id": p.document_id, "version": p.version, "latest": doc["version"]},
            )
        return self._revision(row)
