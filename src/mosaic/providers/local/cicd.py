"""The embedded `local` CI/CD provider: pipelines run as shell steps in a checkout of a local repository.

Records live in SQLite (``<dataDir>/cicd/cicd.sqlite3``), artifact content in a sha256-addressed
store (``<dataDir>/cicd/artifacts``), job logs under ``<dataDir>/cicd/logs``. Repositories are the
bare repositories of the local git provider (``<gitDataDir>/git/<owner>/<name>.git``).

Executing commands is opt-in (``allowExec: true``): steps run on this machine with the gateway's
user rights, confined only by their working directory, a minimal environment, timeouts and
process-group kills. Triggers are recorded; runs start on ``trigger_pipeline`` (and ``rerun``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from mosaic.catalog.base import Page
from mosaic.catalog.cicd import (
    TERMINAL_JOB_STATUSES,
    TERMINAL_RUN_STATUSES,
    Artifact,
    ArtifactData,
    CancelRunParams,
    CreatePipelineParams,
    DownloadArtifactParams,
    GetJobLogParams,
    GetPipelineStatusParams,
    Job,
    JobLog,
    ListArtifactsParams,
    ListJobsParams,
    ListPipelinesParams,
    ListRunsParams,
    Pipeline,
    PipelineParams,
    PipelineRun,
    RerunParams,
    TriggerPipelineParams,
    UploadArtifactParams,
)
from mosaic.errors import ConfigError, Forbidden, InvalidRequest, NotFound, ProviderUnavailable
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.providers.local.cicd_artifacts import BlobStore
from mosaic.providers.local.cicd_definition import parse_definition
from mosaic.providers.local.cicd_exec import resolve_ref
from mosaic.providers.local.cicd_logs import read_range
from mosaic.providers.local.cicd_runner import RunExecutor, RunnerSettings, find_task, owner_alive
from mosaic.providers.local.cicd_store import CicdStore

MiB = 1024 * 1024


class LocalCicdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    data_dir: Path = Field(alias="dataDir", description="Where records, logs and artifacts are kept.")
    allow_exec: bool = Field(
        default=False, alias="allowExec",
        description="Run pipeline commands on this machine. Off by default: triggering is refused.",
    )
    git_data_dir: Path | None = Field(
        default=None, alias="gitDataDir",
        description="Data dir of the local git provider (repositories at <gitDataDir>/git/<owner>/"
                    "<name>.git); default: dataDir.",
    )
    max_concurrent_runs: int = Field(default=2, ge=1, le=64, alias="maxConcurrentRuns")
    default_timeout_s: int = Field(default=600, ge=1, le=86_400, alias="defaultTimeoutS")
    workspace_dir: Path | None = Field(
        default=None, alias="workspaceDir", description="Default: <dataDir>/cicd/workspaces.",
    )
    kill_grace_s: float = Field(
        default=5.0, ge=0, le=60, alias="killGraceS",
        description="Seconds between SIGTERM and SIGKILL when a step is canceled or times out.",
    )
    max_log_bytes: int = Field(default=16 * MiB, ge=1024, alias="maxLogBytes")
    max_artifact_bytes: int = Field(default=256 * MiB, ge=1, alias="maxArtifactBytes")

    @property
    def cicd_dir(self) -> Path:
        return self.data_dir / "cicd"

    @property
    def workspaces(self) -> Path:
        return self.workspace_dir or self.cicd_dir / "workspaces"

    @property
    def git_root(self) -> Path:
        return (self.git_data_dir or self.data_dir) / "git"


class LocalCicdPlugin(ProviderPlugin):
    provider = "local"
    service = "cicd"
    name = "Local CI/CD"
    version = "0.1.0"
    Config: ClassVar[type[BaseModel]] = LocalCicdConfig

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self._cfg: LocalCicdConfig | None = None
        self._store: CicdStore | None = None
        self._blobs: BlobStore | None = None
        self._executor: RunExecutor | None = None

    # -- lifecycle ----------------------------------------------------------
    async def initialize(self, config: BaseModel) -> None:
        if not isinstance(config, LocalCicdConfig):
            raise ConfigError([f"{self.id}: expected LocalCicdPlugin.Config, got {type(config).__name__}"])
        await super().initialize(config)
        self._cfg = config

    async def start(self) -> None:
        cfg = self.cfg
        await asyncio.to_thread(_make_dirs, cfg)
        store = CicdStore(cfg.cicd_dir / "cicd.sqlite3", self.id)
        await store.open()
        self._store = store
        self._blobs = BlobStore(cfg.cicd_dir / "artifacts")
        self._executor = RunExecutor(store, self._blobs, RunnerSettings(
            workspaces=cfg.workspaces, logs=cfg.cicd_dir / "logs",
            default_timeout_s=cfg.default_timeout_s, kill_grace_s=cfg.kill_grace_s,
            max_log_bytes=cfg.max_log_bytes, max_artifact_bytes=cfg.max_artifact_bytes,
            max_concurrent_runs=cfg.max_concurrent_runs,
        ))
        await self._recover(store)
        self._executor.register()
        await super().start()

    async def _recover(self, store: CicdStore) -> None:
        # A run still marked pending/running whose owner is gone was cut off by a crash.
        for run_id, owner in await store.nonterminal_runs():
            if not owner_alive(owner):
                await store.finish_run(run_id, "error",
                                       "interrupted: the provider stopped while this run was in progress")

    async def stop(self) -> None:
        if self._executor is not None:
            await self._executor.shutdown("canceled: the provider was stopped")
        await super().stop()

    async def dispose(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
        await super().dispose()

    # -- observation --------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        if not self.started or self._cfg is None:
            return HealthStatus(status="unhealthy", detail="not started")
        began = time.monotonic()
        try:
            await asyncio.to_thread(_probe_writable, self._cfg.cicd_dir)
        except OSError as exc:
            return HealthStatus(status="unhealthy", detail=f"data dir not writable: {exc.strerror}")
        ex = self.executor
        return HealthStatus(
            status="healthy", latency_ms=round((time.monotonic() - began) * 1000, 3),
            detail=f"{ex.running} running, {ex.queued} queued"
                   + ("" if self.cfg.allow_exec else "; command execution disabled (allowExec: false)"),
        )

    def metrics(self) -> dict[str, Any]:
        m = super().metrics()
        ex = self._executor
        m.update(runs_running=ex.running if ex else 0, runs_queued=ex.queued if ex else 0,
                 exec_allowed=bool(self._cfg and self._cfg.allow_exec))
        return m

    # -- helpers --------------------------------------------------------------
    @property
    def cfg(self) -> LocalCicdConfig:
        if self._cfg is None:
            raise ProviderUnavailable(f"provider {self.id!r} is not initialized", sent=False)
        return self._cfg

    @property
    def store(self) -> CicdStore:
        if self._store is None:
            raise ProviderUnavailable(f"provider {self.id!r} is not started", sent=False)
        return self._store

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            raise ProviderUnavailable(f"provider {self.id!r} is not started", sent=False)
        return self._blobs

    @property
    def executor(self) -> RunExecutor:
        if self._executor is None:
            raise ProviderUnavailable(f"provider {self.id!r} is not started", sent=False)
        return self._executor

    def _require_exec(self) -> None:
        if not self.cfg.allow_exec:
            raise Forbidden(
                f"provider {self.id!r} does not run pipelines: executing commands is disabled. "
                "Set `allowExec: true` in this provider's config to enable it (steps then run on "
                "this machine with the gateway's user rights).",
                details={"provider": self.id, "setting": "allowExec"},
            )
        if not self.started or self.executor.closed:
            raise ProviderUnavailable(f"provider {self.id!r} is stopped", sent=False)

    async def _bare_repo(self, repo: str) -> Path:
        owner, _, name = repo.rpartition("/")
        path = self.cfg.git_root.joinpath(*owner.split("/"), f"{name}.git")
        if not await asyncio.to_thread(lambda: (path / "HEAD").is_file()):
            raise NotFound(f"repository {repo} not found in the local git data dir",
                           details={"repo": repo})
        return path

    async def _run(self, run_id: str, repo: str | None) -> PipelineRun:
        return await self.store.get_run(run_id, repo)

    # -- pipelines ------------------------------------------------------------
    async def create_pipeline(self, p: CreatePipelineParams, ctx: RequestContext) -> Pipeline:
        await self._bare_repo(p.repo)
        steps, triggers = (parse_definition(p.definition) if p.definition is not None
                           else (p.steps, p.triggers))
        return await self.store.put_pipeline(p.repo, p.name, steps, triggers, p.definition, p.replace)

    async def get_pipeline(self, p: PipelineParams, ctx: RequestContext) -> Pipeline:
        return await self.store.get_pipeline(p.repo, p.pipeline)

    async def list_pipelines(self, p: ListPipelinesParams, ctx: RequestContext) -> Page[Pipeline]:
        return await self.store.list_pipelines(p.repo, p.cursor, p.limit)

    # -- runs ---------------------------------------------------------------
    async def trigger_pipeline(self, p: TriggerPipelineParams, ctx: RequestContext) -> PipelineRun:
        self._require_exec()
        pipeline = await self.store.get_pipeline(p.repo, p.pipeline)
        bare = await self._bare_repo(p.repo)
        ref, sha = await resolve_ref(bare, p.repo, p.ref)
        run = await self.store.create_run(pipeline, pipeline.steps, ref, sha, p.variables,
                                          self.executor.owner)
        await self.executor.launch(run.id, bare)
        return await self._run(run.id, None)

    async def get_pipeline_status(self, p: GetPipelineStatusParams, ctx: RequestContext) -> PipelineRun:
        return await self._run(p.run_id, p.repo)

    async def list_runs(self, p: ListRunsParams, ctx: RequestContext) -> Page[PipelineRun]:
        return await self.store.list_runs(p.repo, p.pipeline, p.status, p.cursor, p.limit)

    async def cancel_run(self, p: CancelRunParams, ctx: RequestContext) -> PipelineRun:
        run = await self._run(p.run_id, p.repo)
        if run.status in TERMINAL_RUN_STATUSES:
            return run
        found = find_task(run.id)
        if found is not None:
            executor, _ = found
            wait = self.cfg.kill_grace_s + 5
            remaining = ctx.remaining()
            await executor.cancel(run.id, "canceled by request",
                                  wait if remaining is None else min(wait, remaining))
        else:
            # Owned by another process (it stops at its next step) or orphaned: record it here.
            await self.store.finish_run(run.id, "canceled", "canceled by request")
        return await self._run(run.id, None)

    async def rerun(self, p: RerunParams, ctx: RequestContext) -> PipelineRun:
        self._require_exec()
        old = await self._run(p.run_id, p.repo)
        pipeline = await self.store.get_pipeline(old.repo, old.pipeline)
        steps = await self.store.run_steps(old.id)
        bare = await self._bare_repo(old.repo)
        if old.sha is None:
            raise InvalidRequest(f"run {old.id!r} has no commit to run again")
        run = await self.store.create_run(pipeline, steps, old.ref, old.sha, old.variables,
                                          self.executor.owner, rerun_of=old.id)
        await self.executor.launch(run.id, bare)
        return await self._run(run.id, None)

    # -- jobs ---------------------------------------------------------------
    async def list_jobs(self, p: ListJobsParams, ctx: RequestContext) -> Page[Job]:
        await self._run(p.run_id, p.repo)
        return await self.store.list_jobs(p.run_id, p.cursor, p.limit)

    async def get_job_log(self, p: GetJobLogParams, ctx: RequestContext) -> JobLog:
        await self._run(p.run_id, p.repo)
        job = await self.store.get_job(p.run_id, p.job)
        path = self.executor.log_path(p.run_id, p.job)
        data, size = await asyncio.to_thread(read_range, path, p.offset, p.limit)
        next_offset = p.offset + len(data)
        return JobLog(
            provider=self.id, id=job.id, run_id=p.run_id, job=p.job, offset=p.offset,
            next_offset=next_offset, size=size, content=data.decode(errors="replace"),
            complete=job.status in TERMINAL_JOB_STATUSES and next_offset >= size,
            raw={"path": str(path.relative_to(self.cfg.cicd_dir)), "job_status": job.status},
        )

    # -- artifacts ------------------------------------------------------------
    async def upload_artifact(self, p: UploadArtifactParams, ctx: RequestContext) -> Artifact:
        run = await self._run(p.run_id, p.repo)
        limit = self.cfg.max_artifact_bytes
        if len(p.content) // 4 * 3 > limit + 3:
            raise InvalidRequest(f"artifact larger than the {limit}-byte limit of provider {self.id!r}")
        try:
            data = await asyncio.to_thread(base64.b64decode, p.content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("`content` is not valid base64") from None
        if len(data) > limit:
            raise InvalidRequest(f"artifact larger than the {limit}-byte limit of provider {self.id!r}")
        digest, size = await self.blobs.put_bytes(data)
        return await self.store.add_artifact(run.id, p.name, digest, size, p.content_type, job=None)

    async def download_artifact(self, p: DownloadArtifactParams, ctx: RequestContext) -> ArtifactData:
        if p.repo is not None and await self.store.artifact_repo(p.artifact_id) != p.repo:
            raise NotFound(f"no artifact {p.artifact_id!r} in {p.repo}",
                           details={"artifact_id": p.artifact_id})
        artifact = await self.store.get_artifact(p.artifact_id)
        data = await self.blobs.read(artifact.digest.removeprefix("sha256:"))
        content = await asyncio.to_thread(lambda: base64.b64encode(data).decode("ascii"))
        return ArtifactData(**artifact.model_dump(), content=content)

    async def list_artifacts(self, p: ListArtifactsParams, ctx: RequestContext) -> Page[Artifact]:
        await self._run(p.run_id, p.repo)
        return await self.store.list_artifacts(p.run_id, p.cursor, p.limit)


def _make_dirs(cfg: LocalCicdConfig) -> None:
    for d in (cfg.cicd_dir, cfg.cicd_dir / "artifacts", cfg.cicd_dir / "logs", cfg.workspaces):
        d.mkdir(parents=True, exist_ok=True)


def _probe_writable(directory: Path) -> None:
    fd, name = tempfile.mkstemp(dir=directory, prefix=".health-")
    os.close(fd)
    os.unlink(name)
