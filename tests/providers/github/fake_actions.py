"""GitHub Actions on top of :class:`GitHubFake`: workflows registered from the files pushed to
``.github/workflows`` on the default branch, ``workflow_dispatch`` runs, jobs, cancel and re-run,
and logs and artifact archives served the way GitHub serves them — a 302 from the API to a
short-lived signed URL on a storage host, which (like Azure Blob Storage) rejects a request that
carries an ``Authorization`` header next to its signature.

The test drives the runs (``start``, ``finish``, ``add_artifact``). ``dispatch_mode`` says how the
dispatch endpoint answers ``return_run_details``: ``details`` (200 with the run id, github.com
today), ``ignore`` (204 without an id, as before that option existed) or ``reject`` (422 for the
unknown key). ``listing_delay`` hides a new run from that many listings, as GitHub's eventual
consistency does.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from tests.providers.github.fake import GitHubFake, Repo, error, iso, node_id, swap, template
from tests.support.fake_upstream import FakeRequest, HttpError, empty_response, json_response, link_paginate

SECRET = "storage-secret"


def sign(path: str) -> str:
    return hashlib.sha256(f"{SECRET}:{path}".encode()).hexdigest()[:32]


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 0, 0, 0))
            archive.writestr(info, data)
    return buffer.getvalue()


@dataclass
class Workflow:
    id: int
    repo: str
    path: str
    name: str
    created: float
    dispatchable: bool
    inputs: set[str]
    jobs: list[str]


@dataclass
class JobState:
    id: int
    name: str
    status: str = "queued"
    conclusion: str | None = None
    started: float | None = None
    completed: float | None = None
    log: bytes = b""


@dataclass
class Run:
    id: int
    repo: str
    workflow: Workflow
    number: int
    event: str
    head_branch: str
    head_sha: str
    created: float
    actor: str
    inputs: dict[str, str]
    jobs: list[JobState]
    status: str = "queued"
    conclusion: str | None = None
    updated: float = 0.0
    started: float | None = None
    attempt: int = 1
    hidden_for: int = 0


@dataclass
class ArtifactObj:
    id: int
    run: Run
    name: str
    data: bytes
    created: float
    expired: bool = False
    report_digest: bool = True


@dataclass
class ActionsFake:
    gh: GitHubFake
    blob_host: str = "blobs.example"
    dispatch_mode: str = "details"
    listing_delay: int = 0
    defer_registration: bool = False
    # serve downloads from the API's own host (a GitHub Enterprise Server with local storage)
    same_host_downloads: bool = False
    workflows: dict[int, Workflow] = field(default_factory=dict)
    runs: dict[int, Run] = field(default_factory=dict)
    artifacts: dict[int, ArtifactObj] = field(default_factory=dict)
    pending: list[tuple[Repo, str, bytes]] = field(default_factory=list)
    blob_requests: list[httpx.Request] = field(default_factory=list)
    dispatches: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gh.on_push = self._on_push  # type: ignore[method-assign]
        self._routes()

    # -- setup ------------------------------------------------------------------------
    def seed_workflow(self, repo: Repo, path: str, text: str) -> Workflow:
        repo.git.push(repo.git.default_branch, {path: text}, f"Add {path}", self.gh.user(repo.owner).person)
        return self.register(repo, path, text.encode())

    def register(self, repo: Repo, path: str, data: bytes) -> Workflow:
        doc = yaml.safe_load(data) or {}
        on = doc.get("on", doc.get(True)) or {}
        events = (
            {on: None} if isinstance(on, str) else ({e: None for e in on} if isinstance(on, list) else on)
        )
        dispatch = events.get("workflow_dispatch") if isinstance(events, dict) else None
        existing = next(
            (w for w in self.workflows.values() if w.repo == repo.full_name and w.path == path), None
        )
        jobs = [str((spec or {}).get("name") or key) for key, spec in (doc.get("jobs") or {}).items()]
        workflow = Workflow(
            existing.id if existing else self.gh.next_id(),
            repo.full_name,
            path,
            str(doc.get("name") or path),
            existing.created if existing else self.gh.now,
            isinstance(events, dict) and "workflow_dispatch" in events,
            set(((dispatch or {}).get("inputs") or {}).keys()),
            jobs,
        )
        self.workflows[workflow.id] = workflow
        return workflow

    def register_pending(self) -> None:
        for repo, path, data in self.pending:
            self.register(repo, path, data)
        self.pending.clear()

    def _on_push(self, repo: Repo, branch: str, made: Any) -> None:
        if branch != repo.git.default_branch:
            return
        for path, data in made.tree.items():
            parent = repo.git.commits[made.parents[0]].tree.get(path) if made.parents else None
            if path.startswith(".github/workflows/") and path.endswith((".yml", ".yaml")) and data != parent:
                if self.defer_registration:
                    self.pending.append((repo, path, data))
                else:
                    self.register(repo, path, data)

    def start_run(
        self,
        workflow: Workflow,
        *,
        ref: str,
        event: str = "workflow_dispatch",
        inputs: dict[str, str] | None = None,
        actor: str = "alice",
    ) -> Run:
        repo = self.gh.repo(workflow.repo)
        number = 1 + sum(1 for r in self.runs.values() if r.workflow.id == workflow.id)
        run = Run(
            self.gh.next_id(),
            workflow.repo,
            workflow,
            number,
            event,
            ref,
            repo.git.branches[ref],
            self.gh.now,
            actor,
            dict(inputs or {}),
            [JobState(self.gh.next_id(), j) for j in workflow.jobs],
            updated=self.gh.now,
            hidden_for=self.listing_delay,
        )
        self.runs[run.id] = run
        return run

    def start(self, run: Run) -> None:
        run.status, run.started, run.updated = "in_progress", self.gh.now, self.gh.now
        for job in run.jobs:
            job.status, job.started = "in_progress", self.gh.now

    def finish(self, run: Run, conclusion: str = "success", logs: dict[str, str] | None = None) -> None:
        if run.started is None:
            self.start(run)
        run.status, run.conclusion, run.updated = "completed", conclusion, self.gh.now
        for job in run.jobs:
            job.status, job.conclusion, job.completed = "completed", conclusion, self.gh.now
            job.log = (logs or {}).get(job.name, f"{job.name}: done\n").encode()

    def add_artifact(
        self,
        run: Run,
        name: str,
        files: dict[str, bytes],
        *,
        expired: bool = False,
        report_digest: bool = True,
    ) -> ArtifactObj:
        artifact = ArtifactObj(
            self.gh.next_id(), run, name, zip_of(files), self.gh.now, expired, report_digest
        )
        self.artifacts[artifact.id] = artifact
        return artifact

    # -- downloads -----------------------------------------------------------------------
    def download_url(self, kind: str, ident: int) -> str:
        path = f"/_downloads/{kind}/{ident}"
        api = urlsplit(self.gh.api)
        origin = f"{api.scheme}://{api.netloc}" if self.same_host_downloads else f"https://{self.blob_host}"
        return f"{origin}{path}?sig={sign(path)}&se=2024-06-03T16%3A00%3A00Z"

    def blob_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._serve_blob)

    def _serve_blob(self, request: httpx.Request) -> httpx.Response:
        self.blob_requests.append(request)
        if "authorization" in request.headers and not self.same_host_downloads:
            return httpx.Response(
                400,
                text="<Error><Code>InvalidAuthenticationInfo</Code></Error>",
                headers={"content-type": "application/xml"},
            )
        path = request.url.path
        if request.url.params.get("sig") != sign(path):
            return httpx.Response(
                403,
                text="<Error><Code>AuthenticationFailed</Code></Error>",
                headers={"content-type": "application/xml"},
            )
        _, _, kind, ident = path.split("/", 3)
        if kind == "logs":
            job = next(j for r in self.runs.values() for j in r.jobs if j.id == int(ident))
            return httpx.Response(200, content=job.log, headers={"content-type": "text/plain"})
        return httpx.Response(
            200, content=self.artifacts[int(ident)].data, headers={"content-type": "application/zip"}
        )

    # -- payloads ------------------------------------------------------------------------
    def _swap(self, value: Any, repo: str) -> Any:
        return swap(value, [("octo-org/octo-repo", repo), ("octo-org/octo-docs", repo), *self.gh._bases])

    def workflow_json(self, w: Workflow) -> dict[str, Any]:
        repo = self.gh.repo(w.repo)
        data = self._swap(template("workflow"), w.repo)
        data.update(
            id=w.id,
            node_id=node_id("Workflow", w.id),
            name=w.name,
            path=w.path,
            state="active",
            created_at=iso(w.created),
            updated_at=iso(w.created),
            url=f"{self.gh.api}/repos/{w.repo}/actions/workflows/{w.id}",
            html_url=f"{self.gh.web}/{w.repo}/blob/{repo.git.default_branch}/{w.path}",
            badge_url=f"{self.gh.web}/{w.repo}/workflows/{w.name}/badge.svg",
        )
        return data

    def run_json(self, run: Run) -> dict[str, Any]:
        repo = self.gh.repo(run.repo)
        api = f"{self.gh.api}/repos/{run.repo}/actions/runs/{run.id}"
        head = repo.git.commits[run.head_sha]
        data = self._swap(template("workflow-run"), run.repo)
        data.update(
            id=run.id,
            name=run.workflow.name,
            node_id=node_id("WorkflowRun", run.id),
            head_branch=run.head_branch,
            head_sha=run.head_sha,
            path=run.workflow.path,
            run_number=run.number,
            run_attempt=run.attempt,
            event=run.event,
            display_title=run.workflow.name,
            status=run.status,
            conclusion=run.conclusion,
            workflow_id=run.workflow.id,
            url=api,
            html_url=f"{self.gh.web}/{run.repo}/actions/runs/{run.id}",
            created_at=iso(run.created),
            updated_at=iso(run.updated),
            run_started_at=iso(run.started or run.created),
            jobs_url=f"{api}/jobs",
            logs_url=f"{api}/logs",
            artifacts_url=f"{api}/artifacts",
            cancel_url=f"{api}/cancel",
            rerun_url=f"{api}/rerun",
            previous_attempt_url=f"{api}/attempts/{run.attempt - 1}" if run.attempt > 1 else None,
            workflow_url=f"{self.gh.api}/repos/{run.repo}/actions/workflows/{run.workflow.id}",
            actor=self.gh.simple_user(run.actor),
            triggering_actor=self.gh.simple_user(run.actor),
            head_commit={
                "id": head.sha,
                "tree_id": hashlib.sha1(head.sha.encode()).hexdigest(),
                "message": head.message,
                "timestamp": iso(head.date),
                "author": {"name": head.author.name, "email": head.author.email},
                "committer": {"name": head.committer.name, "email": head.committer.email},
            },
            repository=self.gh.repo_json(repo, "minimal"),
            head_repository=self.gh.repo_json(repo, "minimal"),
            pull_requests=[],
            referenced_workflows=[],
        )
        return data

    def job_json(self, run: Run, job: JobState) -> dict[str, Any]:
        data = self._swap(template("job-paginated")["jobs"][0], run.repo)
        data.update(
            id=job.id,
            run_id=run.id,
            run_url=f"{self.gh.api}/repos/{run.repo}/actions/runs/{run.id}",
            node_id=node_id("Job", job.id),
            head_sha=run.head_sha,
            head_branch=run.head_branch,
            url=f"{self.gh.api}/repos/{run.repo}/actions/jobs/{job.id}",
            html_url=f"{self.gh.web}/{run.repo}/actions/runs/{run.id}/job/{job.id}",
            status=job.status,
            conclusion=job.conclusion,
            created_at=iso(run.created),
            started_at=iso(job.started or run.created),
            completed_at=iso(job.completed) if job.completed else None,
            name=job.name,
            steps=[],
            check_run_url=f"{self.gh.api}/repos/{run.repo}/check-runs/{job.id}",
            labels=["ubuntu-latest"],
            workflow_name=run.workflow.name,
            run_attempt=run.attempt,
        )
        return data

    def artifact_json(self, a: ArtifactObj) -> dict[str, Any]:
        repo = self.gh.repo(a.run.repo)
        data = self._swap(template("artifact"), a.run.repo)
        data.update(
            id=a.id,
            node_id=node_id("Artifact", a.id),
            name=a.name,
            size_in_bytes=len(a.data),
            url=f"{self.gh.api}/repos/{a.run.repo}/actions/artifacts/{a.id}",
            archive_download_url=f"{self.gh.api}/repos/{a.run.repo}/actions/artifacts/{a.id}/zip",
            expired=a.expired,
            created_at=iso(a.created),
            updated_at=iso(a.created),
            expires_at=iso(a.created + 90 * 86400),
            workflow_run={
                "id": a.run.id,
                "repository_id": repo.id,
                "head_repository_id": repo.id,
                "head_branch": a.run.head_branch,
                "head_sha": a.run.head_sha,
            },
        )
        if a.report_digest:
            data["digest"] = "sha256:" + hashlib.sha256(a.data).hexdigest()
        else:
            data.pop("digest", None)
        return data

    # -- routes ----------------------------------------------------------------------------
    def _workflow_for(self, repo: Repo, ident: str) -> Workflow:
        for w in self.workflows.values():
            if w.repo == repo.full_name and (str(w.id) == ident or w.path.rsplit("/", 1)[-1] == ident):
                return w
        raise error(404, "Not Found")

    def _run_for(self, repo: Repo, req: FakeRequest) -> Run:
        run = self.runs.get(int(req.params["run_id"]))
        if run is None or run.repo != repo.full_name:
            raise error(404, "Not Found")
        return run

    def _routes(self) -> None:
        gh = self.gh
        r = gh.router
        A = "/repos/{owner}/{repo}/actions"

        @r.route("GET", A + "/workflows")
        def list_workflows(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req)
            found = sorted(
                (w for w in self.workflows.values() if w.repo == repo.full_name), key=lambda w: w.id
            )
            chunk, headers = link_paginate(
                req, found, size_param="per_page", default_size=30, max_size=100, total_header=None
            )
            return json_response(
                200, {"total_count": len(found), "workflows": [self.workflow_json(w) for w in chunk]}, headers
            )

        @r.route("GET", A + "/workflows/{workflow_id}")
        def get_workflow(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req)
            return json_response(200, self.workflow_json(self._workflow_for(repo, req.params["workflow_id"])))

        @r.route("POST", A + "/workflows/{workflow_id}/dispatches")
        def dispatch(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req, write=True)
            workflow = self._workflow_for(repo, req.params["workflow_id"])
            body = req.json() or {}
            self.dispatches.append(body)
            if "return_run_details" in body and self.dispatch_mode == "reject":
                raise error(422, 'Invalid request.\n\n"return_run_details" is not a permitted key.')
            if not workflow.dispatchable:
                raise error(422, "Workflow does not have 'workflow_dispatch' trigger")
            ref = str(body.get("ref", ""))
            if ref not in repo.git.branches:
                raise error(422, f"No ref found for: {ref}")
            unexpected = sorted(set(body.get("inputs") or {}) - workflow.inputs)
            if unexpected:
                raise error(422, f"Unexpected inputs provided: {unexpected}")
            run = self.start_run(workflow, ref=ref, inputs=body.get("inputs"), actor=gh.acting().login)
            if body.get("return_run_details") and self.dispatch_mode == "details":
                return json_response(
                    200,
                    {
                        "workflow_run_id": run.id,
                        "run_url": f"{gh.api}/repos/{repo.full_name}/actions/runs/{run.id}",
                        "html_url": f"{gh.web}/{repo.full_name}/actions/runs/{run.id}",
                    },
                )
            return empty_response(204)

        def list_runs(req: FakeRequest, runs: list[Run]) -> httpx.Response:
            q = req.query
            shown = [x for x in runs if x.hidden_for == 0]
            for run in runs:
                run.hidden_for = max(0, run.hidden_for - 1)
            if q.get("event"):
                shown = [x for x in shown if x.event == q["event"]]
            if q.get("branch"):
                shown = [x for x in shown if x.head_branch == q["branch"]]
            if q.get("status"):
                shown = [x for x in shown if q["status"] in (x.status, x.conclusion)]
            created = q.get("created", "")
            if created.startswith(">="):
                since = datetime.fromisoformat(created[2:].replace("Z", "+00:00")).timestamp()
                shown = [x for x in shown if x.created >= since]
            shown.sort(key=lambda x: (-x.created, -x.id))
            chunk, headers = link_paginate(
                req, shown, size_param="per_page", default_size=30, max_size=100, total_header=None
            )
            return json_response(
                200, {"total_count": len(shown), "workflow_runs": [self.run_json(x) for x in chunk]}, headers
            )

        @r.route("GET", A + "/workflows/{workflow_id}/runs")
        def workflow_runs(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req)
            workflow = self._workflow_for(repo, req.params["workflow_id"])
            return list_runs(req, [x for x in self.runs.values() if x.workflow.id == workflow.id])

        @r.route("GET", A + "/runs")
        def repo_runs(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req)
            return list_runs(req, [x for x in self.runs.values() if x.repo == repo.full_name])

        @r.route("GET", A + "/runs/{run_id}")
        def get_run(req: FakeRequest) -> httpx.Response:
            return json_response(200, self.run_json(self._run_for(gh.repo_for(req), req)))

        @r.route("POST", A + "/runs/{run_id}/cancel")
        def cancel(req: FakeRequest) -> httpx.Response:
            run = self._run_for(gh.repo_for(req, write=True), req)
            if run.status == "completed":
                raise error(409, "Cannot cancel a workflow run that is completed.")
            run.status, run.conclusion, run.updated = "completed", "cancelled", gh.now
            for job in run.jobs:
                if job.status != "completed":
                    job.status, job.conclusion, job.completed = "completed", "cancelled", gh.now
            return json_response(202, {})

        @r.route("POST", A + "/runs/{run_id}/rerun")
        def rerun(req: FakeRequest) -> httpx.Response:
            run = self._run_for(gh.repo_for(req, write=True), req)
            if run.status != "completed":
                raise error(403, "This workflow is already running")
            run.attempt += 1
            run.status, run.conclusion, run.started, run.updated = "queued", None, None, gh.now
            run.jobs = [JobState(gh.next_id(), j.name) for j in run.jobs]
            return json_response(201, {})

        @r.route("GET", A + "/runs/{run_id}/jobs")
        def jobs(req: FakeRequest) -> httpx.Response:
            run = self._run_for(gh.repo_for(req), req)
            chunk, headers = link_paginate(
                req, run.jobs, size_param="per_page", default_size=30, max_size=100, total_header=None
            )
            return json_response(
                200, {"total_count": len(run.jobs), "jobs": [self.job_json(run, j) for j in chunk]}, headers
            )

        @r.route("GET", A + "/jobs/{job_id}")
        def get_job(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req)
            for run in self.runs.values():
                for job in run.jobs:
                    if job.id == int(req.params["job_id"]) and run.repo == repo.full_name:
                        return json_response(200, self.job_json(run, job))
            raise error(404, "Not Found")

        @r.route("GET", A + "/jobs/{job_id}/logs")
        def job_logs(req: FakeRequest) -> httpx.Response:
            repo = gh.repo_for(req)
            for run in self.runs.values():
                for job in run.jobs:
                    if job.id == int(req.params["job_id"]) and run.repo == repo.full_name:
                        if job.status != "completed":
                            raise error(404, "Not Found")
                        return empty_response(302, {"Location": self.download_url("logs", job.id)})
            raise error(404, "Not Found")

        @r.route("GET", A + "/runs/{run_id}/artifacts")
        def run_artifacts(req: FakeRequest) -> httpx.Response:
            run = self._run_for(gh.repo_for(req), req)
            found = [a for a in self.artifacts.values() if a.run.id == run.id]
            chunk, headers = link_paginate(
                req, found, size_param="per_page", default_size=30, max_size=100, total_header=None
            )
            return json_response(
                200, {"total_count": len(found), "artifacts": [self.artifact_json(a) for a in chunk]}, headers
            )

        def the_artifact(req: FakeRequest) -> ArtifactObj:
            repo = gh.repo_for(req)
            artifact = self.artifacts.get(int(req.params["artifact_id"]))
            if artifact is None or artifact.run.repo != repo.full_name:
                raise error(404, "Not Found")
            return artifact

        @r.route("GET", A + "/artifacts/{artifact_id}")
        def get_artifact(req: FakeRequest) -> httpx.Response:
            return json_response(200, self.artifact_json(the_artifact(req)))

        @r.route("GET", A + "/artifacts/{artifact_id}/{archive_format}")
        def download_artifact(req: FakeRequest) -> httpx.Response:
            artifact = the_artifact(req)
            if req.params["archive_format"] != "zip":
                raise HttpError(404, {"message": "Not Found"})
            if artifact.expired:
                raise error(410, "Artifact has expired")
            return empty_response(302, {"Location": self.download_url("artifacts", artifact.id)})
