"""GitHub Actions as a CI/CD provider, over the REST API (same base, auth and limits as ``git.py``).

How the catalog maps:

* pipelines are workflow files (``GET /repos/{o}/{r}/actions/workflows``); a pipeline is named by
  its file name without extension, or addressed by file name or numeric workflow id.
* ``create_pipeline`` commits a workflow file into ``workflows.directory`` on the default branch
  through the contents API — the only way to define a workflow. ``steps``/``triggers`` are written
  as one job (``workflow_yaml.py``); a raw ``definition`` is committed as given. GitHub registers a
  new workflow a moment after the push: until then the pipeline is returned from the commit.
* ``trigger_pipeline`` is a ``workflow_dispatch`` event (``POST .../workflows/{id}/dispatches``); the
  workflow must have that trigger, and ``variables`` are sent as its ``inputs`` (which the workflow
  must declare). GitHub answers 200 with the run id when asked (``return_run_details``); servers that
  do not know that option answer 204 without an id — or refuse the option with a 422, after which it
  is no longer sent. The run is then found by polling the workflow's ``workflow_dispatch`` runs on
  that ref (the 20 newest) every ``dispatchPollMs`` for at most ``dispatchTimeoutMs``: the earliest
  one created since the dispatch (by the server's ``Date``) that was not there before it (known once
  the server is known not to return ids) and that this instance has not already handed out. Two
  clients dispatching the same workflow and ref at the same second can still swap runs — GitHub
  exposes nothing that links a dispatch to its run.
* runs, jobs, cancel and re-run map one to one (a re-run reuses the run id: ``run_attempt`` + 1).
* job logs and artifact archives are 302 redirects to short-lived download URLs, fetched by
  :meth:`GitHubHttpPlugin.download`: credentials go only to the API's own host.
* ``upload_artifact``: the REST API has no upload endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import re
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mosaic.catalog.base import Page
from mosaic.catalog.cicd import (
    TERMINAL_JOB_STATUSES,
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
    check_relative_path,
)
from mosaic.errors import Conflict, InvalidRequest, NotFound, ProviderUnavailable, Timeout
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import json_body, quote_path, quote_segment
from mosaic.plugins.http_pagination import LinkHeaderPagination, decode_cursor
from mosaic.providers.github import actions_mapping as amap
from mosaic.providers.github import mapping, workflow_yaml
from mosaic.providers.github.base import GitHubConfig, GitHubHttpPlugin

_EVENT = re.compile(r"^[a-z_]+$")
_WORKFLOW_EXT = (".yml", ".yaml")
# Dispatch time is read from the server's Date header (whole seconds); runs created up to this long
# before it may still be ours.
_DISPATCH_SKEW_S = 2.0
_JOB_PAGES_MAX = 10
_CLAIMED_MAX = 256


class WorkflowsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    directory: str = Field(default=".github/workflows",
                           description="Where create_pipeline commits workflow files.")
    trigger_events: list[str] = Field(
        default_factory=lambda: ["push", "pull_request"], alias="triggerEvents",
        description="GitHub events of the workflows create_pipeline writes when no triggers are given "
                    "(workflow_dispatch is always added).")

    @field_validator("directory")
    @classmethod
    def _directory(cls, v: str) -> str:
        return check_relative_path(v.strip(), "workflows.directory").rstrip("/")

    @field_validator("trigger_events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not _EVENT.match(e)]
        if bad:
            raise ValueError(f"not GitHub event names: {', '.join(bad)}")
        return v


class GitHubActionsConfig(GitHubConfig):
    workflows: WorkflowsConfig = Field(default_factory=WorkflowsConfig)
    runs_on: str = Field(default="ubuntu-latest", alias="runsOn",
                         description="Runner label of the workflows create_pipeline writes.")
    dispatch_timeout_ms: int = Field(default=15_000, alias="dispatchTimeoutMs", ge=0, le=120_000,
                                     description="How long trigger_pipeline looks for the dispatched run.")
    dispatch_poll_ms: int = Field(default=1_000, alias="dispatchPollMs", ge=1, le=30_000)


class GitHubActionsPlugin(GitHubHttpPlugin):
    service = "cicd"
    name: ClassVar[str] = "GitHub Actions"
    version: ClassVar[str] = "0.1.0"
    Config: ClassVar[type[BaseModel]] = GitHubActionsConfig
    unsupported: ClassVar[dict[str, str]] = {
        "upload_artifact": "GitHub's REST API has no endpoint to upload artifacts: only a running "
                           "workflow can (actions/upload-artifact)",
    }
    notes: ClassVar[dict[str, str]] = {
        "create_pipeline": "commits a workflow file into workflows.directory (one job; workflow_dispatch "
                           "always added)",
        "trigger_pipeline": "a workflow_dispatch event; variables are the workflow's inputs; without a "
                            "run id in the answer the run is found by a bounded poll",
        "rerun": "GitHub re-runs in place: same run id, run_attempt + 1",
        "get_job_log": "available once the job has finished; addressed by job id or exact name",
        "list_artifacts": "digest is GitHub's (upload-artifact v4+) or empty; download computes it",
        "list_runs": "status 'pending' asks GitHub for queued runs; 'error' is filtered here",
    }

    PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(page_param="page", size_param="per_page")
    WORKFLOW_PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(
        page_param="page", size_param="per_page", items_key="workflows")
    RUN_PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(
        page_param="page", size_param="per_page", items_key="workflow_runs")
    JOB_PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(
        page_param="page", size_param="per_page", items_key="jobs")
    ARTIFACT_PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(
        page_param="page", size_param="per_page", items_key="artifacts")

    def __init__(self, plugin_id: str, **kwargs: Any) -> None:
        super().__init__(plugin_id, **kwargs)
        self._dispatch_details = True
        # Runs this instance found by polling: a later dispatch must not take one of them again.
        self._claimed: deque[int] = deque(maxlen=_CLAIMED_MAX)

    @property
    def actions(self) -> GitHubActionsConfig:
        cfg = self.settings
        assert isinstance(cfg, GitHubActionsConfig)
        return cfg

    # -- helpers ----------------------------------------------------------------
    async def _get(self, path: str, ctx: RequestContext, **params: Any) -> Any:
        return json_body(await self.request("GET", path, ctx=ctx, params=params or None))

    async def _page(self, path: str, ctx: RequestContext, pagination: LinkHeaderPagination, *, limit: int,
                    cursor: str | None, params: dict[str, Any] | None = None) -> tuple[list[Any], str | None]:
        items, following = await self.fetch_page(path, ctx=ctx, pagination=pagination, limit=limit,
                                                 cursor=cursor, params=params)
        return [i for i in items if isinstance(i, dict)], following

    async def _workflow(self, repo: str, name: str, ctx: RequestContext) -> dict[str, Any]:
        """The workflow a pipeline name stands for: a file name, its stem, or a numeric id."""
        candidates = [name] if name.isdigit() or name.endswith(_WORKFLOW_EXT) else \
            [name + ext for ext in _WORKFLOW_EXT]
        for candidate in candidates:
            try:
                body = await self._get(f"{self.repo_path(repo)}/actions/workflows/{quote_segment(candidate)}",
                                       ctx)
            except NotFound:
                continue
            if isinstance(body, dict):
                return body
        raise NotFound(f"{self.id}: no workflow {name!r} in {repo} (looked for {', '.join(candidates)})",
                       details={"pipeline": name, "repo": repo})

    async def _definition(self, repo: str, path: str, ctx: RequestContext) -> str | None:
        try:
            body = await self._get(f"{self.repo_path(repo)}/contents/{quote_path(path)}", ctx)
        except NotFound:
            return None  # dynamic workflows (Pages, CodeQL...) have no file
        if not isinstance(body, dict) or body.get("type") != "file":
            return None
        try:
            return base64.b64decode(str(body.get("content", ""))).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None

    def _pipeline(self, repo: str, wf: dict[str, Any], definition: str | None) -> Pipeline:
        found: list[Any] = []
        if definition is not None:
            try:
                found = workflow_yaml.triggers(workflow_yaml.load(definition))
            except InvalidRequest:
                found = []  # GitHub shows broken workflows too; their definition is still returned
        return amap.pipeline(self.id, repo, wf, definition=definition, triggers=found)

    async def _run(self, repo: str, run_id: str, ctx: RequestContext) -> dict[str, Any]:
        body = await self._get(f"{self.repo_path(repo)}/actions/runs/{run_id}", ctx)
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"{self.id}: run {run_id} answered without a run")
        return body

    async def _jobs(self, repo: str, run_id: str, ctx: RequestContext) -> list[Job]:
        items, _ = await self._page(f"{self.repo_path(repo)}/actions/runs/{run_id}/jobs", ctx, self.JOB_PAGES,
                                    limit=100, cursor=None)
        return [amap.job(self.id, repo, i + 1, j) for i, j in enumerate(items)]

    async def _full_run(self, repo: str, run_id: str, ctx: RequestContext,
                        variables: dict[str, str] | None = None) -> PipelineRun:
        body = await self._run(repo, run_id, ctx)
        return amap.run(self.id, repo, body, jobs=await self._jobs(repo, run_id, ctx), variables=variables)

    # -- pipelines ----------------------------------------------------------------
    async def create_pipeline(self, p: CreatePipelineParams, ctx: RequestContext) -> Pipeline:
        stem = p.name[: -len(ext)] if (ext := next((e for e in _WORKFLOW_EXT if p.name.endswith(e)), "")) \
            else p.name
        path = f"{self.actions.workflows.directory}/{stem}{ext or '.yml'}"
        if p.definition is not None:
            workflow_yaml.load(p.definition)
            text = p.definition
        else:
            text = workflow_yaml.render(stem, p.steps, p.triggers,
                                        default_events=self.actions.workflows.trigger_events,
                                        runs_on=self.actions.runs_on)
        contents = f"{self.repo_path(p.repo)}/contents/{quote_path(path)}"
        sha: str | None = None
        try:
            current = await self._get(contents, ctx)
        except NotFound:
            current = None
        if isinstance(current, dict):
            if not p.replace:
                raise Conflict(f"{self.id}: pipeline {stem!r} exists in {p.repo} ({path}); pass replace=true "
                               "to overwrite it", details={"pipeline": stem, "path": path})
            sha = str(current.get("sha") or "") or None
        body: dict[str, Any] = {"message": f"{'Update' if sha else 'Add'} pipeline {stem}",
                                "content": base64.b64encode(text.encode()).decode("ascii")}
        if sha:
            body["sha"] = sha
        response = await self.request("PUT", contents, ctx=ctx, json=body, expected=(200, 201))
        committed = json_body(response)
        try:
            wf = await self._get(f"{self.repo_path(p.repo)}/actions/workflows/"
                                 f"{quote_segment(path.rsplit('/', 1)[-1])}", ctx)
        except NotFound:
            wf = None
        if isinstance(wf, dict):
            return self._pipeline(p.repo, wf, text)
        # Not registered yet: describe it from the commit.
        content = committed.get("content") if isinstance(committed, dict) else None
        made = committed.get("commit") if isinstance(committed, dict) else None
        when = (made or {}).get("author", {}).get("date") if isinstance(made, dict) else None
        pending = {"path": path, "name": stem, "html_url": (content or {}).get("html_url"),
                   "created_at": when, "updated_at": when}
        pipeline = self._pipeline(p.repo, pending, text)
        return pipeline.model_copy(update={"raw": committed if isinstance(committed, dict) else {}})

    async def get_pipeline(self, p: PipelineParams, ctx: RequestContext) -> Pipeline:
        wf = await self._workflow(p.repo, p.pipeline, ctx)
        path = amap.workflow_path(str(wf.get("path", "")))
        return self._pipeline(p.repo, wf, await self._definition(p.repo, path, ctx))

    async def list_pipelines(self, p: ListPipelinesParams, ctx: RequestContext) -> Page[Pipeline]:
        items, following = await self._page(f"{self.repo_path(p.repo)}/actions/workflows", ctx,
                                            self.WORKFLOW_PAGES, limit=p.limit, cursor=p.cursor)
        return Page[Pipeline](items=[amap.pipeline(self.id, p.repo, w) for w in items], next_cursor=following)

    # -- runs -------------------------------------------------------------------------
    async def trigger_pipeline(self, p: TriggerPipelineParams, ctx: RequestContext) -> PipelineRun:
        wf = await self._workflow(p.repo, p.pipeline, ctx)
        workflow_id = str(wf.get("id"))
        ref = p.ref
        if ref is None:
            repo_body = await self._get(self.repo_path(p.repo), ctx)
            ref = str(repo_body.get("default_branch") or "main") if isinstance(repo_body, dict) else "main"
        path = f"{self.repo_path(p.repo)}/actions/workflows/{workflow_id}/dispatches"
        body: dict[str, Any] = {"ref": ref}
        if p.variables:
            body["inputs"] = dict(p.variables)
        response = await self._dispatch_for_details(path, body, ctx) if self._dispatch_details else None
        known: set[int] = set()
        if response is None:
            # No run id will come back: note the runs that are already there, then dispatch.
            known = {int(r.get("id") or 0) for r in await self._dispatch_runs(p.repo, workflow_id, ref, ctx)}
            response = await self.request("POST", path, ctx=ctx, json=body, expected=(204, 200))
        if response.status_code == 200:
            answer = json_body(response)
            run_id = answer.get("workflow_run_id") if isinstance(answer, dict) else None
            if isinstance(run_id, int):
                return await self._full_run(p.repo, str(run_id), ctx, variables=p.variables)
        since = _server_time(response) or self._clock()
        run = await self._find_dispatched(p.repo, workflow_id, ref, since - _DISPATCH_SKEW_S,
                                          known | set(self._claimed), ctx)
        self._claimed.append(int(run.get("id") or 0))
        return amap.run(self.id, p.repo, run, variables=p.variables)

    async def _dispatch_for_details(self, path: str, body: dict[str, Any], ctx: RequestContext) -> Any:
        """Dispatch asking for the run id; None when the server refuses that option."""
        try:
            return await self.request("POST", path, ctx=ctx, json={**body, "return_run_details": True},
                                      expected=(200, 204))
        except InvalidRequest as exc:
            if "return_run_details" not in exc.message:
                raise
            self._dispatch_details = False  # an older server: from now on, ask the way it understands
            return None

    async def _dispatch_runs(self, repo: str, workflow_id: str, ref: str,
                             ctx: RequestContext) -> list[dict[str, Any]]:
        """The newest workflow_dispatch runs of a workflow on a ref."""
        # The window is filtered by the caller: GitHub documents a search syntax for `created`
        # (">=2024-01-01T00:00:00Z") that its own description types as a plain date-time.
        body = await self._get(f"{self.repo_path(repo)}/actions/workflows/{workflow_id}/runs", ctx,
                               event="workflow_dispatch", branch=ref, per_page=20)
        runs = body.get("workflow_runs") if isinstance(body, dict) else None
        return [r for r in runs or [] if isinstance(r, dict)]

    async def _find_dispatched(self, repo: str, workflow_id: str, ref: str, since: float, exclude: set[int],
                               ctx: RequestContext) -> dict[str, Any]:
        """The earliest workflow_dispatch run of this workflow and ref created at or after ``since``,
        other than the runs in ``exclude`` (there before the dispatch, or already claimed)."""
        budget = self.actions.dispatch_timeout_ms / 1000
        remaining = ctx.remaining()
        if remaining is not None:
            budget = min(budget, remaining)
        give_up = time.monotonic() + budget
        while True:
            mine = [r for r in await self._dispatch_runs(repo, workflow_id, ref, ctx)
                    if int(r.get("id") or 0) not in exclude
                    and (when := mapping.dt(r.get("created_at"))) is not None
                    and when.timestamp() >= int(since)]
            if mine:
                return min(mine, key=lambda r: (str(r.get("created_at")), int(r.get("id") or 0)))
            pause = self.actions.dispatch_poll_ms / 1000
            if time.monotonic() + pause > give_up:
                created = datetime.fromtimestamp(int(since), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                raise Timeout(
                    f"{self.id}: workflow {workflow_id} was dispatched on {ref!r} but its run did not appear "
                    f"within {budget:g}s; list_runs will show it", sent=True,
                    details={"repo": repo, "workflow_id": workflow_id, "ref": ref,
                             "dispatched_after": created})
            await asyncio.sleep(pause)

    async def get_pipeline_status(self, p: GetPipelineStatusParams, ctx: RequestContext) -> PipelineRun:
        repo, run_id = amap.parse_scoped_id(p.run_id, p.repo, "run id")
        return await self._full_run(repo, run_id, ctx)

    async def list_runs(self, p: ListRunsParams, ctx: RequestContext) -> Page[PipelineRun]:
        if p.pipeline is not None:
            wf = await self._workflow(p.repo, p.pipeline, ctx)
            path = f"{self.repo_path(p.repo)}/actions/workflows/{wf.get('id')}/runs"
        else:
            path = f"{self.repo_path(p.repo)}/actions/runs"
        params = {"status": amap.STATUS_QUERY.get(p.status)} if p.status else None
        items, following = await self._page(path, ctx, self.RUN_PAGES, limit=p.limit, cursor=p.cursor,
                                            params=params)
        runs = [amap.run(self.id, p.repo, r) for r in items]
        if p.status is not None:
            runs = [r for r in runs if r.status == p.status]
        return Page[PipelineRun](items=runs, next_cursor=following)

    async def cancel_run(self, p: CancelRunParams, ctx: RequestContext) -> PipelineRun:
        repo, run_id = amap.parse_scoped_id(p.run_id, p.repo, "run id")
        try:
            await self.request("POST", f"{self.repo_path(repo)}/actions/runs/{run_id}/cancel", ctx=ctx,
                               expected=(202,))
        except Conflict:
            pass  # 409: the run has finished; it is returned unchanged
        return await self._full_run(repo, run_id, ctx)

    async def rerun(self, p: RerunParams, ctx: RequestContext) -> PipelineRun:
        repo, run_id = amap.parse_scoped_id(p.run_id, p.repo, "run id")
        await self.request("POST", f"{self.repo_path(repo)}/actions/runs/{run_id}/rerun", ctx=ctx,
                           expected=(201,))
        return await self._full_run(repo, run_id, ctx)

    # -- jobs and logs ----------------------------------------------------------------
    async def list_jobs(self, p: ListJobsParams, ctx: RequestContext) -> Page[Job]:
        repo, run_id = amap.parse_scoped_id(p.run_id, p.repo, "run id")
        offset = 0
        if p.cursor:
            at = decode_cursor(p.cursor, self.JOB_PAGES.cursor_keys)
            if at.get("page", "").isdigit() and at.get("per_page", "").isdigit():
                offset = (int(at["page"]) - 1) * int(at["per_page"])
        items, following = await self._page(f"{self.repo_path(repo)}/actions/runs/{run_id}/jobs", ctx,
                                            self.JOB_PAGES, limit=p.limit, cursor=p.cursor)
        return Page[Job](items=[amap.job(self.id, repo, offset + i + 1, j) for i, j in enumerate(items)],
                         next_cursor=following)

    async def _find_job(self, repo: str, run_id: str, job: str, ctx: RequestContext) -> Job:
        """A job of the run by id (one request) or, failing that, by exact name (its listing)."""
        if job.isdigit():
            try:
                body = await self._get(f"{self.repo_path(repo)}/actions/jobs/{job}", ctx)
            except NotFound:
                body = None
            if isinstance(body, dict) and str(body.get("run_id")) == run_id:
                # Its position is not part of a job's own record; a log does not need it.
                return amap.job(self.id, repo, 0, body)
        cursor: str | None = None
        position = 0
        for _ in range(_JOB_PAGES_MAX):
            items, cursor = await self._page(f"{self.repo_path(repo)}/actions/runs/{run_id}/jobs", ctx,
                                             self.JOB_PAGES, limit=100, cursor=cursor)
            for item in items:
                position += 1
                if str(item.get("id")) == job or item.get("name") == job:
                    return amap.job(self.id, repo, position, item)
            if cursor is None:
                break
        raise NotFound(f"{self.id}: run {run_id} of {repo} has no job {job!r} (give the job id or its "
                       "exact name)", details={"job": job})

    async def get_job_log(self, p: GetJobLogParams, ctx: RequestContext) -> JobLog:
        repo, run_id = amap.parse_scoped_id(p.run_id, p.repo, "run id")
        job = await self._find_job(repo, run_id, p.job, ctx)
        finished = job.status in TERMINAL_JOB_STATUSES
        try:
            data = await self.download(f"{self.repo_path(repo)}/actions/jobs/{job.id}/logs", ctx=ctx)
        except NotFound:
            if finished:
                raise
            data = b""  # GitHub serves a job's log once the job has finished
        start = min(p.offset, len(data))
        end = _utf8_boundary(data, start, min(len(data), start + p.limit))
        return JobLog(provider=self.id, id=job.id, url=job.url, run_id=amap.scoped_id(repo, run_id),
                      job=job.name, offset=start, next_offset=end, size=len(data),
                      content=data[start:end].decode("utf-8", "replace"),
                      complete=finished and end >= len(data))

    # -- artifacts ----------------------------------------------------------------------
    async def list_artifacts(self, p: ListArtifactsParams, ctx: RequestContext) -> Page[Artifact]:
        repo, run_id = amap.parse_scoped_id(p.run_id, p.repo, "run id")
        items, following = await self._page(f"{self.repo_path(repo)}/actions/runs/{run_id}/artifacts", ctx,
                                            self.ARTIFACT_PAGES, limit=p.limit, cursor=p.cursor)
        scoped = amap.scoped_id(repo, run_id)
        return Page[Artifact](items=[amap.artifact(self.id, repo, self.web_base, scoped, a) for a in items],
                              next_cursor=following)

    async def download_artifact(self, p: DownloadArtifactParams, ctx: RequestContext) -> ArtifactData:
        repo, artifact_id = amap.parse_scoped_id(p.artifact_id, p.repo, "artifact id")
        root = f"{self.repo_path(repo)}/actions/artifacts/{artifact_id}"
        meta = await self._get(root, ctx)
        if not isinstance(meta, dict):
            raise ProviderUnavailable(f"{self.id}: artifact {artifact_id} answered without an artifact")
        if meta.get("expired"):
            raise NotFound(f"{self.id}: artifact {artifact_id} of {repo} has expired", details={"repo": repo})
        data = await self.download(f"{root}/zip", ctx=ctx)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        reported = meta.get("digest")
        if isinstance(reported, str) and reported.startswith("sha256:") and reported != digest:
            raise ProviderUnavailable(f"{self.id}: artifact {artifact_id} downloaded with digest {digest}, "
                                      f"GitHub reports {reported}")
        info = amap.artifact(self.id, repo, self.web_base, None, meta)
        return ArtifactData(**{**info.model_dump(), "digest": digest, "size": len(data)},
                            content=base64.b64encode(data).decode("ascii"))


def _server_time(response: Any) -> float | None:
    """The server's clock from a response's ``Date`` header."""
    value = response.headers.get("date") if response is not None else None
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _utf8_boundary(data: bytes, start: int, end: int) -> int:
    """Move ``end`` back so that it does not split a UTF-8 sequence, unless that leaves nothing."""
    if end >= len(data):
        return end
    back = end
    while back > max(start, end - 4) and (data[back] & 0xC0) == 0x80:
        back -= 1
    return back if back > start else end
