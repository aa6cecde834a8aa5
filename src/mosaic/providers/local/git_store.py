"""Where the local git provider keeps repositories, and the metadata kept beside each one.

Layout under ``<dataDir>/git``::

    <owner>/<name>.git/          a real bare repository (clone it with file://)
    <owner>/<name>.git/mosaic.json   id, description, private, archived, timestamps
    .tmp/                        repositories being created, throwaway index files
    .home/                       HOME of every git process (empty: no global config)
    meta.sqlite3                 pull requests, reviews, statuses

The default branch is not in ``mosaic.json``: it is the repository's own HEAD symbolic-ref,
so a plain ``git clone`` agrees with the API.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mosaic.catalog.base import check_name

META_FILE = "mosaic.json"


@dataclass(frozen=True, slots=True)
class RepoMeta:
    id: str
    description: str = ""
    private: bool = False
    archived: bool = False
    created_at: str = ""
    updated_at: str = ""

    @classmethod
    def new(cls, *, description: str = "", private: bool = False) -> RepoMeta:
        ts = datetime.now(UTC).isoformat()
        return cls(id=uuid.uuid4().hex, description=description, private=private,
                   created_at=ts, updated_at=ts)

    def changed(self, **fields: Any) -> RepoMeta:
        return replace(self, updated_at=datetime.now(UTC).isoformat(), **fields)

    def record(self) -> dict[str, Any]:
        return asdict(self)


class RepoStore:
    """Blocking file-system operations; the plugin runs them with ``asyncio.to_thread``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.home = root / ".home"

    def prepare(self) -> None:
        for d in (self.root, self.tmp, self.home):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, owner: str, name: str) -> Path:
        return self.root / owner / f"{name}.git"

    def exists(self, owner: str, name: str) -> bool:
        return (self.path(owner, name) / "HEAD").is_file()

    def list(self, owner: str | None = None) -> list[tuple[str, str]]:
        """``(owner, name)`` of every repository, sorted by full name."""
        owners = [owner] if owner is not None else sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and is_owner_name(d.name))
        out: list[tuple[str, str]] = []
        for o in owners:
            base = self.root / o
            if not base.is_dir():
                continue
            for entry in sorted(base.iterdir(), key=lambda p: p.name):
                name = entry.name.removesuffix(".git")
                if entry.name.endswith(".git") and (entry / "HEAD").is_file() and _valid_name(name):
                    out.append((o, name))
        return out

    def load(self, git_dir: Path) -> tuple[RepoMeta, str]:
        """Metadata and default branch (the HEAD symbolic-ref) of the repository at ``git_dir``."""
        return self.read_meta(git_dir), read_head(git_dir)

    def read_meta(self, git_dir: Path) -> RepoMeta:
        """The repository's metadata; a bare repository dropped in by hand gets some on first read."""
        file = git_dir / META_FILE
        try:
            data = json.loads(file.read_text("utf-8"))
            known = {k: data[k] for k in RepoMeta.__dataclass_fields__ if k in data}
            return RepoMeta(**known)
        except FileNotFoundError:
            meta = RepoMeta.new()
            self.write_meta(git_dir, meta)
            return meta

    def write_meta(self, git_dir: Path, meta: RepoMeta) -> None:
        file = git_dir / META_FILE
        tmp = file.with_name(f".{META_FILE}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(meta.record(), indent=2), "utf-8")
        os.replace(tmp, file)  # atomic: a reader sees the old or the new file, never half of one

    def staging_dir(self) -> Path:
        return self.tmp / f"repo-{uuid.uuid4().hex}.git"

    def publish(self, staged: Path, owner: str, name: str) -> bool:
        """Move a fully built repository into place; False if the name was taken meanwhile."""
        target = self.path(owner, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return False
        try:
            os.rename(staged, target)
        except OSError:
            return False
        return True

    def rename(self, owner: str, name: str, new_name: str) -> bool:
        target = self.path(owner, new_name)
        if target.exists():
            return False
        try:
            os.rename(self.path(owner, name), target)
        except OSError:
            return False
        return True

    def delete(self, owner: str, name: str) -> None:
        # Move aside first so the repository disappears at once, then remove at leisure.
        doomed = self.tmp / f"deleted-{uuid.uuid4().hex}"
        os.rename(self.path(owner, name), doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def discard(self, staged: Path) -> None:
        shutil.rmtree(staged, ignore_errors=True)


def read_head(git_dir: Path) -> str:
    """The branch HEAD points at. HEAD is a one-line file; reading it spares a git process."""
    head = (git_dir / "HEAD").read_text("utf-8").strip()
    if head.startswith("ref: refs/heads/"):
        return head.removeprefix("ref: refs/heads/")
    return "main"  # a detached HEAD in a bare repository: fall back to the usual default


def is_owner_name(owner: str) -> bool:
    """Owners are directories under the root: names of our own files and dirs are taken."""
    return _valid_name(owner) and not owner.startswith(".") and not owner.startswith("meta.sqlite3")


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True
