"""Migration phases: named rule sets, switched atomically, every switch recorded.

The active phase and the switch log live in ``<state dir>/routing-phase.json`` so that

* a restart keeps the phase an operator switched to (unless the configuration's own
  ``activePhase`` has been changed since, which then wins: the file records which
  ``activePhase`` it was switched from);
* ``mosaic route phase PHASE`` run in another process switches a running gateway: the
  gateway watches the file (``phaseWatchInterval``) and applies what it finds.

Writers take an exclusive ``flock`` for the read-modify-write and replace the file
atomically, so concurrent switches never lose a log entry or leave a torn file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from mosaic.errors import InvalidRequest, MosaicError
from mosaic.gateway.layers import REGISTRY
from mosaic.routing.ruleset import RuleSet

log = logging.getLogger("mosaic.routing.phases")

SWITCHES = Counter("mosaic_routing_phase_switches", "Routing phase switches.", ["to"], registry=REGISTRY)

STATE_FILE = "routing-phase.json"
MAX_LOG = 1000


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # non-POSIX: single-writer assumption
        yield
        return
    with open(path.with_suffix(".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class PhaseStore:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / STATE_FILE

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable phase state %s: %s", self.path, exc)
            return None
        return data if isinstance(data, dict) else None

    def mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def record(self, entry: dict[str, Any], config_active: str | None) -> dict[str, Any]:
        """Append a switch and make its target the active phase."""
        with _locked(self.path):
            state = self.read() or {}
            switches = list(state.get("switches", []))[-(MAX_LOG - 1):]
            switches.append(entry)
            state = {"activePhase": entry["to"], "configActivePhase": config_active,
                     "updatedAt": entry["at"], "switches": switches}
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
            os.replace(tmp, self.path)
        return state


def switch_entry(frm: str | None, to: str, by: str, reason: str, source: str) -> dict[str, Any]:
    return {"from": frm, "to": to, "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "by": by, "reason": reason, "source": source}


class PhaseController:
    def __init__(self, rulesets: dict[str | None, RuleSet], config_active: str | None,
                 store: PhaseStore | None) -> None:
        self.rulesets = rulesets
        self.config_active = config_active
        self.store = store
        self.active: str | None = config_active
        self.current: RuleSet = rulesets[config_active]
        self.log: list[dict[str, Any]] = []
        self._mtime: int | None = None
        self._lock = asyncio.Lock()

    @property
    def names(self) -> list[str]:
        return [n for n in self.rulesets if n is not None]

    def _check(self, name: str) -> str:
        name = str(name)
        if name not in self.rulesets:
            known = ", ".join(self.names) or "none are configured"
            raise InvalidRequest(f"unknown routing phase {name!r} (phases: {known})",
                                 details={"phase": name, "phases": self.names})
        return name

    def apply(self, name: str, entry: dict[str, Any]) -> None:
        """Swap the rule set: one assignment, so no request ever sees half a switch."""
        self.current = self.rulesets[name]
        self.active = name
        self.log.append(entry)
        del self.log[:-MAX_LOG]
        SWITCHES.labels(name).inc()
        log.info("routing phase %s -> %s (by %s%s)", entry.get("from"), name, entry.get("by"),
                 f": {entry['reason']}" if entry.get("reason") else "")

    async def switch(self, name: str, *, by: str = "api", reason: str = "",
                     source: str = "api") -> dict[str, Any]:
        """Record the switch, then make it: a switch that could not be recorded does not happen."""
        name = self._check(name)
        async with self._lock:
            entry = switch_entry(self.active, name, by, reason, source)
            if self.store is not None:
                store = self.store
                try:
                    await asyncio.to_thread(store.record, entry, self.config_active)
                except OSError as exc:
                    raise MosaicError(f"routing phase not switched: cannot record the switch in "
                                      f"{store.path}: {exc.strerror}") from None
                self._mtime = await asyncio.to_thread(store.mtime)
            self.apply(name, entry)
        return entry

    async def load(self) -> None:
        """Apply the persisted phase at start-up (see the module docstring)."""
        if self.store is None or not self.names:
            return
        store = self.store
        state = await asyncio.to_thread(store.read)
        self._mtime = await asyncio.to_thread(store.mtime)
        if not state:
            return
        self.log = [e for e in state.get("switches", []) if isinstance(e, dict)][-MAX_LOG:]
        self._adopt(state, startup=True)

    def _adopt(self, state: dict[str, Any], *, startup: bool) -> None:
        target = state.get("activePhase")
        if not isinstance(target, str) or target == self.active:
            return
        if target not in self.rulesets:
            log.warning("persisted routing phase %r is not configured; staying on %r", target, self.active)
            return
        if startup and state.get("configActivePhase") != self.config_active:
            log.info("configuration's activePhase changed to %r since the last switch; it wins",
                     self.config_active)
            return
        last = (state.get("switches") or [{}])[-1]
        entry = dict(last) if isinstance(last, dict) and last.get("to") == target else \
            switch_entry(self.active, target, "state file", "", "file")
        self.current = self.rulesets[target]
        prev, self.active = self.active, target
        if not startup:
            self.log.append(entry)
            del self.log[:-MAX_LOG]
            SWITCHES.labels(target).inc()
        log.info("routing phase %s -> %s (from %s)", prev, target, self.store.path if self.store else "?")

    async def poll(self) -> None:
        """Adopt a switch written by another process, if any."""
        if self.store is None:
            return
        store = self.store
        m = await asyncio.to_thread(store.mtime)
        if m is None or m == self._mtime:
            return
        self._mtime = m
        state = await asyncio.to_thread(store.read)
        if state:
            self._adopt(state, startup=False)

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.poll()
            except Exception:
                log.exception("checking the routing phase state failed")

    def view(self) -> dict[str, Any]:
        return {"active": self.active, "phases": self.names, "configured_active": self.config_active,
                "switches": list(self.log), "state_file": str(self.store.path) if self.store else None,
                "at": time.time()}


def active_from_state(state: dict[str, Any] | None, phases: list[str],
                      config_active: str | None) -> str | None:
    """The phase a gateway starting now would use (see the module docstring)."""
    if not state:
        return config_active
    persisted = state.get("activePhase")
    if state.get("configActivePhase") == config_active and isinstance(persisted, str) and persisted in phases:
        return persisted
    return config_active


def record_offline(store: PhaseStore, phases: list[str], config_active: str | None, name: str,
                   by: str, reason: str) -> dict[str, Any]:
    """Switch without a running gateway (the CLI): write the state a gateway will adopt."""
    name = str(name)
    if name not in phases:
        known = ", ".join(phases) or "none are configured"
        raise InvalidRequest(f"unknown routing phase {name!r} (phases: {known})",
                             details={"phase": name, "phases": phases})
    current = active_from_state(store.read(), phases, config_active)
    entry = switch_entry(current, name, by, reason, "cli")
    store.record(entry, config_active)
    return entry
