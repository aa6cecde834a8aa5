"""Pure pieces of the local docs provider: FTS query quoting, tree plans, cursors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic.catalog.docs import StructureEntry
from mosaic.errors import InvalidRequest
from mosaic.providers.local.docs_paging import decode_cursor, encode_cursor
from mosaic.providers.local.docs_search import MAX_TERMS, fts_query
from mosaic.providers.local.docs_tree import Node, find_cycle, plan_organization, walk


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(title, body, "
               "tokenize='porter unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO t VALUES ('Foo AND bar', 'near NEAR the \"quoted\" * thing')")
    yield db
    db.close()


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('"foo" AND (') == '"""foo""" "AND"'
    assert fts_query("NEAR(a b)") == '"NEAR(a" "b)"'
    assert fts_query("*  ( ) ^ -") is None
    assert fts_query("a\x00b") == '"a" "b"'
    assert fts_query(" ".join(f"w{i}" for i in range(100))) == " ".join(f'"w{i}"' for i in range(MAX_TERMS))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fts_query_is_always_valid_fts5(fts: sqlite3.Connection, text: str) -> None:
    match = fts_query(text)
    if match is not None:
        fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()


def test_fts_query_matches_operator_words_as_text(fts: sqlite3.Connection) -> None:
    for text in ('"foo" AND (', "NEAR", "quoted", "*thing*"):
        match = fts_query(text)
        assert match is not None
        assert fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall() == [(1,)], text


def nodes(*spec: tuple[str, str | None, int]) -> dict[str, Node]:
    return {i: Node(id=i, parent_id=p, position=pos, title=f"T{i}") for i, p, pos in spec}


def entry(doc: str, parent: str | None, position: int) -> StructureEntry:
    return StructureEntry(document_id=doc, parent_id=parent, position=position)


def test_plan_inserts_listed_documents_at_their_index() -> None:
    tree = nodes(("1", None, 0), ("2", None, 1), ("3", None, 2), ("4", "1", 0))
    plan = plan_organization(tree, [entry("3", "1", 0), entry("4", None, 0)])
    assert plan == {"4": (None, 0), "1": (None, 1), "2": (None, 2), "3": ("1", 0)}


def test_plan_rejects_cycles_unknown_and_duplicates() -> None:
    tree = nodes(("1", None, 0), ("2", "1", 0), ("3", "2", 0))
    with pytest.raises(InvalidRequest, match="own ancestor"):
        plan_organization(tree, [entry("1", "3", 0)])
    with pytest.raises(InvalidRequest, match="not found in this space: 9"):
        plan_organization(tree, [entry("9", None, 0)])
    with pytest.raises(InvalidRequest, match="more than once: 1"):
        plan_organization(tree, [entry("1", None, 0), entry("1", None, 1)])


def test_find_cycle() -> None:
    assert find_cycle({"a": None, "b": "a", "c": "b"}) == []
    assert find_cycle({"a": "a"}) == ["a"]
    cycle = find_cycle({"r": None, "a": "c", "b": "a", "c": "b", "x": "a"})
    assert sorted(cycle) == ["a", "b", "c"]


def test_walk_is_depth_first_by_position() -> None:
    tree = nodes(("1", None, 1), ("2", None, 0), ("3", "1", 1), ("4", "1", 0), ("5", "4", 0))
    assert [(n.document_id, n.depth) for n in walk(tree)] == [
        ("2", 0), ("1", 0), ("4", 1), ("5", 2), ("3", 1)]


@st.composite
def trees_and_entries(draw: st.DrawFn) -> tuple[dict[str, Node], list[StructureEntry]]:
    size = draw(st.integers(min_value=1, max_value=12))
    spec: list[tuple[str, str | None, int]] = []
    counts: dict[str | None, int] = {}
    for i in range(1, size + 1):
        parent = draw(st.sampled_from([None, *[str(j) for j in range(1, i)]]))
        spec.append((str(i), parent, counts.get(parent, 0)))
        counts[parent] = counts.get(parent, 0) + 1
    ids = [str(i) for i in range(1, size + 1)]
    listed = draw(st.lists(st.sampled_from(ids), unique=True, max_size=size))
    entries = [entry(d, draw(st.sampled_from([None, *ids])), draw(st.integers(0, size + 2))) for d in listed]
    return nodes(*spec), entries


@settings(max_examples=300, deadline=None)
@given(trees_and_entries())
def test_plan_always_yields_a_dense_acyclic_tree_or_refuses(
    case: tuple[dict[str, Node], list[StructureEntry]],
) -> None:
    tree, entries = case
    try:
        plan = plan_organization(tree, entries)
    except InvalidRequest as exc:
        assert "cycle" in exc.details
        return
    assert set(plan) == set(tree)
    assert find_cycle({d: p for d, (p, _) in plan.items()}) == []
    groups: dict[str | None, list[int]] = {}
    for parent, position in plan.values():
        groups.setdefault(parent, []).append(position)
    assert all(sorted(ps) == list(range(len(ps))) for ps in groups.values())
    for e in entries:
        assert plan[e.document_id][0] == e.parent_id
    for doc, node in tree.items():
        if doc not in {e.document_id for e in entries}:
            assert plan[doc][0] == node.parent_id


def test_cursors_round_trip_and_refuse_tampering() -> None:
    cur = encode_cursor("children", (3, 17))
    assert decode_cursor("children", cur, (int, int)) == (3, 17)
    assert decode_cursor("children", None, (int, int)) is None
    assert decode_cursor("spaces", encode_cursor("spaces", ("eng",)), (str,)) == ("eng",)
    for bad in (cur + "x", "%%%", "", encode_cursor("space", (3,)), encode_cursor("children", (3,))):
        with pytest.raises(InvalidRequest, match="invalid cursor"):
            decode_cursor("children", bad, (int, int))
    with pytest.raises(InvalidRequest):
        decode_cursor("spaces", encode_cursor("spaces", (1,)), (str,))
