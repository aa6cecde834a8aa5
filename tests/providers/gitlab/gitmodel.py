"""A small in-memory git object model for stateful vendor fakes (GitLab, Bitbucket).

Trees are ``{path: bytes}``; commits get real-looking, deterministic SHA-1 ids (the clock is a
counter, one second per commit), blobs the id ``git hash-object`` would give. Merges are three-way
at file level (a file changed on both sides differently is a conflict), which is all a forge fake
needs to behave like the forge: conflicts, fast-forwards, squashes and rebases.

Vendor-neutral on purpose: the fakes of several vendors share it. (It would sit better in
``tests/support/``; it lives here because this directory is the one its author owns.)
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

Tree = dict[str, bytes]
EPOCH = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
MergeStyle = Literal["merge", "squash", "rebase", "ff"]


def blob_sha(data: bytes) -> str:
    """The id git gives a blob with this content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class MergeConflict(Exception):
    """The two sides changed the same file differently (or a fast-forward is impossible)."""


@dataclass
class Person:
    name: str
    email: str


@dataclass
class CommitObj:
    sha: str
    tree: Tree
    parents: list[str]
    message: str
    author: Person
    committer: Person
    date: datetime

    @property
    def title(self) -> str:
        return self.message.split("\n", 1)[0]


@dataclass
class FileDiff:
    path: str
    old_path: str
    status: Literal["added", "removed", "modified"]
    additions: int
    deletions: int
    patch: str


class Clock:
    """One second per tick from a fixed epoch: ids and timestamps are the same on every run."""

    def __init__(self) -> None:
        self._tick = 0

    def now(self) -> datetime:
        self._tick += 1
        return EPOCH + timedelta(seconds=self._tick)


