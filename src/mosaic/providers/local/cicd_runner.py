"""Executes pipeline runs of the local CI/CD provider as background tasks.

A run: wait for a slot (bounded concurrency) → fresh workspace → checkout → each step's
script in its own process group, output streamed to the job log → artifacts collected →
workspace removed (logs and artifacts are kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mosaic.catalog.cicd import PipelineStep
from mosaic.providers.local.cicd_artifacts import BlobStore, collect_sync
from mosaic.providers.local.cicd_exec import CheckoutError, base_env, checkout, run_step, step_script
from mosaic.providers.local.cicd_logs import LogSink
from mosaic.providers.local.cicd_store import CicdStore

log = logging.getLogger(__name__)

# Owners of live executors in this process, so that a second instance on the same data dir (a
# plugin reload) neither mistakes the first one's runs for crashed ones nor fails to cancel them.
_LIVE: dict[str, RunExecutor] = {}


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(owner: str) -> bool:
    """Whether the executor recorded as a run's owner ("pid:token") may still be running it."""
    pid_text, _, token = owner.partition(":")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return token in _LIVE
    return _pid_alive(pid)


def find_task(run_id: str) -> tuple[RunExecutor, asyncio.Task[None]] | None:
    for executor in list(_LIVE.values()):
        task = executor.tasks.get(run_id)
        if task is not None and not task.done():
            return executor, task
    return None


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    workspaces: Path
    logs: Path
    default_timeout_s: float
    kill_grace_s: float
    max_log_bytes: int
    max_artifact_bytes: int
    max_concurrent_runs: int


