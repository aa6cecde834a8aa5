"""GitHub Actions payloads → MosAIc's provider-neutral CI/CD models.

Pure functions, tested against payloads shaped as GitHub's OpenAPI description says and golden
files. Ids: GitHub's run and artifact ids are only addressable under their repository
(``/repos/{owner}/{repo}/actions/runs/{id}``), so MosAIc hands them out as ``owner:name:id`` —
self-contained, so that ``get_pipeline_status(run_id)`` works without ``repo``. A bare numeric id is
accepted too when ``repo`` is given. A pipeline is a workflow file: its ``name`` is the file name
without extension (``ci`` for ``.github/workflows/ci.yml``), its ``id`` ``owner/name:path``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from mosaic.catalog.cicd import (
    Artifact,
    Job,
    JobStatus,
    Pipeline,
    PipelineRun,
    PipelineTrigger,
    RunStatus,
)
from mosaic.errors import InvalidRequest
from mosaic.providers.github.mapping import dt

Payload = dict[str, Any]

_SCOPED = re.compile(r"^(?P<owner>[A-Za-z0-9_.-]+):(?P<name>[A-Za-z0-9_.-]+):(?P<id>[0-9]+)$")
_WAITING = frozenset({"queued", "waiting", "requested", "pending"})
# conclusion of a completed run/job → (status, why it did not succeed)
_CONCLUSIONS: dict[str, tuple[RunStatus, str | None]] = {
    "success": ("success", None), "neutral": ("success", None),
    "failure": ("failure", None), "timed_out": ("failure", "timed out"),
    "cancelled": ("canceled", "canceled"), "skipped": ("canceled", "skipped"),
    "startup_failure": ("error", "the workflow could not start (invalid workflow file?)"),
    "action_required": ("error", "waiting for approval (action required)"),
    "stale": ("error", "stale: GitHub gave up on the run"),
}
# our run status → GitHub's `status` query value that selects it (pending covers several; error none)
STATUS_QUERY: dict[str, str] = {
    "pending": "queued", "running": "in_progress", "success": "success", "failure": "failure",
    "canceled": "cancelled",
}


def scoped_id(repo: str, number: int | str) -> str:
    owner, _, name = repo.partition("/")
    return f"{owner}:{name}:{number}"


def parse_scoped_id(value: str, repo: str | None, what: str) -> tuple[str, str]:
    """(repo, numeric id) of ``owner:name:id``, or of a numeric id with ``repo``."""
    found = _SCOPED.match(value)
    if found:
        named = f"{found['owner']}/{found['name']}"
        if repo is not None and repo.lower() != named.lower():
            raise InvalidRequest(f"{what} {value!r} belongs to {named}, not to {repo}",
                                 details={"repo": repo})
        return named, found["id"]
    if value.isdigit():
        if repo is None:
            raise InvalidRequest(f"GitHub {what}s are per repository: pass repo, or the id as "
                                 f"'owner:name:{value}'", details={"field": "repo"})
        return repo, value
    raise InvalidRequest(f"{what} {value!r} is not a GitHub {what} id ('owner:name:123' or a number)",
                         details={"field": what.replace(' ', '_')})


def workflow_path(path: str) -> str:
    """A workflow's file path; run payloads may carry a ``@ref`` suffix."""
    return path.split("@", 1)[0]


def pipeline_name(path: str) -> str:
    return PurePosixPath(workflow_path(path)).stem or path


def pipeline(provider: str, repo: str, wf: Payload, *, definition: str | None = None,
             triggers: list[PipelineTrigger] | None = None) -> Pipeline:
    """A ``workflow``."""
    path = workflow_path(str(wf.get("path", "")))
    return Pipeline(provider=provider, id=f"{repo}:{path}", url=wf.get("html_url") or None, repo=repo,
                    name=pipeline_name(path), definition=definition, triggers=triggers or [],
                    created_at=dt(wf.get("created_at")), updated_at=dt(wf.get("updated_at")), raw=wf)


def status_of(status: Any, conclusion: Any) -> tuple[RunStatus, str | None]:
    if status != "completed":
        return ("pending", None) if status in _WAITING or status is None else ("running", None)
    return _CONCLUSIONS.get(str(conclusion), ("error", f"unknown conclusion {conclusion!r}"))


def run(provider: str, repo: str, p: Payload, *, jobs: list[Job] | None = None,
        variables: dict[str, str] | None = None) -> PipelineRun:
    """A ``workflow-run``. GitHub re-runs in place (same id, ``run_attempt`` + 1): a re-run
    attempt says so with ``rerun_of`` = its own id."""
    status, error = status_of(p.get("status"), p.get("conclusion"))
    run_id = scoped_id(repo, p.get("id", ""))
    attempt = int(p.get("run_attempt") or 1)
    finished = dt(p.get("updated_at")) if p.get("status") == "completed" else None
    return PipelineRun(
        provider=provider, id=run_id, url=p.get("html_url") or None, repo=repo,
        pipeline=pipeline_name(str(p.get("path", ""))), number=int(p.get("run_number") or 0), status=status,
        ref=p.get("head_branch") or None, sha=p.get("head_sha") or None, variables=variables or {},
        error=error,
        rerun_of=run_id if attempt > 1 else None, created_at=dt(p.get("created_at")),
        started_at=dt(p.get("run_started_at")), finished_at=finished, jobs=jobs or [], raw=p,
    )


def job(provider: str, repo: str, number: int, p: Payload) -> Job:
    """A ``job``; GitHub reports no exit codes."""
    status, _ = status_of(p.get("status"), p.get("conclusion"))
    job_status: JobStatus = "skipped" if p.get("conclusion") == "skipped" else status
    return Job(provider=provider, id=str(p.get("id", "")), url=p.get("html_url") or None,
               run_id=scoped_id(repo, p.get("run_id", "")), name=str(p.get("name", "")), number=number,
               status=job_status, started_at=dt(p.get("started_at")), finished_at=dt(p.get("completed_at")),
               raw=p)


def artifact(provider: str, repo: str, web_base: str, run_id: str | None, p: Payload) -> Artifact:
    """An ``artifact`` (a zip archive). ``digest`` is GitHub's when it reports one (artifacts made by
    upload-artifact v4 and later), else empty; download_artifact always computes it."""
    origin = p.get("workflow_run") or {}
    run_number = origin.get("id") if isinstance(origin, dict) else None
    owning_run = scoped_id(repo, run_number) if run_number is not None else (run_id or "")
    numeric = owning_run.rsplit(":", 1)[-1]
    digest = p.get("digest")
    return Artifact(
        provider=provider, id=scoped_id(repo, p.get("id", "")),
        url=f"{web_base}/{repo}/actions/runs/{numeric}/artifacts/{p.get('id')}" if numeric else None,
        run_id=owning_run, name=str(p.get("name", "")), size=int(p.get("size_in_bytes") or 0),
        digest=digest if isinstance(digest, str) else "", content_type="application/zip",
        created_at=dt(p.get("created_at")), raw=p,
    )
