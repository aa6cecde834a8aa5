"""GitHubActionsPlugin against the Actions fake: workflows as pipelines, dispatch → run (with and
without the run id in the answer), jobs, logs and artifacts through redirects (the token never
reaches the storage host), cancel, re-run, the unsupported upload. Every API request and answer is
checked against github.json; downloads go to the storage fake."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
import yaml
from tests.providers.github.conftest import TOKEN, new_fake
from tests.providers.github.fake import GitHubFake
from tests.providers.github.fake_actions import ActionsFake, Run
from tests.providers.github.spec import HostRouter, github_spec
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog import cicd as c
from mosaic.catalog.registry import CATALOG
from mosaic.errors import Conflict, InvalidRequest, NotFound, OperationNotSupported, Timeout
from mosaic.gateway.context import RequestContext
from mosaic.providers.github.actions import GitHubActionsPlugin

A = "/repos/{owner}/{repo}/actions"
SEED_CONFIG = {"workflows": {"directory": ".github/workflows", "triggerEvents": ["push", "pull_request"]}}
WORKFLOW = """name: CI
on:
  push:
  workflow_dispatch:
    inputs:
      target: {description: where, required: false}
jobs:
  lint: {runs-on: ubuntu-latest, steps: [{run: make lint}]}
  test: {name: unit-tests, runs-on: ubuntu-latest, steps: [{run: make test}]}
  build: {runs-on: ubuntu-latest, steps: [{run: make}]}