class RunExecutor:
    def __init__(self, store: CicdStore, blobs: BlobStore, settings: RunnerSettings) -> None:
        self.store = store
        self.blobs = blobs
        self.settings = settings
        self.token = uuid.uuid4().hex
        self.owner = f"{os.getpid()}:{self.token}"
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.running = 0
        self.queued = 0
        self.closed = False
        self._slots = asyncio.Semaphore(settings.max_concurrent_runs)
        self._cancel_reasons: dict[str, str] = {}

    def register(self) -> None:
        _LIVE[self.token] = self

    def log_path(self, run_id: str, job: str) -> Path:
        return self.settings.logs / run_id / f"{job}.log"

    # -- control ------------------------------------------------------------
    async def launch(self, run_id: str, bare: Path) -> None:
        if self.closed:
            # Triggered while the provider was stopping: never start work nobody will stop.
            await self.store.finish_run(run_id, "canceled", "canceled: the provider was stopped")
            return
        task = asyncio.create_task(self._execute(run_id, bare), name=f"cicd-run-{run_id}")
        self.tasks[run_id] = task
        task.add_done_callback(lambda _t: self.tasks.pop(run_id, None))

    async def cancel(self, run_id: str, reason: str, wait: float) -> None:
        task = self.tasks.get(run_id)
        if task is None or task.done():
            return
        self._cancel_reasons[run_id] = reason
        task.cancel()
        await asyncio.wait({task}, timeout=wait)

    async def shutdown(self, reason: str) -> None:
        """Cancel every run of this executor and wait until each is recorded as canceled."""
        self.closed = True
        tasks = [t for t in self.tasks.values() if not t.done()]
        for run_id, task in list(self.tasks.items()):
            self._cancel_reasons[run_id] = reason
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.kill_grace_s + 10)
        # Only now: until its runs are recorded as canceled, another instance must not take them
        # for crashed ones.
        _LIVE.pop(self.token, None)

    # -- execution ------------------------------------------------------------
    async def _execute(self, run_id: str, bare: Path) -> None:
        self.queued += 1
        waiting = True
        try:
            async with self._slots:
                self.queued -= 1
                waiting = False
                self.running += 1
                try:
                    await self._run(run_id, bare)
                finally:
                    self.running -= 1
        except asyncio.CancelledError:
            if waiting:
                self.queued -= 1
            reason = self._cancel_reasons.pop(run_id, "canceled")
            await self.store.finish_run(run_id, "canceled", reason)
            raise
        except Exception as exc:  # a bug or an OS failure must still end the run, never leave it running
            log.exception("pipeline run %s failed", run_id)
            await self.store.finish_run(run_id, "error", f"internal error: {type(exc).__name__}: {exc}")

    async def _run(self, run_id: str, bare: Path) -> None:
        if not await self.store.start_run(run_id):
            return  # canceled while it waited for a slot
        workspace = self.settings.workspaces / run_id
        try:
            outcome = await self._in_workspace(run_id, bare, workspace)
        finally:
            await asyncio.to_thread(remove_tree, workspace)
        # Recorded only once the workspace is gone: a final status means nothing is left behind.
        if outcome is not None:
            await self.store.finish_run(run_id, *outcome)

    async def _in_workspace(self, run_id: str, bare: Path, workspace: Path) -> tuple[str, str | None] | None:
        """Check out and run every step; the final (status, error), or None if canceled elsewhere."""
        run = await self.store.get_run(run_id)
        steps = await self.store.run_steps(run_id)
        await asyncio.to_thread(_fresh_dir, workspace)
        try:
            await checkout(bare, run.sha or run.ref or "HEAD", workspace)
        except CheckoutError as exc:
            return "error", str(exc)
        env = base_env(workspace) | {
            "CI": "true",
            "MOSAIC_REPO": run.repo,
            "MOSAIC_PIPELINE": run.pipeline,
            "MOSAIC_RUN_NUMBER": str(run.number),
            "MOSAIC_REF": run.ref or "",
            "MOSAIC_SHA": run.sha or "",
        }
        for number, step in enumerate(steps, start=1):
            # Another process may have canceled the run in the database meanwhile.
            if await self.store.run_status(run_id) != "running":
                return None
            if await self._step(run_id, number, step, workspace, env, run.variables) != "success":
                return "failure", None
        return "success", None

    async def _step(self, run_id: str, number: int, step: PipelineStep, workspace: Path,
                    base: dict[str, str], variables: dict[str, str]) -> str:
        await self.store.set_job(run_id, number, "running", started=True)
        # Trigger variables override the step's env; the runner's own variables override both.
        env = base | step.env | variables | {
            "CI": "true", "HOME": str(workspace), "MOSAIC_RUN_ID": run_id, "MOSAIC_JOB": step.name,
        }
        timeout = float(step.timeout_s or self.settings.default_timeout_s)
        sink = LogSink(self.log_path(run_id, step.name), self.settings.max_log_bytes)
        await sink.open()
        try:
            try:
                result = await run_step(step_script(step.commands), workspace, env, timeout, sink,
                                        self.settings.kill_grace_s)
            except asyncio.CancelledError:
                await sink.note("canceled: the step's processes were killed")
                raise
            if result.timed_out:
                await sink.note(f"step timed out after {timeout:g}s; its processes were killed")
                status = "failure"
            elif result.exit_code == 0:
                status = "success"
            else:
                await sink.note(f"step failed with exit code {result.exit_code}")
                status = "failure"
            if step.artifacts:
                await self._collect(run_id, step, workspace, sink)
        finally:
            await sink.close()
        await self.store.set_job(run_id, number, status, exit_code=result.exit_code, finished=True)
        return status

    async def _collect(self, run_id: str, step: PipelineStep, workspace: Path, sink: LogSink) -> None:
        collected = await asyncio.to_thread(collect_sync, workspace, step.artifacts, self.blobs,
                                            self.settings.max_artifact_bytes)
        for name, reason in collected.refused:
            await sink.note(f"artifact {name!r} refused: {reason}")
        for name, digest, size in collected.stored:
            # A later step producing the same path supersedes the earlier artifact.
            await self.store.add_artifact(run_id, name, digest, size, "application/octet-stream",
                                          job=step.name, replace=True)
            await sink.note(f"artifact {name!r} stored ({size} bytes, sha256:{digest})")
        if not collected.stored and not collected.refused:
            await sink.note(f"no files matched the artifact globs {step.artifacts}")


def remove_tree(path: Path) -> None:
    """Remove a workspace even where a step left read-only directories behind."""

    def _retry(func: Callable[..., object], target: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            # Never chmod through a symlink: its target may be outside the workspace.
            if os.path.isdir(target) and not os.path.islink(target):
                os.chmod(target, 0o700)
            func(target)

    if path.exists():
        shutil.rmtree(path, onerror=_retry)


def _fresh_dir(path: Path) -> None:
    remove_tree(path)
    path.mkdir(parents=True)
