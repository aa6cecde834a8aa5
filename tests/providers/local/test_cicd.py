"""The local CI/CD provider, driven through the plugin contract against real git repositories."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mosaic.catalog import CATALOG
from mosaic.catalog.cicd import TERMINAL_RUN_STATUSES, CreatePipelineParams, PipelineRun
from mosaic.errors import Conflict, Forbidden, InvalidRequest, NotFound, ProviderUnavailable
from mosaic.gateway.context import RequestContext
from mosaic.providers.local.cicd import LocalCicdPlugin
from mosaic.providers.local.cicd_store import CicdStore

REPO = "acme/app"
GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]

# ---------------------------------------------------------------------------
# Fixtures and helpers


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_repo(git_data_dir: Path, repo: str = REPO, files: dict[str, str] | None = None) -> str:
    """A bare repository at <git_data_dir>/git/<owner>/<name>.git with one commit on main; its sha."""
    owner, name = repo.split("/")
    work = git_data_dir / "worktrees" / owner / name
    work.mkdir(parents=True)
    _git("init", "--quiet", "-b", "main", str(work))
    for rel, text in (files or {"hello.txt": "hello from the repo\n"}).items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    _git("add", "-A", cwd=work)
    _git("commit", "--quiet", "-m", "initial", cwd=work)
    bare = git_data_dir / "git" / owner / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("clone", "--quiet", "--bare", str(work), str(bare))
    return _git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def repo_sha(tmp_path: Path) -> str:
    return make_repo(tmp_path / "data")


Factory = Callable[..., Awaitable[LocalCicdPlugin]]


@pytest.fixture
async def make_plugin(tmp_path: Path) -> AsyncIterator[Factory]:
    started: list[LocalCicdPlugin] = []

    async def factory(plugin_id: str = "local-cicd", **config: Any) -> LocalCicdPlugin:
        config = {"dataDir": tmp_path / "data", "allowExec": True, "killGraceS": 2, **config}
        plugin = LocalCicdPlugin(plugin_id)
        await plugin.initialize(LocalCicdPlugin.Config(**config))
        await plugin.start()
        started.append(plugin)
        return plugin

    yield factory
    for plugin in reversed(started):
        if plugin.started:
            await plugin.stop()
        await plugin.dispose()


@pytest.fixture
async def plugin(make_plugin: Factory, repo_sha: str) -> LocalCicdPlugin:
    return await make_plugin()


async def call(plugin: LocalCicdPlugin, operation: str, /, **params: Any) -> Any:
    op = CATALOG[f"cicd.{operation}"]
    return await plugin.call(op, op.params(**params), RequestContext())


async def wait_for_run(plugin: LocalCicdPlugin, run_id: str, within: float = 10.0) -> PipelineRun:
    """Poll a run until its status is final; fail the test if that takes longer than `within` s."""
    deadline = time.monotonic() + within
    while True:
        run: PipelineRun = await call(plugin, "get_pipeline_status", run_id=run_id)
        if run.status in TERMINAL_RUN_STATUSES:
            return run
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {run.status} after {within}s")
        await asyncio.sleep(0.02)


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


async def define(plugin: LocalCicdPlugin, steps: list[dict[str, Any]], name: str = "ci",
                 repo: str = REPO) -> Any:
    return await call(plugin, "create_pipeline", repo=repo, name=name, steps=steps)


async def run_pipeline(plugin: LocalCicdPlugin, steps: list[dict[str, Any]], **trigger: Any) -> PipelineRun:
    await define(plugin, steps)
    run = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci", **trigger)
    return await wait_for_run(plugin, run.id)


async def log_of(plugin: LocalCicdPlugin, run_id: str, job: str) -> str:
    log = await call(plugin, "get_job_log", run_id=run_id, job=job, limit=1_048_576)
    return str(log.content)


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, just not yet reaped


# ---------------------------------------------------------------------------
# The whole path


async def test_define_trigger_logs_and_artifacts(plugin: LocalCicdPlugin, repo_sha: str,
                                                 tmp_path: Path) -> None:
    pipeline = await define(plugin, [
        {"name": "build", "commands": ["echo building in $MOSAIC_JOB", "mkdir -p dist/sub",
                                       "cp hello.txt dist/out.txt", "printf 'bin\\000ary' > dist/sub/b.bin"],
         "artifacts": ["dist/**"]},
        {"name": "test", "commands": "echo tests passed"},
    ])
    assert pipeline.provider == "local-cicd" and [s.name for s in pipeline.steps] == ["build", "test"]
    assert pipeline.steps[1].commands == ["echo tests passed"]

    run = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")
    assert run.status in {"pending", "running"} and run.sha == repo_sha and run.ref == "main"
    assert [j.name for j in run.jobs] == ["build", "test"]
    done = await wait_for_run(plugin, run.id)

    assert done.status == "success", done
    assert [(j.name, j.status, j.exit_code) for j in done.jobs] == [("build", "success", 0),
                                                                    ("test", "success", 0)]
    assert done.number == 1 and done.started_at and done.finished_at
    build_log = await log_of(plugin, run.id, "build")
    assert "+ echo building in $MOSAIC_JOB" in build_log
    assert "building in build" in build_log
    assert "tests passed" in await log_of(plugin, run.id, "test")

    artifacts = (await call(plugin, "list_artifacts", run_id=run.id)).items
    assert sorted(a.name for a in artifacts) == ["dist/out.txt", "dist/sub/b.bin"]
    for artifact in artifacts:
        data = await call(plugin, "download_artifact", artifact_id=artifact.id)
        content = base64.b64decode(data.content)
        expected = b"hello from the repo\n" if artifact.name == "dist/out.txt" else b"bin\x00ary"
        assert content == expected
        assert data.digest == artifact.digest == f"sha256:{hashlib.sha256(expected).hexdigest()}"
        assert data.size == artifact.size == len(expected) and artifact.job == "build"
        blob = tmp_path / "data/cicd/artifacts" / data.digest[7:9] / data.digest[7:]
        assert blob.read_bytes() == expected

    # The workspace is gone, the log stays.
    assert list((tmp_path / "data/cicd/workspaces").iterdir()) == []
    assert (tmp_path / "data/cicd/logs" / run.id / "build.log").is_file()
    runs = await call(plugin, "list_runs", repo=REPO, pipeline="ci")
    assert [r.id for r in runs.items] == [run.id]


async def test_failing_step_stops_the_pipeline(plugin: LocalCicdPlugin) -> None:
    run = await run_pipeline(plugin, [
        {"name": "first", "commands": ["echo before", "false", "echo never printed"]},
        {"name": "second", "commands": ["echo second"]},
    ])
    assert run.status == "failure"
    assert [(j.name, j.status, j.exit_code) for j in run.jobs] == [("first", "failure", 1),
                                                                   ("second", "skipped", None)]
    log = await log_of(plugin, run.id, "first")
    assert "before" in log and "never printed" not in log and "exit code 1" in log
    assert await log_of(plugin, run.id, "second") == ""
    failed = await call(plugin, "list_runs", repo=REPO, status="failure")
    assert [r.id for r in failed.items] == [run.id]
    assert (await call(plugin, "list_runs", repo=REPO, status="success")).items == []


async def test_step_timeout_fails_the_job(plugin: LocalCicdPlugin) -> None:
    began = time.monotonic()
    run = await run_pipeline(plugin, [{"name": "slow", "commands": ["sleep 20"], "timeout_s": 1}])
    assert time.monotonic() - began < 5
    assert run.status == "failure" and run.jobs[0].status == "failure"
    assert "timed out after 1s" in await log_of(plugin, run.id, "slow")


async def test_cancel_kills_the_process_group(plugin: LocalCicdPlugin, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    await define(plugin, [{"name": "wait", "commands": [f"sleep 30 & echo $! > {pidfile}; wait"]},
                          {"name": "after", "commands": ["echo after"]}])
    run = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")

    async def sleeping() -> bool:
        return pidfile.exists() and pidfile.read_text().strip() != ""

    await wait_until(sleeping)
    sleep_pid = int(pidfile.read_text())
    assert process_alive(sleep_pid)

    began = time.monotonic()
    canceled = await call(plugin, "cancel_run", run_id=run.id)
    assert time.monotonic() - began < 3
    assert canceled.status == "canceled" and canceled.error == "canceled by request"
    assert [(j.name, j.status) for j in canceled.jobs] == [("wait", "canceled"), ("after", "skipped")]

    async def sleep_gone() -> bool:
        return not process_alive(sleep_pid)

    await wait_until(sleep_gone, within=2)
    assert "canceled" in await log_of(plugin, run.id, "wait")
    assert list((tmp_path / "data/cicd/workspaces").iterdir()) == []
    # Idempotent: canceling again returns the same final run.
    again = await call(plugin, "cancel_run", run_id=run.id)
    assert again.status == "canceled" and again.finished_at == canceled.finished_at


async def test_rerun_repeats_commit_and_variables(plugin: LocalCicdPlugin, repo_sha: str) -> None:
    first = await run_pipeline(plugin, [{"name": "greet", "commands": ["echo $GREETING $MOSAIC_SHA"]}],
                               variables={"GREETING": "bonjour"})
    assert first.status == "success" and first.variables == {"GREETING": "bonjour"}
    again = await call(plugin, "rerun", run_id=first.id)
    assert again.id != first.id and again.rerun_of == first.id and again.number == 2
    assert (again.sha, again.ref, again.variables) == (first.sha, first.ref, first.variables)
    done = await wait_for_run(plugin, again.id)
    assert done.status == "success"
    assert f"bonjour {repo_sha}" in await log_of(plugin, again.id, "greet")
    runs = await call(plugin, "list_runs", repo=REPO, limit=1)
    assert [r.id for r in runs.items] == [again.id] and runs.next_cursor
    older = await call(plugin, "list_runs", repo=REPO, limit=1, cursor=runs.next_cursor)
    assert [r.id for r in older.items] == [first.id] and older.next_cursor is None


async def test_exec_disabled_is_forbidden(make_plugin: Factory, repo_sha: str) -> None:
    plugin = await make_plugin(allowExec=False)
    await define(plugin, [{"name": "x", "commands": ["echo x"]}])
    with pytest.raises(Forbidden, match="allowExec: true"):
        await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")
    assert plugin.metrics()["exec_allowed"] is False
    assert "execution disabled" in (await plugin.health_check()).detail
    assert LocalCicdPlugin.Config(dataDir="/x", allow_exec=True).allow_exec is True  # type: ignore[attr-defined]


async def test_upload_download_round_trip(plugin: LocalCicdPlugin) -> None:
    run = await run_pipeline(plugin, [{"name": "noop", "commands": ["true"]}])
    payload = bytes(range(256)) * 10
    uploaded = await call(plugin, "upload_artifact", run_id=run.id, name="reports/data.bin",
                          content=base64.b64encode(payload).decode(), content_type="application/x-test")
    assert uploaded.digest == f"sha256:{hashlib.sha256(payload).hexdigest()}"
    assert uploaded.size == len(payload) and uploaded.job is None and uploaded.run_id == run.id
    data = await call(plugin, "download_artifact", artifact_id=uploaded.id, repo=REPO)
    assert base64.b64decode(data.content) == payload and data.content_type == "application/x-test"
    listed = await call(plugin, "list_artifacts", run_id=run.id)
    assert [a.id for a in listed.items] == [uploaded.id]

    with pytest.raises(Conflict):
        await call(plugin, "upload_artifact", run_id=run.id, name="reports/data.bin", content="")
    with pytest.raises(InvalidRequest, match="base64"):
        await call(plugin, "upload_artifact", run_id=run.id, name="other", content="not base64!")
    with pytest.raises(NotFound):
        await call(plugin, "download_artifact", artifact_id=uploaded.id, repo="acme/other")


async def test_not_found_paths(plugin: LocalCicdPlugin, repo_sha: str) -> None:
    with pytest.raises(NotFound, match="acme/missing"):
        await define(plugin, [{"name": "x", "commands": ["true"]}], repo="acme/missing")
    with pytest.raises(NotFound, match="no pipeline 'nope'"):
        await call(plugin, "get_pipeline", repo=REPO, pipeline="nope")
    with pytest.raises(NotFound):
        await call(plugin, "trigger_pipeline", repo=REPO, pipeline="nope")
    await define(plugin, [{"name": "x", "commands": ["true"]}])
    with pytest.raises(NotFound, match="ref 'no-such-branch'"):
        await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci", ref="no-such-branch")
    with pytest.raises(NotFound):
        await call(plugin, "get_pipeline_status", run_id="0123456789abcdef")
    with pytest.raises(NotFound):
        await call(plugin, "cancel_run", run_id="0123456789abcdef")
    with pytest.raises(NotFound):
        await call(plugin, "download_artifact", artifact_id="0123456789abcdef")
    with pytest.raises(NotFound):
        await call(plugin, "upload_artifact", run_id="0123456789abcdef", name="a", content="")
    run = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci", ref=repo_sha)
    assert (await wait_for_run(plugin, run.id)).sha == repo_sha
    with pytest.raises(NotFound, match="no job 'other'"):
        await call(plugin, "get_job_log", run_id=run.id, job="other")
    with pytest.raises(NotFound):
        await call(plugin, "get_pipeline_status", run_id=run.id, repo="acme/other")
    with pytest.raises(Conflict):
        await define(plugin, [{"name": "x", "commands": ["true"]}])


async def test_artifact_globs_cannot_escape_the_workspace(plugin: LocalCicdPlugin, tmp_path: Path) -> None:
    for bad in ("../secret", "/etc/passwd", "dist/../../x", "{..,dist}/x", "~/x"):
        with pytest.raises(ValidationError, match="artifact glob"):
            CreatePipelineParams(repo=REPO, name="ci",
                                 steps=[{"name": "s", "commands": ["true"], "artifacts": [bad]}])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    run = await run_pipeline(plugin, [{
        "name": "leak",
        "commands": [f"ln -s {outside / 'secret.txt'} leak.txt", f"ln -s {outside} linkdir",
                     "echo fine > ok.txt"],
        "artifacts": ["*.txt", "linkdir/*"],
    }])
    assert run.status == "success"
    names = [a.name for a in (await call(plugin, "list_artifacts", run_id=run.id)).items]
    assert names == ["hello.txt", "ok.txt"]
    log = await log_of(plugin, run.id, "leak")
    assert "'leak.txt' refused: resolves outside the workspace" in log
    assert "'linkdir/secret.txt' refused" in log
    assert (outside / "secret.txt").read_text() == "secret"


async def test_step_environment_is_minimal(plugin: LocalCicdPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SECRET_TOKEN", "s3cr3t")
    run = await run_pipeline(
        plugin, [{"name": "env", "commands": ["env | sort", "pwd"], "env": {"STEP_VAR": "step", "X": "1"}}],
        variables={"X": "from-trigger"})
    log = await log_of(plugin, run.id, "env")
    assert "s3cr3t" not in log and "GATEWAY_SECRET_TOKEN" not in log
    assert "CI=true" in log and "STEP_VAR=step" in log and "X=from-trigger" in log
    assert f"MOSAIC_RUN_ID={run.id}" in log and f"MOSAIC_REPO={REPO}" in log
    home = next(line.split("=", 1)[1] for line in log.splitlines() if line.startswith("HOME="))
    assert home.endswith(f"/workspaces/{run.id}") and f"\n{home}\n" in log


async def test_log_can_be_tailed_by_offset(plugin: LocalCicdPlugin) -> None:
    run = await run_pipeline(plugin, [{"name": "talk", "commands": ["printf 'héllo wörld\\n'"]}])
    full = await call(plugin, "get_job_log", run_id=run.id, job="talk")
    assert full.complete and full.next_offset == full.size
    pieces, offset = [], 0
    while True:
        part = await call(plugin, "get_job_log", run_id=run.id, job="talk", offset=offset, limit=5)
        if part.next_offset == offset:
            break
        pieces.append(part.content)
        offset = part.next_offset
    assert "".join(pieces) == full.content and "héllo wörld" in full.content


async def test_yaml_definition(plugin: LocalCicdPlugin) -> None:
    pipeline = await call(plugin, "create_pipeline", repo=REPO, name="yaml", definition="""