"""


@dataclass
class Env:
    fake: GitHubFake
    actions: ActionsFake
    plugin: GitHubActionsPlugin
    api: SpecValidatingTransport
    router: HostRouter
    ctx: RequestContext

    def calls(self) -> list[tuple[str, str]]:
        return self.api.calls()


async def make(
    spec_transport: Callable[..., SpecValidatingTransport],
    *,
    config: dict[str, Any] | None = None,
    **options: Any,
) -> Env:
    fake = new_fake()
    actions = ActionsFake(fake, **options)
    api = spec_transport(github_spec(), fake.transport())
    router = HostRouter(
        {
            "api.github.com": api,
            "api.github.com/_downloads": actions.blob_transport(),
            "blobs.example": actions.blob_transport(),
        }
    )
    plugin = GitHubActionsPlugin("github-actions", transport=router, clock=lambda: fake.now)
    settings = {
        "auth": {"type": "token", "token": TOKEN},
        **SEED_CONFIG,
        "dispatchPollMs": 1,
        "dispatchTimeoutMs": 500,
        **(config or {}),
    }
    await plugin.initialize(GitHubActionsPlugin.Config.model_validate(settings))
    await plugin.start()
    return Env(fake, actions, plugin, api, router, RequestContext())


@pytest.fixture
async def env(spec_transport: Callable[..., SpecValidatingTransport]) -> AsyncIterator[Env]:
    e = await make(spec_transport)
    yield e
    await e.plugin.dispose()


def seeded(e: Env) -> tuple[Any, Any]:
    repo = e.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    return repo, e.actions.seed_workflow(repo, ".github/workflows/ci.yml", WORKFLOW)


# -- config and capabilities ----------------------------------------------------------------------


def test_the_seed_config_validates_with_base_url_and_auth() -> None:
    cfg = GitHubActionsPlugin.Config.model_validate(
        {**SEED_CONFIG, "baseUrl": "https://ghe.example/api/v3", "auth": {"type": "token", "token": "t"}}
    )
    assert cfg.workflows.directory == ".github/workflows"  # type: ignore[attr-defined]
    assert cfg.workflows.trigger_events == ["push", "pull_request"]  # type: ignore[attr-defined]
    assert GitHubActionsPlugin.Config.model_validate(SEED_CONFIG).base_url == "https://api.github.com"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "workflows",
    [{"directory": "../escape"}, {"directory": "/abs"}, {"triggerEvents": ["push; rm -rf"]}, {"unknown": 1}],
)
def test_bad_workflow_config_is_rejected(workflows: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        GitHubActionsPlugin.Config.model_validate({"workflows": workflows})


async def test_upload_is_unsupported_with_a_reason(env: Env) -> None:
    assert GitHubActionsPlugin.capabilities() == CATALOG.names("cicd") - {"upload_artifact"}
    op = CATALOG["cicd.upload_artifact"]
    with pytest.raises(OperationNotSupported, match="no endpoint to upload artifacts"):
        await env.plugin.call(
            op, op.params(run_id="1", repo="alice/api", name="a.txt", content="eA=="), env.ctx
        )


# -- pipelines ---------------------------------------------------------------------------------------


async def test_create_pipeline_commits_a_workflow_file(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    pipeline = await env.plugin.create_pipeline(
        c.CreatePipelineParams(
            repo="alice/api",
            name="ci",
            steps=[
                c.PipelineStep(
                    name="test",
                    commands=["pip install -e .", "pytest -q"],
                    env={"CI": "1"},
                    timeout_s=90,
                    artifacts=["reports/*.xml"],
                    image="python:3.12",
                )
            ],
            triggers=[
                c.PipelineTrigger(event="push", branches=["main"]),
                c.PipelineTrigger(event="tag"),
                c.PipelineTrigger(event="schedule", cron="0 4 * * *"),
            ],
        ),
        env.ctx,
    )
    text = repo.git.commits[repo.git.branches["main"]].tree[".github/workflows/ci.yml"].decode()
    doc = yaml.safe_load(text)
    assert doc["on"] == {
        "push": {"branches": ["main"], "tags": ["*"]},
        "schedule": [{"cron": "0 4 * * *"}],
        "workflow_dispatch": {},
    }
    job = doc["jobs"]["ci"]
    assert job["container"] == "python:3.12" and job["runs-on"] == "ubuntu-latest"
    assert job["steps"][0] == {"uses": "actions/checkout@v4"}
    assert job["steps"][1] == {
        "name": "test",
        "run": "pip install -e .\npytest -q",
        "env": {"CI": "1"},
        "timeout-minutes": 2,
    }
    assert job["steps"][2]["uses"] == "actions/upload-artifact@v4"
    assert (pipeline.name, pipeline.id, pipeline.definition) == (
        "ci",
        "alice/api:.github/workflows/ci.yml",
        text,
    )
    assert {t.event for t in pipeline.triggers} == {"push", "tag", "schedule", "manual"}
    assert pipeline.raw["id"] in env.actions.workflows  # registered: described by GitHub's workflow
    with pytest.raises(Conflict, match="replace=true"):
        await env.plugin.create_pipeline(
            c.CreatePipelineParams(
                repo="alice/api", name="ci", steps=[c.PipelineStep(name="x", commands=["true"])]
            ),
            env.ctx,
        )
    replaced = await env.plugin.create_pipeline(
        c.CreatePipelineParams(
            repo="alice/api", name="ci", steps=[c.PipelineStep(name="x", commands=["true"])], replace=True
        ),
        env.ctx,
    )
    assert replaced.id == pipeline.id and [t.event for t in replaced.triggers] == [
        "push",
        "pull_request",
        "manual",
    ]
    assert len(env.actions.workflows) == 1


async def test_create_pipeline_from_a_definition_and_bad_ones(env: Env) -> None:
    env.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    made = await env.plugin.create_pipeline(
        c.CreatePipelineParams(repo="alice/api", name="release.yaml", definition=WORKFLOW), env.ctx
    )
    assert made.name == "release" and made.id.endswith(".github/workflows/release.yaml")
    with pytest.raises(InvalidRequest, match="'on' and 'jobs'"):
        await env.plugin.create_pipeline(
            c.CreatePipelineParams(repo="alice/api", name="x", definition="a: 1"), env.ctx
        )
    with pytest.raises(InvalidRequest, match="one container"):
        await env.plugin.create_pipeline(
            c.CreatePipelineParams(
                repo="alice/api",
                name="x",
                steps=[
                    c.PipelineStep(name="a", commands=["true"], image="alpine"),
                    c.PipelineStep(name="b", commands=["true"], image="debian"),
                ],
            ),
            env.ctx,
        )


async def test_a_pipeline_github_has_not_registered_yet(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    e = await make(spec_transport, defer_registration=True)
    e.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    made = await e.plugin.create_pipeline(
        c.CreatePipelineParams(
            repo="alice/api", name="ci", steps=[c.PipelineStep(name="t", commands=["true"])]
        ),
        e.ctx,
    )
    assert made.id == "alice/api:.github/workflows/ci.yml" and made.url and "commit" in made.raw
    with pytest.raises(NotFound, match=r"ci\.yml, ci\.yaml"):
        await e.plugin.get_pipeline(c.PipelineParams(repo="alice/api", pipeline="ci"), e.ctx)
    e.actions.register_pending()
    got = await e.plugin.get_pipeline(c.PipelineParams(repo="alice/api", pipeline="ci"), e.ctx)
    assert got.id == made.id and got.definition == made.definition
    await e.plugin.dispose()


async def test_get_and_list_pipelines(env: Env) -> None:
    _, workflow = seeded(env)
    for name in ("ci", "ci.yml", str(workflow.id)):
        got = await env.plugin.get_pipeline(c.PipelineParams(repo="alice/api", pipeline=name), env.ctx)
        assert (got.name, got.definition) == ("ci", WORKFLOW)
    listed = await env.plugin.list_pipelines(c.ListPipelinesParams(repo="alice/api"), env.ctx)
    assert [(p.name, p.id) for p in listed.items] == [("ci", "alice/api:.github/workflows/ci.yml")]


# -- runs ----------------------------------------------------------------------------------------------


async def test_trigger_returns_the_run_github_names(env: Env) -> None:
    _, _workflow = seeded(env)
    run = await env.plugin.trigger_pipeline(
        c.TriggerPipelineParams(repo="alice/api", pipeline="ci", variables={"target": "staging"}), env.ctx
    )
    started = next(iter(env.actions.runs.values()))
    assert run.id == f"alice:api:{started.id}" and run.status == "pending" and run.ref == "main"
    assert run.variables == {"target": "staging"} and [j.name for j in run.jobs] == [
        "lint",
        "unit-tests",
        "build",
    ]
    assert env.actions.dispatches == [
        {"ref": "main", "inputs": {"target": "staging"}, "return_run_details": True}
    ]
    assert ("GET", A + "/workflows/{workflow_id}/runs") not in env.calls()  # no polling needed
    status = await env.plugin.get_pipeline_status(c.GetPipelineStatusParams(run_id=run.id), env.ctx)
    assert status.id == run.id and status.pipeline == "ci" and status.number == 1


async def test_trigger_finds_the_run_when_github_does_not_name_it(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    e = await make(spec_transport, dispatch_mode="ignore", listing_delay=2)
    seeded(e)
    e.fake.now += 5
    earlier = e.actions.start_run(next(iter(e.actions.workflows.values())), ref="main")
    earlier.created -= 60  # someone else's run, a minute before ours
    earlier.hidden_for = 0
    run = await e.plugin.trigger_pipeline(c.TriggerPipelineParams(repo="alice/api", pipeline="ci"), e.ctx)
    ours = max(e.actions.runs.values(), key=lambda r: r.id)
    assert run.id == f"alice:api:{ours.id}" and ours.id != earlier.id
    polls = [r for r in e.api.requests if r.url.path.endswith("/runs")]
    assert len(polls) == 3  # hidden from two listings, found in the third
    assert dict(polls[0].url.params) == {"event": "workflow_dispatch", "branch": "main", "per_page": "20"}
    await e.plugin.dispose()


async def test_a_server_refusing_return_run_details_is_asked_the_old_way(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    e = await make(spec_transport, dispatch_mode="reject")
    seeded(e)
    first = await e.plugin.trigger_pipeline(c.TriggerPipelineParams(repo="alice/api", pipeline="ci"), e.ctx)
    second = await e.plugin.trigger_pipeline(c.TriggerPipelineParams(repo="alice/api", pipeline="ci"), e.ctx)
    assert first.id != second.id
    assert e.actions.dispatches == [
        {"ref": "main", "return_run_details": True},
        {"ref": "main"},
        {"ref": "main"},
    ]
    await e.plugin.dispose()


async def test_a_run_that_never_shows_up_is_a_timeout(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    e = await make(
        spec_transport, dispatch_mode="ignore", listing_delay=10_000, config={"dispatchTimeoutMs": 30}
    )
    seeded(e)
    with pytest.raises(Timeout, match="dispatched") as caught:
        await e.plugin.trigger_pipeline(c.TriggerPipelineParams(repo="alice/api", pipeline="ci"), e.ctx)
    assert caught.value.sent  # the dispatch happened: not to be repeated elsewhere
    await e.plugin.dispose()


async def test_trigger_errors(env: Env) -> None:
    repo, _ = seeded(env)
    with pytest.raises(InvalidRequest, match="Unexpected inputs"):
        await env.plugin.trigger_pipeline(
            c.TriggerPipelineParams(repo="alice/api", pipeline="ci", variables={"NOPE": "1"}), env.ctx
        )
    env.actions.seed_workflow(
        repo,
        ".github/workflows/push-only.yml",
        "on: push\njobs:\n  a: {runs-on: x, steps: [{run: 'true'}]}\n",
    )
    with pytest.raises(InvalidRequest, match="workflow_dispatch"):
        await env.plugin.trigger_pipeline(
            c.TriggerPipelineParams(repo="alice/api", pipeline="push-only"), env.ctx
        )
    with pytest.raises(NotFound):
        await env.plugin.trigger_pipeline(
            c.TriggerPipelineParams(repo="alice/api", pipeline="ghost"), env.ctx
        )


@pytest.mark.parametrize(
    ("run_id", "repo", "match"),
    [
        ("123", None, "pass repo"),
        ("bob:other:123", "alice/api", "belongs to bob/other"),
        ("latest", None, "not a GitHub"),
    ],
)
async def test_run_ids(env: Env, run_id: str, repo: str | None, match: str) -> None:
    with pytest.raises((InvalidRequest, pydantic.ValidationError), match=match):
        await env.plugin.get_pipeline_status(c.GetPipelineStatusParams(run_id=run_id, repo=repo), env.ctx)


async def test_list_runs_by_pipeline_and_status(env: Env) -> None:
    repo, workflow = seeded(env)
    other = env.actions.seed_workflow(repo, ".github/workflows/nightly.yml", WORKFLOW)
    ok, failed, running, broken = (
        env.actions.start_run(w, ref="main") for w in (workflow, workflow, workflow, other)
    )
    env.actions.finish(ok)
    env.actions.finish(failed, "failure")
    env.actions.start(running)
    env.actions.finish(broken, "startup_failure")
    of_ci = await env.plugin.list_runs(c.ListRunsParams(repo="alice/api", pipeline="ci"), env.ctx)
    assert sorted(r.status for r in of_ci.items) == ["failure", "running", "success"]
    succeeded = await env.plugin.list_runs(c.ListRunsParams(repo="alice/api", status="success"), env.ctx)
    assert [r.id for r in succeeded.items] == [f"alice:api:{ok.id}"]
    assert dict(env.api.requests[-1].url.params) == {"status": "success", "per_page": "30"}
    errors = await env.plugin.list_runs(c.ListRunsParams(repo="alice/api", status="error"), env.ctx)
    assert [(r.pipeline, r.error) for r in errors.items] == [
        ("nightly", "the workflow could not start (invalid workflow file?)")
    ]


async def test_cancel_and_rerun(env: Env) -> None:
    _, workflow = seeded(env)
    run = env.actions.start_run(workflow, ref="main")
    env.actions.start(run)
    rid = f"alice:api:{run.id}"
    canceled = await env.plugin.cancel_run(c.CancelRunParams(run_id=rid), env.ctx)
    assert canceled.status == "canceled" and {j.status for j in canceled.jobs} == {"canceled"}
    again = await env.plugin.cancel_run(c.CancelRunParams(run_id=rid), env.ctx)  # 409: already finished
    assert again.status == "canceled"
    rerun = await env.plugin.rerun(c.RerunParams(run_id=str(run.id), repo="alice/api"), env.ctx)
    assert (rerun.id, rerun.status, rerun.rerun_of, rerun.raw["run_attempt"]) == (rid, "pending", rid, 2)


# -- jobs, logs, artifacts ------------------------------------------------------------------------------


async def finished(env: Env, logs: dict[str, str] | None = None) -> Run:
    _, workflow = seeded(env)
    run = env.actions.start_run(workflow, ref="main")
    env.actions.finish(run, logs=logs)
    return run


async def test_jobs_page_with_positions(env: Env) -> None:
    run = await finished(env)
    first = await env.plugin.list_jobs(c.ListJobsParams(run_id=f"alice:api:{run.id}", limit=2), env.ctx)
    second = await env.plugin.list_jobs(
        c.ListJobsParams(run_id=f"alice:api:{run.id}", limit=2, cursor=first.next_cursor), env.ctx
    )
    assert [(j.number, j.name, j.status) for j in first.items + second.items] == [
        (1, "lint", "success"),
        (2, "unit-tests", "success"),
        (3, "build", "success"),
    ]
    assert second.next_cursor is None


async def test_logs_follow_the_redirect_without_the_token(env: Env) -> None:
    log = "line one\nline two ✓\nline three\n"
    run = await finished(env, {"unit-tests": log})
    rid = f"alice:api:{run.id}"
    job_id = str(run.jobs[1].id)
    whole = await env.plugin.get_job_log(c.GetJobLogParams(run_id=rid, job=job_id), env.ctx)
    assert (whole.content, whole.job, whole.complete, whole.size) == (
        log,
        "unit-tests",
        True,
        len(log.encode()),
    )
    api_call = next(r for r in env.router.seen if r.url.path.endswith("/logs"))
    storage = env.actions.blob_requests[-1]
    assert api_call.headers["authorization"] == f"Bearer {TOKEN}"
    assert storage.url.host == "blobs.example" and "authorization" not in storage.headers
    assert not any(TOKEN in str(v) for v in storage.headers.values())
    # tail in small pieces: never split a UTF-8 character
    head = await env.plugin.get_job_log(c.GetJobLogParams(run_id=rid, job=job_id, limit=19), env.ctx)
    assert head.content == "line one\nline two " and not head.complete
    rest = await env.plugin.get_job_log(
        c.GetJobLogParams(run_id=rid, job=job_id, offset=head.next_offset), env.ctx
    )
    assert head.content + rest.content == log and rest.complete


async def test_logs_by_name_and_of_a_running_job(env: Env) -> None:
    _, workflow = seeded(env)
    run = env.actions.start_run(workflow, ref="main")
    env.actions.start(run)
    pending = await env.plugin.get_job_log(
        c.GetJobLogParams(run_id=f"alice:api:{run.id}", job="lint"), env.ctx
    )
    assert (pending.content, pending.complete) == ("", False)
    with pytest.raises(NotFound, match="no job"):
        await env.plugin.get_job_log(c.GetJobLogParams(run_id=f"alice:api:{run.id}", job="nope"), env.ctx)


async def test_same_host_downloads_keep_the_token(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    e = await make(spec_transport, same_host_downloads=True)
    run = await finished(e, {"lint": "ok\n"})
    got = await e.plugin.get_job_log(c.GetJobLogParams(run_id=f"alice:api:{run.id}", job="lint"), e.ctx)
    assert got.content == "ok\n"
    storage = e.actions.blob_requests[-1]
    assert storage.url.host == "api.github.com" and storage.headers["authorization"] == f"Bearer {TOKEN}"
    await e.plugin.dispose()


async def test_artifacts_list_and_download(env: Env) -> None:
    run = await finished(env)
    kept = env.actions.add_artifact(run, "dist", {"app.whl": b"wheel"})
    plain = env.actions.add_artifact(run, "reports", {"junit.xml": b"<x/>"}, report_digest=False)
    old = env.actions.add_artifact(run, "old", {"a": b"a"}, expired=True)
    listed = await env.plugin.list_artifacts(c.ListArtifactsParams(run_id=f"alice:api:{run.id}"), env.ctx)
    assert [(a.name, a.run_id, a.content_type) for a in listed.items] == [
        ("dist", f"alice:api:{run.id}", "application/zip"),
        ("reports", f"alice:api:{run.id}", "application/zip"),
        ("old", f"alice:api:{run.id}", "application/zip"),
    ]
    assert listed.items[0].digest == "sha256:" + hashlib.sha256(kept.data).hexdigest()
    assert listed.items[1].digest == ""
    data = await env.plugin.download_artifact(
        c.DownloadArtifactParams(artifact_id=listed.items[1].id), env.ctx
    )
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(data.content)))
    assert archive.read("junit.xml") == b"<x/>"
    assert data.digest == "sha256:" + hashlib.sha256(plain.data).hexdigest() and data.size == len(plain.data)
    assert "authorization" not in env.actions.blob_requests[-1].headers
    with pytest.raises(NotFound, match="expired"):
        await env.plugin.download_artifact(
            c.DownloadArtifactParams(artifact_id=str(old.id), repo="alice/api"), env.ctx
        )


async def test_downloads_are_capped(spec_transport: Callable[..., SpecValidatingTransport]) -> None:
    e = await make(spec_transport, config={"maxDownloadBytes": 10})
    run = await finished(e, {"lint": "x" * 100})
    with pytest.raises(InvalidRequest, match="maxDownloadBytes"):
        await e.plugin.get_job_log(c.GetJobLogParams(run_id=f"alice:api:{run.id}", job="lint"), e.ctx)
    await e.plugin.dispose()
