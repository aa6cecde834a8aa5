"""Pure hierarchy logic for a space's document tree: reorganization plans and tree walks.

Nothing here touches the database, so a reorganization is fully checked (unknown ids,
duplicates, cycles) before a single row changes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mosaic.catalog.docs import StructureEntry, StructureNode
from mosaic.errors import InvalidRequest

Placement = tuple[str | None, int]  # (parent id, position among siblings)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    parent_id: str | None
    position: int
    title: str


def _siblings_key(node: Node) -> tuple[int, int]:
    # Positions are dense per parent; the id breaks ties should two ever be equal.
    return node.position, int(node.id) if node.id.isdigit() else 0


def plan_organization(nodes: Mapping[str, Node], entries: Sequence[StructureEntry]) -> dict[str, Placement]:
    """Where every document of the space ends up when ``entries`` are applied together.

    Listed documents get their requested parent and land at their requested index among
    their new siblings; documents not listed keep their parent and relative order. Raises
    :class:`InvalidRequest` (and plans nothing) on unknown ids, repeated ids or a cycle.
    """
    counts = Counter(e.document_id for e in entries)
    repeated = sorted(doc for doc, n in counts.items() if n > 1)
    if repeated:
        raise InvalidRequest(f"documents listed more than once: {', '.join(repeated)}",
                             details={"document_ids": repeated})
    unknown = sorted({e.document_id for e in entries if e.document_id not in nodes}
                     | {e.parent_id for e in entries if e.parent_id is not None and e.parent_id not in nodes})
    if unknown:
        raise InvalidRequest(
            f"documents not found in this space: {', '.join(unknown)}",
            details={"document_ids": unknown},
        )

    parent = {n.id: n.parent_id for n in nodes.values()}
    for e in entries:
        parent[e.document_id] = e.parent_id
    cycle = find_cycle(parent)
    if cycle:
        raise InvalidRequest(
            "this structure would make a document its own ancestor: " + " -> ".join([*cycle, cycle[0]]),
            details={"cycle": cycle},
        )

    listed = {e.document_id for e in entries}
    groups: dict[str | None, list[str]] = defaultdict(list)
    for node in sorted(nodes.values(), key=_siblings_key):
        if node.id not in listed:
            groups[node.parent_id].append(node.id)
    order = sorted(range(len(entries)), key=lambda i: (entries[i].position, i))
    for i in order:
        e = entries[i]
        group = groups[e.parent_id]
        group.insert(min(e.position, len(group)), e.document_id)

    return {doc: (p, index) for p, group in groups.items() for index, doc in enumerate(group)}


def find_cycle(parent: Mapping[str, str | None]) -> list[str]:
    """Ids forming a parent cycle (in child-to-parent order), or an empty list."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = known to reach a root
    for start in parent:
        path: list[str] = []
        node: str | None = start
        while node is not None and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = parent.get(node)
        if node is not None and state[node] == 1:
            return path[path.index(node):]
        for n in path:
            state[n] = 2
    return []


def walk(nodes: Mapping[str, Node]) -> list[StructureNode]:
    """Depth-first listing: each parent before its children, siblings by position."""
    children: dict[str | None, list[Node]] = defaultdict(list)
    for node in nodes.values():
        # A parent outside this map (never expected) must not hide the document.
        key = node.parent_id if node.parent_id in nodes else None
        children[key].append(node)
    for group in children.values():
        group.sort(key=_siblings_key)

    out: list[StructureNode] = []
    stack: list[tuple[Node, int]] = [(n, 0) for n in reversed(children[None])]
    while stack:
        node, depth = stack.pop()
        out.append(StructureNode(document_id=node.id, parent_id=node.parent_id,
                                 position=node.position, depth=depth, title=node.title))
        stack.extend((c, depth + 1) for c in reversed(children.get(node.id, [])))
    return out
