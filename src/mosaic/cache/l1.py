"""L1: a bounded in-process LRU with per-entry TTL and a tag index for invalidation."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Entry:
    value: Any
    expires: float  # time.monotonic()
    tags: tuple[str, ...]
    negative: bool = False


class L1Cache:
    """At most ``max_size`` entries; the least recently used goes first. Not thread-safe (one
    event loop)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        # Last invalidation time per tag: a fetch that started before it must not be stored.
        self._stamps: dict[str, float] = {}
        self.hits = self.misses = self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> Entry | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires <= time.monotonic():
            self._remove(key)
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return entry

    def set(self, key: str, value: Any, ttl: float, tags: tuple[str, ...], *, negative: bool = False,
            fetch_started: float | None = None) -> bool:
        """Store unless one of ``tags`` was invalidated after ``fetch_started`` (monotonic)."""
        if ttl <= 0:
            return False
        if fetch_started is not None and self._stamps:
            stamp = self._stamps.get("*")
            if stamp is not None and stamp >= fetch_started:
                return False
            for tag in tags:
                stamp = self._stamps.get(tag)
                if stamp is not None and stamp >= fetch_started:
                    return False
        if key in self._data:
            self._remove(key)
        self._data[key] = Entry(value, time.monotonic() + ttl, tags, negative)
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._data) > self.max_size:
            oldest = next(iter(self._data))
            self._remove(oldest)
            self.evictions += 1
        return True

    def invalidate(self, tags: list[str] | tuple[str, ...], max_ttl: float) -> int:
        now = time.monotonic()
        removed = 0
        for tag in tags:
            self._stamps[tag] = now
            for key in self._by_tag.pop(tag, ()):
                if key in self._data:
                    self._remove(key)
                    removed += 1
        if len(self._stamps) > 4 * self.max_size + 1000:
            horizon = now - max_ttl
            self._stamps = {t: s for t, s in self._stamps.items() if s > horizon or t == "*"}
        return removed

    def clear(self) -> None:
        now = time.monotonic()
        # Everything fetched before now may predate an invalidation we did not hear about.
        self._stamps = {"*": now}
        self._data.clear()
        self._by_tag.clear()

    def _remove(self, key: str) -> None:
        entry = self._data.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
