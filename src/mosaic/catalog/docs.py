"""Docs service: spaces, documents (pages), their hierarchy, revisions and full-text search.

A BookStack book, a Confluence space, a Notion teamspace or database and a wiki namespace
are all a :class:`Space`; their pages are :class:`Document` objects whose body is markdown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mosaic.catalog.base import (
    Deleted,
    Effect,
    Entity,
    ListParams,
    Operation,
    Page,
    Params,
    Rest,
    check_name,
)
from mosaic.errors import Conflict

DocFormat = Literal["markdown", "html", "text"]

# Every provider marks matched terms in search snippets with these, whatever its native markup.
HIGHLIGHT_START = "<mark>"
HIGHLIGHT_END = "</mark>"

MAX_TITLE = 255
MAX_LABEL = 100


def check_title(value: str) -> str:
    """A title is one non-empty line of at most 255 characters (surrounding blanks dropped)."""
    title = value.strip()
    if not title:
        raise ValueError("title must not be empty")
    if len(title) > MAX_TITLE:
        raise ValueError(f"title must be at most {MAX_TITLE} characters")
    if any(ch in title for ch in "\r\n\t\x00"):
        raise ValueError("title must be a single line without control characters")
    return title


def check_labels(values: list[str]) -> list[str]:
    """Labels are trimmed, non-empty, single words; duplicates are dropped, order kept."""
    seen: dict[str, None] = {}
    for raw in values:
        label = raw.strip()
        if not label:
            raise ValueError("labels must not be empty")
        if len(label) > MAX_LABEL:
            raise ValueError(f"label {label[:20]!r}... is longer than {MAX_LABEL} characters")
        if any(ch.isspace() for ch in label):
            raise ValueError(f"label {label!r} must not contain whitespace")
        seen.setdefault(label, None)
    return list(seen)


def stale_version(document_id: str, expected: int, current: int) -> Conflict:
    """The error every provider raises when ``expected_version`` no longer matches."""
    return Conflict(
        f"document {document_id} is at version {current}, not the expected version {expected}; "
        "get it again, reapply your change and retry with the current version",
        details={"document_id": document_id, "current_version": current, "expected_version": expected},
    )


# ---------------------------------------------------------------------------
# Domain objects


class Space(Entity):
    key: str = Field(description="Short unique key of the space (Confluence space key, book slug).")
    name: str
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Breadcrumb(BaseModel):
    id: str
    title: str


class Document(Entity):
    space_id: str
    parent_id: str | None = Field(default=None, description="Parent document; null at the top of the space.")
    title: str
    body: str | None = Field(
        default=None,
        description="Content in `format` (markdown unless stated). Null in listings without include_body.",
    )
    format: DocFormat = "markdown"
    version: int = Field(ge=1, description="Content version; pass as `expected_version` to update safely.")
    position: int = Field(default=0, ge=0, description="Index among its siblings, starting at 0.")
    path: list[Breadcrumb] = Field(
        default_factory=list, description="Ancestors from the top of the space down to the parent."
    )
    author: str | None = None
    labels: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Revision(Entity):
    document_id: str
    version: int = Field(ge=1)
    title: str
    body: str | None = Field(default=None, description="Content of this version; null in listings.")
    format: DocFormat = "markdown"
    labels: list[str] = Field(default_factory=list)
    author: str | None = None
    message: str = Field(default="", description="Note the editor left with this version.")
    created_at: datetime | None = None


class SearchHit(BaseModel):
    document_id: str
    space_id: str
    title: str
    snippet: str = Field(
        description=f"Excerpt with matched terms between {HIGHLIGHT_START} and {HIGHLIGHT_END}."
    )
    score: float = Field(description="Relevance, higher is better; comparable within one search only.")
    url: str | None = None


class SearchResults(BaseModel):
    provider: str
    query: str
    hits: list[SearchHit]
    total: int | None = Field(default=None, description="Number of matching documents, when known.")
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


class StructureNode(BaseModel):
    document_id: str
    parent_id: str | None = None
    position: int = Field(ge=0)
    depth: int = Field(ge=0, description="0 at the top of the space.")
    title: str


class Structure(Entity):
    """The document tree of a space, flattened depth-first.

    Flat so that it has the same shape as ``organize_content``'s input: read it, change
    some ``parent_id``/``position`` values, send it back.
    """

    space_id: str
    nodes: list[StructureNode] = Field(
        default_factory=list, description="Every document, parents before children, siblings in order."
    )


# ---------------------------------------------------------------------------
# Parameters


class CreateSpaceParams(Params):
    key: str = Field(description="Unique key: letters, digits, '.', '_', '-'.", examples=["eng"])
    name: str = Field(min_length=1, max_length=MAX_TITLE)
    description: str = ""

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_name(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_title(v)


class SpaceParams(Params):
    space_id: str = Field(min_length=1, max_length=200)


class ListSpacesParams(ListParams):
    pass


class CreateDocumentParams(Params):
    space_id: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, description="Parent document; omit for the top level.")
    title: str
    body: str = ""
    format: DocFormat = "markdown"
    labels: list[str] = Field(default_factory=list)
    position: int | None = Field(default=None, ge=0, description="Index among siblings; default: last.")
    message: str = Field(default="", max_length=1000, description="Note stored with the first version.")

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        return check_title(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        return check_labels(v)


class DocumentParams(Params):
    document_id: str = Field(min_length=1, max_length=200)


class UpdateDocumentParams(DocumentParams):
    title: str | None = None
    body: str | None = None
    format: DocFormat | None = None
    labels: list[str] | None = Field(default=None, description="Replaces all labels.")
    expected_version: int | None = Field(
        default=None, ge=1, description="Fail with a conflict unless the document is still at this version."
    )
    message: str = Field(default="", max_length=1000, description="Note stored with the new version.")

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        return None if v is None else check_title(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_labels(v)


class DeleteDocumentParams(DocumentParams):
    recursive: bool = Field(default=False, description="Also delete every descendant document.")


class ListDocumentsParams(ListParams):
    space_id: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, description="Only the direct children of this document.")
    top_level: bool = Field(default=False, description="Only documents at the top of the space.")
    include_body: bool = Field(default=False, description="Return bodies too (larger responses).")


class MoveDocumentParams(DocumentParams):
    parent_id: str | None = Field(
        default=None, description="New parent; omit or null to move to the top level of the space."
    )
    space_id: str | None = Field(
        default=None, description="Target space; default: the current one. Descendants move along."
    )
    position: int | None = Field(default=None, ge=0, description="Index among new siblings; default: last.")


class SearchDocumentsParams(Params):
    query: str = Field(max_length=1000, description="Plain words; every word must match.")
    space_id: str | None = Field(default=None, description="Only this space.")
    cursor: str | None = Field(default=None, description="Opaque cursor from a previous page.")
    limit: int = Field(default=20, ge=1, le=100)

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("query must not be empty")
        return v.strip()


class StructureEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(min_length=1, max_length=200)
    parent_id: str | None = Field(default=None, description="New parent; null for the top level.")
    position: int = Field(ge=0, description="Index among its siblings after the change.")


class OrganizeContentParams(SpaceParams):
    entries: list[StructureEntry] = Field(
        min_length=1,
        max_length=10_000,
        description="Placements to apply together. Documents not listed keep their parent.",
    )


class GetStructureParams(SpaceParams):
    pass


class ListRevisionsParams(DocumentParams):
    cursor: str | None = Field(default=None, description="Opaque cursor from a previous page.")
    limit: int = Field(default=30, ge=1, le=100)


class GetRevisionParams(DocumentParams):
    version: int = Field(ge=1)


# ---------------------------------------------------------------------------
# Operations

S = "/docs/spaces"
SP = S + "/{space_id}"
D = "/docs/documents"
DP = D + "/{document_id}"

# Reads whose results depend on a document's content or place in the tree.
_TREE_READS = ("get_document", "list_documents", "get_structure", "search_documents")

create_space = Operation(
    "docs", "create_space", CreateSpaceParams, Space, Effect.WRITE,
    Rest("POST", S, 201),
    "Create a space (a book, wiki or Confluence space) that holds documents. The key must be unique.",
    invalidates=("list_spaces",),
)
get_space = Operation(
    "docs", "get_space", SpaceParams, Space, Effect.READ,
    Rest("GET", SP), "Get a space by id.", cache_ttl=60,
)
list_spaces = Operation(
    "docs", "list_spaces", ListSpacesParams, Page[Space], Effect.READ,
    Rest("GET", S), "List the spaces you can see.", cache_ttl=30,
)
create_document = Operation(
    "docs", "create_document", CreateDocumentParams, Document, Effect.WRITE,
    Rest("POST", D, 201),
    "Create a markdown document (page) in a space, optionally under a parent document.",
    invalidates=_TREE_READS,
)
get_document = Operation(
    "docs", "get_document", DocumentParams, Document, Effect.READ,
    Rest("GET", DP),
    "Get a document with its body, version, labels and breadcrumb path.", cache_ttl=10,
)
update_document = Operation(
    "docs", "update_document", UpdateDocumentParams, Document, Effect.WRITE,
    Rest("PATCH", DP),
    "Change a document's title, body or labels, creating a new version. Pass expected_version "
    "(from get_document) to fail with a conflict instead of overwriting someone else's edit.",
    idempotent=True, invalidates=(*_TREE_READS, "list_revisions"),
)
delete_document = Operation(
    "docs", "delete_document", DeleteDocumentParams, Deleted, Effect.WRITE,
    Rest("DELETE", DP),
    "Delete a document and its history. Refused when it has children unless recursive=true, "
    "which deletes the whole subtree. Irreversible; deleting a missing document is not an error.",
    idempotent=True, destructive=True, invalidates=(*_TREE_READS, "list_revisions", "get_revision"),
)
list_documents = Operation(
    "docs", "list_documents", ListDocumentsParams, Page[Document], Effect.READ,
    Rest("GET", SP + "/documents"),
    "List the documents of a space: all of them, the top level, or the children of one parent.",
    cache_ttl=10,
)
move_document = Operation(
    "docs", "move_document", MoveDocumentParams, Document, Effect.WRITE,
    Rest("POST", DP + "/move"),
    "Move a document (with its subtree) under another parent, to the top level, or into another "
    "space, at a given position among its new siblings.",
    idempotent=True, invalidates=_TREE_READS,
)
search_documents = Operation(
    "docs", "search_documents", SearchDocumentsParams, SearchResults, Effect.READ,
    Rest("GET", "/docs/search"),
    "Full-text search over document titles and bodies, best matches first, with highlighted snippets.",
    cache_ttl=10,
)
organize_content = Operation(
    "docs", "organize_content", OrganizeContentParams, Structure, Effect.WRITE,
    Rest("PUT", SP + "/structure"),
    "Rearrange a space's tree in one step: set parent and position for many documents at once. "
    "All or nothing: unknown documents or cycles change nothing. Returns the new tree.",
    idempotent=True, invalidates=_TREE_READS,
)
get_structure = Operation(
    "docs", "get_structure", GetStructureParams, Structure, Effect.READ,
    Rest("GET", SP + "/structure"),
    "Get the document tree of a space (titles, parents, positions, depth), parents first.",
    cache_ttl=10,
)
list_revisions = Operation(
    "docs", "list_revisions", ListRevisionsParams, Page[Revision], Effect.READ,
    Rest("GET", DP + "/revisions"),
    "List the versions of a document, newest first (without bodies).", cache_ttl=10,
)
get_revision = Operation(
    "docs", "get_revision", GetRevisionParams, Revision, Effect.READ,
    Rest("GET", DP + "/revisions/{version}"),
    "Get the title and body of one past version of a document.", cache_ttl=3600,
)

OPERATIONS: tuple[Operation, ...] = (
    create_space, get_space, list_spaces,
    create_document, get_document, update_document, delete_document, list_documents,
    move_document, search_documents, organize_content, get_structure,
    list_revisions, get_revision,
)
