"""Job log files of the local CI/CD runner: bounded appends while a step runs, ranged reads for tailing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import BinaryIO

CHUNK = 65_536
NOTE_PREFIX = "[mosaic] "


class LogSink:
    """Appends a job's output to its log file; stops storing (but keeps draining) past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: BinaryIO | None = None
        self._written = 0
        self._truncated = False

    async def open(self) -> None:
        def _open() -> tuple[BinaryIO, int]:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = self.path.open("ab")
            return f, f.tell()

        self._file, self._written = await asyncio.to_thread(_open)

    async def write(self, data: bytes) -> None:
        if self._file is None or not data or self._truncated:
            return
        room = self.max_bytes - self._written
        if len(data) > room:
            data = data[:max(room, 0)]
            self._truncated = True
        f = self._file

        def _write() -> None:
            f.write(data)
            if self._truncated:
                f.write(f"\n{NOTE_PREFIX}log truncated: the job wrote more than "
                        f"{self.max_bytes} bytes\n".encode())
            # Flushed at once so that readers tailing the file see output as it comes.
            f.flush()

        self._written += len(data)
        await asyncio.to_thread(_write)

    async def note(self, text: str) -> None:
        """A line from the runner itself (not the job), always written even past the size cap."""
        if self._file is None:
            return
        f = self._file
        line = f"{NOTE_PREFIX}{text}\n".encode()

        def _write() -> None:
            f.write(line)
            f.flush()

        await asyncio.to_thread(_write)

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(CHUNK):
            await self.write(chunk)

    async def close(self) -> None:
        if self._file is not None:
            f, self._file = self._file, None
            await asyncio.to_thread(f.close)


def _utf8_prefix(data: bytes) -> int:
    """Length of the longest prefix of `data` that does not end inside a UTF-8 sequence."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        b = data[n - back]
        if b & 0xC0 == 0x80:  # continuation byte: look further back for the lead byte
            continue
        if b < 0x80:
            return n
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return n if back >= need else n - back
    return n


def read_range(path: Path, offset: int, limit: int) -> tuple[bytes, int]:
    """(bytes from `offset`, at most `limit`, cut at a character boundary; current file size)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b"", 0
    try:
        size = os.fstat(fd).st_size
        if offset >= size:
            return b"", size
        data = os.pread(fd, min(limit, size - offset), offset)
    finally:
        os.close(fd)
    if offset + len(data) < size:
        cut = _utf8_prefix(data)
        # Never return nothing while there is more: a limit smaller than one character still advances.
        if cut > 0:
            data = data[:cut]
    return data, size
