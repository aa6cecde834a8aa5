"""CI/CD service: pipelines, runs, jobs, logs and artifacts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from mosaic.catalog.base import (
    Effect,
    Entity,
    Operation,
    Page,
    Params,
    RepoListParams,
    RepoParams,
    Rest,
    check_name,
    check_repo,
)

RunStatus = Literal["pending", "running", "success", "failure", "canceled", "error"]
JobStatus = Literal["pending", "running", "success", "failure", "canceled", "error", "skipped"]
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"success", "failure", "canceled", "error"})
TERMINAL_JOB_STATUSES: frozenset[str] = frozenset({"success", "failure", "canceled", "error", "skipped"})
TriggerEvent = Literal["push", "pull_request", "tag", "manual", "schedule"]

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def check_env(env: dict[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_NAME_RE.match(key):
            raise ValueError(f"environment variable name {key!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if "\x00" in value:
            raise ValueError(f"environment variable {key!r} contains a NUL character")
    return env


def check_relative_path(value: str, what: str) -> str:
    """A path (or glob) relative to the workspace that cannot climb out of it."""
    if not value or value.startswith(("/", "\\", "~")) or "\x00" in value:
        raise ValueError(f"{what} {value!r} must be a non-empty path relative to the workspace")
    # Braces and commas are glob syntax: '{..,x}/f' expands to '../f' as well.
    if any(part == ".." for part in re.split(r"[/\\{},]", value)):
        raise ValueError(f"{what} {value!r} must not contain '..'")
    return value


def check_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise ValueError("expected an id made of letters, digits, '.', '_', ':' and '-'")
    return value


# ---------------------------------------------------------------------------
# Domain objects


class PipelineStep(BaseModel):
    name: str = Field(description="Step name, unique within the pipeline.", examples=["test"])
    commands: list[str] = Field(
        min_length=1,
        description="Shell commands run in order in the checkout; the step fails at the first "
                    "command that exits non-zero. A single string is one command.",
        examples=[["pip install -e .", "pytest -q"]],
    )
    image: str | None = Field(
        default=None,
        description="Container image for providers that run steps in containers; providers that "
                    "run on the host shell (local) ignore it.",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables of the step.")
    timeout_s: int | None = Field(
        default=None, ge=1, le=86_400, description="Seconds before the step is killed and fails.",
    )
    artifacts: list[str] = Field(
        default_factory=list,
        description="Globs relative to the checkout (`**` and braces allowed); matching files are "
                    "stored as artifacts of the run after the step.",
        examples=[["dist/*.whl", "reports/**/*.xml"]],
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("commands", mode="before")
    @classmethod
    def _commands(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("commands")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if any(not c.strip() or "\x00" in c for c in v):
            raise ValueError("commands must be non-empty strings without NUL characters")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        return check_env(v)

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, v: list[str]) -> list[str]:
        return [check_relative_path(g, "artifact glob") for g in v]


class PipelineTrigger(BaseModel):
    event: TriggerEvent = Field(description="What starts a run.")
    branches: list[str] = Field(
        default_factory=list, description="Branch globs the event must match; empty = any branch.",
    )
    cron: str | None = Field(default=None, description="Cron expression, for 'schedule' triggers.")

    @model_validator(mode="after")
    def _cron(self) -> PipelineTrigger:
        if (self.event == "schedule") != (self.cron is not None):
            raise ValueError("'cron' is required for, and only for, 'schedule' triggers")
        return self


class Pipeline(Entity):
    repo: str = Field(description="'owner/name' of the repository the pipeline builds.")
    name: str
    steps: list[PipelineStep] = Field(default_factory=list)
    triggers: list[PipelineTrigger] = Field(default_factory=list)
    definition: str | None = Field(default=None, description="Raw definition, when given as one.")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Job(Entity):
    run_id: str
    name: str
    number: int = Field(description="1-based position of the job in the run.")
    status: JobStatus
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class PipelineRun(Entity):
    repo: str
    pipeline: str
    number: int = Field(description="Run number, counting up per pipeline.")
    status: RunStatus
    ref: str | None = Field(default=None, description="Branch, tag or sha the run was triggered on.")
    sha: str | None = Field(default=None, description="Commit the run checked out.")
    variables: dict[str, str] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="Why the run ended in 'error' or 'canceled'.")
    rerun_of: str | None = Field(default=None, description="Id of the run this one repeats.")
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    jobs: list[Job] = Field(default_factory=list)


class JobLog(Entity):
    run_id: str
    job: str
    offset: int = Field(description="Byte offset the content starts at.")
    next_offset: int = Field(description="Pass as `offset` to read what follows (tailing).")
    size: int = Field(description="Bytes of log written so far.")
    content: str
    complete: bool = Field(description="True when the job has finished and the end has been read.")


class Artifact(Entity):
    run_id: str
    name: str = Field(description="Path-like name, e.g. 'dist/app.tar.gz'.")
    size: int
    digest: str = Field(description="'sha256:<hex>' of the content.")
    content_type: str = "application/octet-stream"
    job: str | None = Field(default=None, description="Job that produced it; none for uploads.")
    created_at: datetime | None = None


class ArtifactData(Artifact):
    encoding: Literal["base64"] = "base64"
    content: str = Field(description="The content, base64-encoded.")


# ---------------------------------------------------------------------------
# Parameters


class RunRef(Params):
    """Names a run. `repo` is optional: it helps routing and providers whose run ids are per repo."""

    run_id: str = Field(description="Run id as returned by trigger_pipeline or list_runs.")
    repo: str | None = Field(default=None, description="Repository as 'owner/name', when known.")

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, v: str) -> str:
        return check_id(v)

    @field_validator("repo")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        return None if v is None else check_repo(v)


class CreatePipelineParams(RepoParams):
    name: str = Field(description="Pipeline name, unique within the repository.", examples=["ci"])
    steps: list[PipelineStep] = Field(default_factory=list, max_length=100)
    triggers: list[PipelineTrigger] = Field(default_factory=list)
    definition: str | None = Field(
        default=None,
        description="Instead of `steps`/`triggers`: the pipeline in the provider's own format "
                    "(e.g. YAML) for providers that read one.",
    )
    replace: bool = Field(default=False, description="Replace an existing pipeline of the same name.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @model_validator(mode="after")
    def _one_source(self) -> CreatePipelineParams:
        if self.definition is not None and (self.steps or self.triggers):
            raise ValueError("give either `definition` or `steps`/`triggers`, not both")
        if self.definition is None and not self.steps:
            raise ValueError("a pipeline needs at least one step (or a `definition`)")
        names = [s.name for s in self.steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"step names must be unique; repeated: {', '.join(dup)}")
        return self


class PipelineParams(RepoParams):
    pipeline: str = Field(description="Pipeline name.")

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, v: str) -> str:
        return check_name(v)


class ListPipelinesParams(RepoListParams):
    pass


class TriggerPipelineParams(PipelineParams):
    ref: str | None = Field(default=None, description="Branch, tag or sha; default: default branch.")
    variables: dict[str, str] = Field(
        default_factory=dict, description="Environment variables for every step of this run.",
    )
    size_bytes: int | None = Field(
        default=None, ge=0, description="Expected build size, used by routing conditions.",
    )
    public: bool | None = Field(
        default=None, description="Whether the code being built is public, used by routing conditions.",
    )

    @field_validator("ref")
    @classmethod
    def _ref(cls, v: str | None) -> str | None:
        if v is not None and (not v or v.startswith("-") or any(c in v for c in " \t\n\x00~^:?*[\\")):
            raise ValueError(f"ref {v!r} is not a valid branch, tag or sha")
        return v

    @field_validator("variables")
    @classmethod
    def _variables(cls, v: dict[str, str]) -> dict[str, str]:
        return check_env(v)


class GetPipelineStatusParams(RunRef):
    pass


class ListRunsParams(RepoListParams):
    pipeline: str | None = Field(default=None, description="Only runs of this pipeline.")
    status: RunStatus | None = Field(default=None, description="Only runs in this status.")

    @field_validator("pipeline")
    @classmethod
    def _pipeline(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)


class CancelRunParams(RunRef):
    pass


class RerunParams(RunRef):
    pass


class ListJobsParams(RunRef):
    cursor: str | None = Field(default=None, description="Opaque cursor from a previous page.")
    limit: int = Field(default=100, ge=1, le=100)


class GetJobLogParams(RunRef):
    job: str = Field(description="Job (step) name.")
    offset: int = Field(default=0, ge=0, description="Byte offset to read from; use `next_offset` to tail.")
    limit: int = Field(default=65_536, ge=1, le=1_048_576, description="Maximum bytes to return.")

    @field_validator("job")
    @classmethod
    def _job(cls, v: str) -> str:
        return check_name(v)


class UploadArtifactParams(RunRef):
    name: str = Field(description="Path-like artifact name, unique within the run.",
                      examples=["dist/app.whl"])
    content: str = Field(description="The content, base64-encoded.")
    content_type: str = "application/octet-stream"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > 512 or any(not p or p == "." for p in v.split("/")):
            raise ValueError(f"artifact name {v!r} must be a relative path without empty or '.' parts")
        return check_relative_path(v, "artifact name")


class DownloadArtifactParams(Params):
    artifact_id: str = Field(description="Artifact id as returned by list_artifacts or upload_artifact.")
    repo: str | None = Field(default=None, description="Repository as 'owner/name', when known.")

    @field_validator("artifact_id")
    @classmethod
    def _artifact_id(cls, v: str) -> str:
        return check_id(v)

    @field_validator("repo")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        return None if v is None else check_repo(v)


class ListArtifactsParams(RunRef):
    cursor: str | None = Field(default=None, description="Opaque cursor from a previous page.")
    limit: int = Field(default=30, ge=1, le=100)


# ---------------------------------------------------------------------------
# Operations

RP = "/cicd/repositories/{repo}"
RUN = "/cicd/runs/{run_id}"

create_pipeline = Operation(
    "cicd", "create_pipeline", CreatePipelineParams, Pipeline, Effect.WRITE,
    Rest("POST", RP + "/pipelines", 201),
    "Define a CI/CD pipeline for a repository: ordered steps of shell commands (with env, "
    "timeout and artifact globs) and triggers, or a raw definition in the provider's format.",
    invalidates=("get_pipeline", "list_pipelines"),
)
get_pipeline = Operation(
    "cicd", "get_pipeline", PipelineParams, Pipeline, Effect.READ,
    Rest("GET", RP + "/pipelines/{pipeline}"), "Get a pipeline's definition by name.", cache_ttl=30,
)
list_pipelines = Operation(
    "cicd", "list_pipelines", ListPipelinesParams, Page[Pipeline], Effect.READ,
    Rest("GET", RP + "/pipelines"), "List the pipelines defined for a repository.", cache_ttl=30,
)
trigger_pipeline = Operation(
    "cicd", "trigger_pipeline", TriggerPipelineParams, PipelineRun, Effect.WRITE,
    Rest("POST", RP + "/pipelines/{pipeline}/runs", 201),
    "Start a run of a pipeline on a branch, tag or commit, with optional variables. Returns "
    "at once; poll get_pipeline_status with the run id until the status is final.",
    invalidates=("list_runs",),
)
get_pipeline_status = Operation(
    "cicd", "get_pipeline_status", GetPipelineStatusParams, PipelineRun, Effect.READ,
    Rest("GET", RUN),
    "Get a pipeline run with its status (pending, running, success, failure, canceled, error) "
    "and the status of each job.",
    cache_ttl=1,
)
list_runs = Operation(
    "cicd", "list_runs", ListRunsParams, Page[PipelineRun], Effect.READ,
    Rest("GET", RP + "/runs"), "List a repository's pipeline runs, newest first, by pipeline or status.",
    cache_ttl=1,
)
cancel_run = Operation(
    "cicd", "cancel_run", CancelRunParams, PipelineRun, Effect.WRITE,
    Rest("POST", RUN + "/cancel"),
    "Cancel a pending or running run, killing its processes. A finished run is returned unchanged.",
    idempotent=True, invalidates=("get_pipeline_status", "list_runs", "list_jobs"),
)
rerun = Operation(
    "cicd", "rerun", RerunParams, PipelineRun, Effect.WRITE,
    Rest("POST", RUN + "/rerun", 201),
    "Start a new run of the same pipeline at the same commit with the same variables.",
    invalidates=("list_runs",),
)
list_jobs = Operation(
    "cicd", "list_jobs", ListJobsParams, Page[Job], Effect.READ,
    Rest("GET", RUN + "/jobs"), "List the jobs (steps) of a run with their status and exit code.",
    cache_ttl=1,
)
get_job_log = Operation(
    "cicd", "get_job_log", GetJobLogParams, JobLog, Effect.READ,
    Rest("GET", RUN + "/jobs/{job}/log"),
    "Read a job's output from a byte offset; call again with `next_offset` to follow a running job.",
)
upload_artifact = Operation(
    "cicd", "upload_artifact", UploadArtifactParams, Artifact, Effect.WRITE,
    Rest("POST", RUN + "/artifacts", 201),
    "Attach a file (base64 content) to a run as a named artifact; returns its sha256 digest and size.",
    invalidates=("list_artifacts",),
)
download_artifact = Operation(
    "cicd", "download_artifact", DownloadArtifactParams, ArtifactData, Effect.READ,
    Rest("GET", "/cicd/artifacts/{artifact_id}"),
    "Download an artifact by id: base64 content with its sha256 digest.",
    cache_ttl=3600,
)
list_artifacts = Operation(
    "cicd", "list_artifacts", ListArtifactsParams, Page[Artifact], Effect.READ,
    Rest("GET", RUN + "/artifacts"), "List the artifacts of a run (name, size, digest).", cache_ttl=2,
)

OPERATIONS: tuple[Operation, ...] = (
    create_pipeline, get_pipeline, list_pipelines,
    trigger_pipeline, get_pipeline_status, list_runs, cancel_run, rerun,
    list_jobs, get_job_log,
    upload_artifact, download_artifact, list_artifacts,
)