steps:
  build:
    commands: echo yaml $LEVEL
    environment: {LEVEL: 3}
    artifacts: [hello.txt]
triggers:
  - event: push
    branches: [main]
""")
    assert [(s.name, s.commands, s.env) for s in pipeline.steps] == [("build", ["echo yaml $LEVEL"],
                                                                      {"LEVEL": "3"})]
    assert pipeline.triggers[0].event == "push" and pipeline.definition
    run = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="yaml")
    done = await wait_for_run(plugin, run.id)
    assert done.status == "success" and "yaml 3" in await log_of(plugin, run.id, "build")
    for bad, message in (("steps: [", "not valid YAML"), ("steps: []", "empty"),
                         ("steps:\n  - name: a\n    comands: [x]", "unknown keys"),
                         ("steps:\n  - {name: a, commands: [x], artifacts: ['../x']}", "artifact glob")):
        with pytest.raises(InvalidRequest, match=message):
            await call(plugin, "create_pipeline", repo=REPO, name="bad", definition=bad)


async def test_concurrency_limit_queues_runs(make_plugin: Factory, repo_sha: str) -> None:
    plugin = await make_plugin(maxConcurrentRuns=1)
    await define(plugin, [{"name": "s", "commands": ["sleep 30"]}])
    first = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")
    second = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")

    async def first_running() -> bool:
        return bool((await call(plugin, "get_pipeline_status", run_id=first.id)).status == "running")

    await wait_until(first_running)
    assert (await call(plugin, "get_pipeline_status", run_id=second.id)).status == "pending"
    assert (plugin.metrics()["runs_running"], plugin.metrics()["runs_queued"]) == (1, 1)
    queued = await call(plugin, "cancel_run", run_id=second.id)
    assert queued.status == "canceled" and [j.status for j in queued.jobs] == ["skipped"]
    assert (await call(plugin, "cancel_run", run_id=first.id)).status == "canceled"
    assert (plugin.metrics()["runs_running"], plugin.metrics()["runs_queued"]) == (0, 0)


async def test_stop_cancels_running_runs(make_plugin: Factory, repo_sha: str) -> None:
    plugin = await make_plugin()
    await define(plugin, [{"name": "s", "commands": ["sleep 30"]}])
    run = await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")

    async def running() -> bool:  # the step itself, not only the checkout
        return bool((await call(plugin, "get_pipeline_status", run_id=run.id)).jobs[0].status == "running")

    await wait_until(running)
    began = time.monotonic()
    await plugin.stop()
    assert time.monotonic() - began < 3
    stopped = await call(plugin, "get_pipeline_status", run_id=run.id)
    assert stopped.status == "canceled" and "stopped" in (stopped.error or "")
    assert [j.status for j in stopped.jobs] == ["canceled"]
    with pytest.raises(ProviderUnavailable):
        await call(plugin, "trigger_pipeline", repo=REPO, pipeline="ci")
    assert (await plugin.health_check()).status == "unhealthy"


async def test_crashed_runs_become_errors_but_live_ones_are_kept(make_plugin: Factory, repo_sha: str,
                                                                 tmp_path: Path) -> None:
    first = await make_plugin("first")
    await define(first, [{"name": "s", "commands": ["sleep 30"]}])
    live = await call(first, "trigger_pipeline", repo=REPO, pipeline="ci")
    # A run left "running" by a process that no longer exists.
    gone = await asyncio.create_subprocess_exec("true")
    await gone.wait()
    store = CicdStore(tmp_path / "data/cicd/cicd.sqlite3", "test")
    await store.open()
    pipeline = await store.get_pipeline(REPO, "ci")
    crashed = await store.create_run(pipeline, pipeline.steps, "main", repo_sha, {}, f"{gone.pid}:x")
    assert await store.start_run(crashed.id)
    await store.close()

    second = await make_plugin("second")  # a reload: same data dir, same process
    assert (await call(second, "get_pipeline_status", run_id=crashed.id)).status == "error"
    assert (await call(second, "get_pipeline_status", run_id=live.id)).status in {"pending", "running"}
    # The new instance can cancel a run the old one is executing.
    canceled = await call(second, "cancel_run", run_id=live.id)
    assert canceled.status == "canceled"


async def test_plugin_contract(plugin: LocalCicdPlugin) -> None:
    assert LocalCicdPlugin.capabilities() == CATALOG.names("cicd")
    assert (await plugin.health_check()).status == "healthy"
    info = plugin.info()
    assert info.type == "cicd" and info.provider == "local"


def test_catalog_declarations() -> None:
    ops = {op.name: op for op in CATALOG.for_service("cicd")}
    assert ops["cancel_run"].idempotent and not ops["trigger_pipeline"].idempotent
    assert not ops["rerun"].idempotent and ops["get_pipeline_status"].cache_ttl in {None, 1, 2}
    assert ops["download_artifact"].cache_ttl and ops["download_artifact"].cache_ttl >= 600
    assert ops["trigger_pipeline"].rest.path == "/cicd/repositories/{repo}/pipelines/{pipeline}/runs"
    for op in ops.values():
        fields = set(op.params.model_fields)
        placeholders = {seg[1:-1] for seg in op.rest.path.split("/") if seg.startswith("{")}
        assert placeholders <= fields, op.name
        assert issubclass(op.result, BaseModel) and op.summary
    trigger = ops["trigger_pipeline"].params
    assert {"size_bytes", "public"} <= set(trigger.model_fields)


async def test_runs_a_repository_of_the_local_git_provider(make_plugin: Factory, tmp_path: Path) -> None:
    from mosaic.providers.local.git import LocalGitPlugin

    git_dir = tmp_path / "gitdata"
    git = LocalGitPlugin("local-git")
    await git.initialize(LocalGitPlugin.Config(dataDir=git_dir))
    await git.start()
    try:
        ctx = RequestContext()
        op = CATALOG["git.create_repository"]
        await git.call(op, op.params(name="svc", owner="team"), ctx)
        op = CATALOG["git.put_file"]
        await git.call(op, op.params(repo="team/svc", path="VERSION", content="1.2.3\n",
                                     message="add version"), ctx)
        plugin = await make_plugin(gitDataDir=git_dir)
        await define(plugin, [{"name": "show", "commands": ["cat VERSION"]}], repo="team/svc")
        run = await call(plugin, "trigger_pipeline", repo="team/svc", pipeline="ci")
        done = await wait_for_run(plugin, run.id)
        assert done.status == "success" and "1.2.3" in await log_of(plugin, run.id, "show")
    finally:
        await git.stop()
        await git.dispose()
