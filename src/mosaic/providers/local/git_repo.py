"""One bare repository, read and written with git plumbing only (no work tree, ever).

Writes build objects first (blobs, trees, commits) and publish them last with a
compare-and-swap ``update-ref``: a concurrent writer either sees the old tip or the new
one, and a writer whose expected tip moved learns it lost the race instead of erasing
the other commit.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from mosaic.errors import Conflict, InvalidRequest
from mosaic.providers.local.git_names import ZERO_SHA
from mosaic.providers.local.gitcli import GitCli, GitFailed, GitResult, Identity

_COMMIT_FIELDS = ("sha", "parents", "author_name", "author_email", "authored_at", "author_date",
                  "committer_name", "committer_email", "committed_at", "message")
# %ad with --date=raw is what GIT_AUTHOR_DATE accepts back, so a replayed commit keeps its date.
_COMMIT_FORMAT = "%x00".join(("%H", "%P", "%an", "%ae", "%aI", "%ad", "%cn", "%ce", "%cI", "%B"))

ChangeStatus = Literal["added", "modified", "removed", "renamed", "copied", "changed"]
_STATUS: dict[str, ChangeStatus] = {
    "A": "added", "M": "modified", "D": "removed", "R": "renamed", "C": "copied", "T": "changed"}


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: datetime
    author_date: str
    committer_name: str
    committer_email: str
    committed_at: datetime
    message: str

    def record(self) -> dict[str, object]:
        return {"sha": self.sha, "parents": list(self.parents), "author_name": self.author_name,
                "author_email": self.author_email, "authored_at": self.authored_at.isoformat(),
                "committer_name": self.committer_name, "committer_email": self.committer_email,
                "committed_at": self.committed_at.isoformat(), "message": self.message}


@dataclass(frozen=True, slots=True)
class TreeEntry:
    mode: str
    type: str
    sha: str
    size: int | None
    path: str


@dataclass(frozen=True, slots=True)
class DiffEntry:
    path: str
    status: ChangeStatus
    previous_path: str | None
    additions: int
    deletions: int
    patch: str | None
    binary: bool


@dataclass(frozen=True, slots=True)
class MergeTree:
    tree: str
    conflicts: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts


class BareRepo:
    """Plumbing operations on the bare repository at ``path``."""

    def __init__(self, cli: GitCli, path: Path, tmp_dir: Path) -> None:
        self.cli = cli
        self.path = path
        self.tmp_dir = tmp_dir

    async def git(self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
                  ok: tuple[int, ...] = (0,)) -> GitResult:
        return await self.cli.run(args, git_dir=self.path, stdin=stdin, env=env, ok=ok)

    # -- refs ---------------------------------------------------------------
    async def resolve(self, rev: str) -> str | None:
        """The commit a (validated) revision names, or None."""
        res = await self.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}",
                             ok=(0, 1, 128))
        return res.text.strip() if res.returncode == 0 else None

    async def branch_sha(self, branch: str) -> str | None:
        res = await self.git("rev-parse", "--verify", "--quiet", "--end-of-options",
                             f"refs/heads/{branch}^{{commit}}", ok=(0, 1, 128))
        return res.text.strip() if res.returncode == 0 else None

    async def branches(self) -> list[tuple[str, str]]:
        res = await self.git("for-each-ref", "--sort=refname", "--format=%(refname:strip=2)%00%(objectname)",
                             "refs/heads/")
        out: list[tuple[str, str]] = []
        for line in res.text.splitlines():
            name, _, sha = line.partition("\x00")
            out.append((name, sha))
        return out

    async def has_commits(self) -> bool:
        res = await self.git("for-each-ref", "--count=1", "--format=%(objectname)", "refs/")
        return bool(res.text.strip())

    async def set_head(self, branch: str) -> None:
        await self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}")

    async def update_ref(self, ref: str, new: str, old: str | None, message: str) -> bool:
        """Move ``ref`` to ``new`` only if it is at ``old`` (None: only if it does not exist).

        Returns False when another writer got there first.
        """
        res = await self.git("update-ref", "-m", message, ref, new, old or ZERO_SHA, ok=(0, 1, 128))
        if res.returncode == 0:
            return True
        if "cannot lock ref" in res.error or "reference already exists" in res.error:
            return False
        raise GitFailed(f"git update-ref failed: {res.error[:500]}", details={"command": "update-ref"})

    async def delete_ref(self, ref: str, old: str) -> bool:
        res = await self.git("update-ref", "-d", ref, old, ok=(0, 1, 128))
        if res.returncode == 0:
            return True
        if "cannot lock ref" in res.error:
            return False
        raise GitFailed(f"git update-ref -d failed: {res.error[:500]}", details={"command": "update-ref"})

    # -- objects ------------------------------------------------------------
    async def entry(self, commit: str, path: str) -> TreeEntry | None:
        res = await self.git("ls-tree", "-l", "-z", commit, "--", path)
        for record in res.stdout.split(b"\x00"):
            if not record:
                continue
            meta, _, name = record.decode("utf-8", "surrogateescape").partition("\t")
            if name != path:
                continue
            mode, kind, sha, size = meta.split()
            return TreeEntry(mode, kind, sha, None if size == "-" else int(size), name)
        return None

    async def read_blob(self, sha: str) -> bytes:
        return (await self.git("cat-file", "blob", sha)).stdout

    async def write_blob(self, data: bytes) -> str:
        return (await self.git("hash-object", "-w", "--stdin", stdin=data)).text.strip()

    async def tree_of(self, commit: str) -> str:
        return (await self.git("rev-parse", "--verify", f"{commit}^{{tree}}")).text.strip()

    async def tree_with_file(self, parent: str | None, path: str, mode: str, blob: str) -> str:
        """The tree of ``parent`` with ``path`` set to ``blob``, built in a throwaway index."""
        index = self.tmp_dir / f"index-{uuid.uuid4().hex}"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            if parent is not None:
                await self.git("read-tree", parent, env=env)
            res = await self.git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}",
                                 env=env, ok=(0, 128))
            if res.returncode != 0:
                if "appears as both a file and as a directory" in res.error:
                    raise Conflict(f"cannot write {path!r}: it or one of its parents is both a file "
                                   "and a directory in the branch", details={"path": path})
                raise GitFailed(f"git update-index failed: {res.error[:500]}",
                                details={"command": "update-index"})
            return (await self.git("write-tree", env=env)).text.strip()
        finally:
            for leftover in (index, index.with_name(index.name + ".lock")):
                try:
                    os.unlink(leftover)
                except FileNotFoundError:
                    pass

    async def commit_tree(self, tree: str, parents: list[str], message: str, *,
                          author: Identity | None = None, author_date: str | None = None) -> str:
        if "\x00" in message:
            raise InvalidRequest("a commit message must not contain NUL characters")
        env: dict[str, str] = {}
        if author is not None:
            env.update(GIT_AUTHOR_NAME=author.name, GIT_AUTHOR_EMAIL=author.email)
        if author_date is not None:
            env["GIT_AUTHOR_DATE"] = author_date
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        # -F - keeps the message byte for byte (a replayed commit keeps its exact text).
        res = await self.git(*args, "-F", "-", stdin=message.encode(), env=env)
        return res.text.strip()

    # -- history ------------------------------------------------------------
    async def log(self, *revs: str, path: str | None = None, skip: int = 0, max_count: int | None = None,
                  extra: tuple[str, ...] = ()) -> list[CommitInfo]:
        args = ["log", "-z", f"--format={_COMMIT_FORMAT}", "--date=raw", *extra]
        if skip:
            args.append(f"--skip={skip}")
        if max_count is not None:
            args.append(f"--max-count={max_count}")
        args += ["--end-of-options", *revs, "--"]
        if path is not None:
            args.append(path)
        res = await self.git(*args)
        return _parse_commits(res.stdout)

    async def commit_info(self, sha: str) -> CommitInfo:
        return (await self.log(sha, max_count=1, extra=("--no-walk",)))[0]

    async def merge_base(self, a: str, b: str) -> str | None:
        res = await self.git("merge-base", a, b, ok=(0, 1))
        return (res.text.strip() or None) if res.returncode == 0 else None

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        res = await self.git("merge-base", "--is-ancestor", ancestor, descendant, ok=(0, 1))
        return res.returncode == 0

    async def count(self, exclude: str, include: str) -> int:
        res = await self.git("rev-list", "--count", include, f"^{exclude}")
        return int(res.text.strip() or 0)

    async def merge_tree(self, ours: str, theirs: str, *, allow_unrelated: bool = False) -> MergeTree:
        """Merge two commits in memory (``git merge-tree --write-tree``); nothing is published."""
        args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z"]
        if allow_unrelated:
            args.append("--allow-unrelated-histories")
        res = await self.git(*args, ours, theirs, ok=(0, 1, 128))
        if res.returncode == 128:
            if "unrelated histories" in res.error:
                raise Conflict("the two commits share no history and cannot be merged",
                               details={"base": ours, "head": theirs, "paths": []})
            raise GitFailed(f"git merge-tree failed: {res.error[:500]}", details={"command": "merge-tree"})
        fields = res.stdout.decode("utf-8", "surrogateescape").split("\x00")
        tree = fields[0].strip()
        conflicts = tuple(dict.fromkeys(f for f in fields[1:] if f)) if res.returncode == 1 else ()
        return MergeTree(tree, conflicts)

    # -- diffs --------------------------------------------------------------
    async def diff(self, base: str, head: str) -> list[DiffEntry]:
        """Files changed from ``base`` to ``head``, with counts and per-file patches."""
        common = ("-M", "--no-color", "--no-ext-diff", "--no-textconv", base, head, "--")
        status = await self.git("diff", "--name-status", "-z", *common)
        numstat = await self.git("diff", "--numstat", "-z", *common)
        patch = await self.git("diff", "--patch", "--full-index", *common)
        entries = _parse_name_status(status.stdout)
        counts = _parse_numstat(numstat.stdout)
        patches = _split_patch(patch.stdout)
        out: list[DiffEntry] = []
        for i, (kind, old, new) in enumerate(entries):
            adds, dels, binary = counts[i] if i < len(counts) else (0, 0, False)
            out.append(DiffEntry(path=new, status=_STATUS.get(kind, "changed"),
                                 previous_path=old if kind in ("R", "C") else None,
                                 additions=adds, deletions=dels, binary=binary,
                                 patch=None if binary or i >= len(patches) else patches[i]))
        return out


def _parse_commits(raw: bytes) -> list[CommitInfo]:
    fields = raw.decode("utf-8", "surrogateescape").split("\x00")
    n = len(_COMMIT_FIELDS)
    if len(fields) % n == 1 and fields[-1] == "":
        fields.pop()
    out: list[CommitInfo] = []
    for i in range(0, len(fields) - n + 1, n):
        f = fields[i:i + n]
        out.append(CommitInfo(
            sha=f[0].strip(), parents=tuple(f[1].split()), author_name=f[2], author_email=f[3],
            authored_at=datetime.fromisoformat(f[4]), author_date=f[5], committer_name=f[6],
            committer_email=f[7], committed_at=datetime.fromisoformat(f[8]), message=f[9],
        ))
    return out


def _parse_name_status(raw: bytes) -> list[tuple[str, str | None, str]]:
    tokens = raw.decode("utf-8", "surrogateescape").split("\x00")
    out: list[tuple[str, str | None, str]] = []
    i = 0
    while i < len(tokens) and tokens[i]:
        kind = tokens[i][0]
        if kind in ("R", "C"):
            out.append((kind, tokens[i + 1], tokens[i + 2]))
            i += 3
        else:
            out.append((kind, None, tokens[i + 1]))
            i += 2
    return out


def _parse_numstat(raw: bytes) -> list[tuple[int, int, bool]]:
    tokens = raw.decode("utf-8", "surrogateescape").split("\x00")
    out: list[tuple[int, int, bool]] = []
    i = 0
    while i < len(tokens) and tokens[i]:
        adds, dels, path = tokens[i].split("\t", 2)
        binary = adds == "-"
        out.append((0 if binary else int(adds), 0 if binary else int(dels), binary))
        # A rename/copy leaves the path field empty and names old and new in the next two tokens.
        i += 3 if path == "" else 1
    return out


def _split_patch(raw: bytes) -> list[str | None]:
    """One patch per file, in diff order, without the ``diff --git`` header (GitHub's shape)."""
    text = raw.decode("utf-8", "replace")
    if not text:
        return []
    chunks: list[str | None] = []
    # Content lines in a patch always start with ' ', '+' or '-', so this split is exact.
    for part in text.split("\ndiff --git "):
        hunk_at = part.find("\n@@")
        chunks.append(part[hunk_at + 1:].rstrip("\n") if hunk_at >= 0 else None)
    return chunks
