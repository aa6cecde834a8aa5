"""Migration phases: atomic switches under load, persistence, switches from another process."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.routing.fakes import gateway, plugin

from mosaic.errors import InvalidRequest
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.routing.phases import PhaseStore, record_offline

PHASES: dict[str, Any] = {
    "phases": [
        {"phase": 1, "description": "everything on a", "routing": [{"pattern": "*", "provider": "a"}]},
        {"phase": 2, "routing": [{"pattern": "*", "provider": "b"}]},
        {"phase": 3, "routing": [{"default": None, "provider": "b"},
                                 {"pattern": "legacy:*", "provider": "a"}],
         "legacy": ["old/*"]},
    ],
    "activePhase": 1,
    "phaseWatchInterval": 50,
    "loadBalancing": {"healthCheck": {"interval": 60000}},
}


def seeded(gw: Gateway) -> None:
    for pid in ("a", "b"):
        p = plugin(gw, pid)
        for name in ("o/r", "old/r"):
            owner, _, n = name.partition("/")
            p.repos[name] = p._repo(owner, n)


async def test_switch_under_concurrent_load_loses_no_request(tmp_path: Path) -> None:
    gw = gateway(PHASES, plugins=("a", "b"), data_dir=tmp_path)
    await gw.start()
    try:
        seeded(gw)
        plugin(gw, "a").delay = plugin(gw, "b").delay = 0.02
        results: list[tuple[int, str, str]] = []

        async def one(i: int) -> None:
            ctx = RequestContext()
            repo = await gw.execute("git.get_repository", {"repo": "o/r"}, ctx)
            results.append((i, ctx.meta["routing"]["phase"], repo.provider))  # type: ignore[attr-defined]

        first = [asyncio.create_task(one(i)) for i in range(150)]
        await asyncio.sleep(0.005)  # all 150 are routed and in flight on phase 1
        assert plugin(gw, "a").inflight == 150
        entry = await gw.routing.phases.switch("2", by="test", reason="cut over")
        assert entry["from"] == "1" and entry["to"] == "2"
        second = [asyncio.create_task(one(i)) for i in range(150, 300)]
        await asyncio.gather(*first, *second)
        assert len(results) == 300
        by_phase = {(phase, provider) for _, phase, provider in results}
        assert by_phase == {("1", "a"), ("2", "b")}
        assert all(phase == "1" for i, phase, _ in results if i < 150)
        assert all(phase == "2" for i, phase, _ in results if i >= 150)
    finally:
        await gw.stop()


async def test_switches_are_persisted_and_survive_a_restart(tmp_path: Path) -> None:
    gw = gateway(PHASES, plugins=("a", "b"), data_dir=tmp_path)
    await gw.start()
    try:
        await gw.routing.phases.switch("3", by="alice", reason="team A done")
    finally:
        await gw.stop()
    state = json.loads((tmp_path / "routing-phase.json").read_text())
    assert state["activePhase"] == "3" and state["configActivePhase"] == "1"
    assert state["switches"][-1]["by"] == "alice" and state["switches"][-1]["reason"] == "team A done"

    again = gateway(PHASES, plugins=("a", "b"), data_dir=tmp_path)
    await again.start()
    try:
        seeded(again)
        assert again.routing.phases.active == "3"
        assert [e["to"] for e in again.routing.phases.log] == ["3"]
        # Phase 3: default b, legacy repositories stay on a.
        assert (await again.execute("git.get_repository", {"repo": "o/r"})).provider == "b"  # type: ignore[attr-defined]
        assert (await again.execute("git.get_repository", {"repo": "old/r"})).provider == "a"  # type: ignore[attr-defined]
    finally:
        await again.stop()

    # The operator then edits the config's activePhase: the file no longer decides.
    edited = gateway({**PHASES, "activePhase": 2}, plugins=("a", "b"), data_dir=tmp_path)
    await edited.start()
    try:
        assert edited.routing.phases.active == "2"
    finally:
        await edited.stop()


async def test_a_switch_written_by_another_process_is_adopted(tmp_path: Path) -> None:
    gw = gateway(PHASES, plugins=("a", "b"), data_dir=tmp_path)
    await gw.start()
    try:
        seeded(gw)
        # What `mosaic route phase 2` does, from another process: write the state file.
        await asyncio.to_thread(record_offline, PhaseStore(tmp_path), ["1", "2", "3"], "1", "2",
                                "cli:bob", "go")
        deadline = time.monotonic() + 2
        while gw.routing.phases.active != "2":
            assert time.monotonic() < deadline, "the gateway did not adopt the switch"
            await asyncio.sleep(0.02)
        assert (await gw.execute("git.get_repository", {"repo": "o/r"})).provider == "b"  # type: ignore[attr-defined]
        assert gw.routing.phases.log[-1]["by"] == "cli:bob"
    finally:
        await gw.stop()


async def test_unknown_phase_is_refused(tmp_path: Path) -> None:
    gw = gateway(PHASES, plugins=("a", "b"), data_dir=tmp_path)
    with pytest.raises(InvalidRequest, match="unknown routing phase '9' \\(phases: 1, 2, 3\\)"):
        await gw.routing.phases.switch("9")
    with pytest.raises(InvalidRequest):
        record_offline(PhaseStore(tmp_path), ["1", "2"], "1", "nine", "x", "")
    assert not (tmp_path / "routing-phase.json").exists()


def test_concurrent_writers_keep_every_log_entry(tmp_path: Path) -> None:
    import threading

    store = PhaseStore(tmp_path)

    def writer(n: int) -> None:
        for i in range(10):
            record_offline(store, ["1", "2"], "1", "2" if i % 2 else "1", f"w{n}", str(i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = store.read()
    assert state is not None and len(state["switches"]) == 40
