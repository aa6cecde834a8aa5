"""Artifact content of the local CI/CD provider: a sha256-addressed blob store and workspace globbing."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from wcmatch import glob

from mosaic.errors import InvalidRequest, MosaicError

CHUNK = 1 << 20
GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.NODIR
# A glob like '**' in a big checkout must not turn one step into thousands of artifacts.
MAX_FILES_PER_STEP = 1000


class BlobStore:
    """Blobs at ``<root>/<first two hex digits>/<sha256 hex>``; identical content is stored once."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def _commit(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Rename is atomic: a reader never sees a half-written blob.
        os.replace(tmp, final)

    def _tempfile(self) -> tuple[int, Path]:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir)
        return fd, Path(name)

    def put_bytes_sync(self, data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        if not self.path(digest).exists():
            fd, tmp = self._tempfile()
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                self._commit(tmp, digest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return digest, len(data)

    def put_fd_sync(self, src_fd: int, max_bytes: int) -> tuple[str, int]:
        """Copy an open file into the store while hashing it; refuses files over `max_bytes`."""
        h = hashlib.sha256()
        size = 0
        fd, tmp = self._tempfile()
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := os.read(src_fd, CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidRequest(f"artifact larger than the {max_bytes}-byte limit")
                    h.update(chunk)
                    out.write(chunk)
            digest = h.hexdigest()
            if not self.path(digest).exists():
                self._commit(tmp, digest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return digest, size

    def read_sync(self, digest: str) -> bytes:
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise MosaicError(f"artifact content sha256:{digest} is missing from the store") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise MosaicError(f"artifact content sha256:{digest} is corrupted in the store")
        return data

    async def put_bytes(self, data: bytes) -> tuple[str, int]:
        return await asyncio.to_thread(self.put_bytes_sync, data)

    async def read(self, digest: str) -> bytes:
        return await asyncio.to_thread(self.read_sync, digest)


@dataclass(slots=True)
class Collected:
    """Files a step's globs matched: stored (name, digest, size) and refused (name, reason)."""

    stored: list[tuple[str, str, int]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _confined(workspace: Path, rel: str) -> Path | str:
    """The real path of `rel` when it is a regular file inside `workspace`, else why it is refused."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts:
        return "outside the workspace"
    real = Path(os.path.realpath(workspace / pure))
    if not real.is_relative_to(workspace):
        return "resolves outside the workspace (symlink)"
    return real


def collect_sync(workspace: Path, globs: list[str], blobs: BlobStore, max_bytes: int) -> Collected:
    """Store the regular files under `workspace` that match `globs`; never read outside it."""
    root = Path(os.path.realpath(workspace))
    result = Collected()
    names = sorted(set(glob.glob(globs, root_dir=root, flags=GLOB_FLAGS)))
    for rel in names:
        if len(result.stored) >= MAX_FILES_PER_STEP:
            result.refused.append((rel, f"more than {MAX_FILES_PER_STEP} files matched"))
            continue
        target = _confined(root, rel)
        if isinstance(target, str):
            result.refused.append((rel, target))
            continue
        try:
            # O_NOFOLLOW: the checked real path cannot be swapped for a symlink before it is read.
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            result.refused.append((rel, f"cannot be opened ({exc.strerror})"))
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                result.refused.append((rel, "not a regular file"))
                continue
            try:
                digest, size = blobs.put_fd_sync(fd, max_bytes)
            except InvalidRequest as exc:
                result.refused.append((rel, exc.message))
                continue
            result.stored.append((PurePosixPath(rel).as_posix(), digest, size))
        finally:
            os.close(fd)
    return result