@dataclass
class GitRepo:
    clock: Clock
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, CommitObj] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.branches

    # -- objects ------------------------------------------------------------
    def commit(self, tree: Tree, parents: list[str], message: str, author: Person,
               committer: Person | None = None) -> CommitObj:
        when = self.clock.now()
        who = committer or author
        tree_id = hashlib.sha1(b"".join(p.encode() + b"\0" + blob_sha(d).encode()
                                        for p, d in sorted(tree.items()))).hexdigest()
        text = (f"tree {tree_id}\n" + "".join(f"parent {p}\n" for p in parents)
                + f"author {author.name} <{author.email}> {int(when.timestamp())} +0000\n"
                + f"committer {who.name} <{who.email}> {int(when.timestamp())} +0000\n\n{message}")
        sha = hashlib.sha1(f"commit {len(text.encode())}\0{text}".encode()).hexdigest()
        made = CommitObj(sha, dict(tree), list(parents), message, author, who, when)
        self.commits[sha] = made
        return made

    def push(self, branch: str, files: dict[str, str | bytes | None], message: str, author: Person) -> str:
        """Commit ``files`` (None deletes) on top of ``branch`` (created from the default branch)."""
        parent = self.branches.get(branch) or self.branches.get(self.default_branch)
        tree = dict(self.commits[parent].tree) if parent else {}
        for path, content in files.items():
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content.encode() if isinstance(content, str) else content
        made = self.commit(tree, [parent] if parent else [], message, author)
        self.branches[branch] = made.sha
        return made.sha

    def resolve(self, ref: str | None) -> str | None:
        """A branch, tag, full sha or unique prefix (7+ hex digits) → full sha; None if unknown."""
        ref = ref or self.default_branch
        if ref == "HEAD":
            ref = self.default_branch
        if ref in self.branches:
            return self.branches[ref]
        if ref in self.tags:
            return self.tags[ref]
        if ref in self.commits:
            return ref
        if len(ref) >= 7:
            found = [s for s in self.commits if s.startswith(ref)]
            if len(found) == 1:
                return found[0]
        return None

    # -- history -----------------------------------------------------------
    def ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        todo = [sha]
        while todo:
            cur = todo.pop()
            if cur in seen or cur not in self.commits:
                continue
            seen.add(cur)
            todo.extend(self.commits[cur].parents)
        return seen

    def log(self, sha: str, exclude: str | None = None) -> list[CommitObj]:
        """Commits reachable from ``sha`` but not from ``exclude``, newest first."""
        reach = self.ancestors(sha)
        if exclude:
            reach -= self.ancestors(exclude)
        return sorted((self.commits[s] for s in reach), key=lambda c: (c.date, c.sha), reverse=True)

    def merge_base(self, a: str, b: str) -> str | None:
        common = self.ancestors(a) & self.ancestors(b)
        if not common:
            return None
        return max(common, key=lambda s: (self.commits[s].date, s))

    def touches(self, c: CommitObj, path: str) -> bool:
        before = self.commits[c.parents[0]].tree.get(path) if c.parents else None
        return c.tree.get(path) != before

    # -- diffs and merges ----------------------------------------------------
    @staticmethod
    def three_way(base: Tree, ours: Tree, theirs: Tree) -> Tree:
        out: Tree = {}
        for path in sorted(set(base) | set(ours) | set(theirs)):
            b, o, t = base.get(path), ours.get(path), theirs.get(path)
            if o == t:
                merged = o
            elif b == o:
                merged = t
            elif b == t:
                merged = o
            else:
                raise MergeConflict(path)
            if merged is not None:
                out[path] = merged
        return out

    @staticmethod
    def diff(old: Tree, new: Tree) -> list[FileDiff]:
        changes: list[FileDiff] = []
        for path in sorted(set(old) | set(new)):
            a, b = old.get(path), new.get(path)
            if a == b:
                continue
            status: Literal["added", "removed", "modified"] = (
                "added" if a is None else "removed" if b is None else "modified")
            lines = list(difflib.unified_diff((a or b"").decode("utf-8", "replace").splitlines(),
                                              (b or b"").decode("utf-8", "replace").splitlines(),
                                              lineterm="", n=3))
            body = lines[2:] if len(lines) >= 2 else lines
            adds = sum(1 for x in body if x.startswith("+"))
            dels = sum(1 for x in body if x.startswith("-"))
            changes.append(FileDiff(path, path, status, adds, dels, "\n".join(body) + ("\n" if body else "")))
        return changes

    def changes_between(self, base_sha: str | None, head_sha: str) -> list[FileDiff]:
        """What ``head`` changed since its merge base with ``base`` (``base...head``)."""
        mb = self.merge_base(base_sha, head_sha) if base_sha else None
        return self.diff(self.commits[mb].tree if mb else {}, self.commits[head_sha].tree)

    def mergeable(self, base_sha: str, head_sha: str) -> bool:
        mb = self.merge_base(base_sha, head_sha)
        try:
            self.three_way(self.commits[mb].tree if mb else {}, self.commits[base_sha].tree,
                           self.commits[head_sha].tree)
        except MergeConflict:
            return False
        return True

    def rebase(self, onto: str, head: str) -> str:
        """Replay the commits of ``head`` missing from ``onto`` on top of it; the new head sha."""
        tip = onto
        for c in reversed(self.log(head, exclude=onto)):
            parent_tree = self.commits[c.parents[0]].tree if c.parents else {}
            tree = self.three_way(parent_tree, self.commits[tip].tree, c.tree)
            tip = self.commit(tree, [tip], c.message, c.author, c.committer).sha
        return tip

    def merge(self, base_sha: str, head_sha: str, style: MergeStyle, message: str, who: Person) -> str:
        """Merge ``head`` into ``base`` the way a forge does; the sha the base branch moves to."""
        mb = self.merge_base(base_sha, head_sha)
        if style == "ff":
            if mb != base_sha:
                raise MergeConflict("(not a fast-forward)")
            return head_sha
        if style == "rebase":
            return head_sha if mb == base_sha else self.rebase(base_sha, head_sha)
        tree = self.three_way(self.commits[mb].tree if mb else {}, self.commits[base_sha].tree,
                              self.commits[head_sha].tree)
        if style == "squash":
            return self.commit(tree, [base_sha], message, who).sha
        return self.commit(tree, [base_sha, head_sha], message, who).sha
