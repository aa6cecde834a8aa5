"""A stateful in-memory Bitbucket Cloud (API 2.0) for tests: workspaces, repositories, branches,
``/src`` reads and form uploads, commits, diffstat, pull requests (merge_commit, squash,
fast_forward, asynchronous merges), approvals, change requests, comments and build statuses.

Payloads have the shape of ``bitbucket.yaml`` (with the errata of ``spec.py``): the tests run the
fake behind ``SpecValidatingTransport``, which checks each answer against the description too.

Behaviours follow Bitbucket's API reference: errors are ``{"type": "error", "error": {"message"}}``;
400 for an existing repository or branch, for "no changes to be pulled", for a merge with
conflicts or an impossible fast-forward, for approving one's own pull request; 409 when the
``parents`` of an upload is not the branch tip; ``next``-URL pagination (``page``/``pagelen``,
``pagelen`` at most 100, opaque page tokens for commits); abbreviated (12-digit) hashes inside pull
request payloads, as Bitbucket sends them; ``X-RateLimit-*`` headers on every answer.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.parser import BytesParser
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

import httpx
from tests.providers.gitlab.gitmodel import Clock, CommitObj, FileDiff, GitRepo, MergeConflict, Person, iso
from tests.support.fake_upstream import FakeRequest, HttpError, Router, empty_response, json_response

DEFAULT_PAGELEN = 10
MAX_PAGELEN = 100
SHORT = 12


def _err(status: int, message: str, detail: str | None = None) -> HttpError:
    error: dict[str, Any] = {"message": message}
    if detail:
        error["detail"] = detail
    return HttpError(status, {"type": "error", "error": error})


@dataclass
class Account:
    uuid: str
    account_id: str
    nickname: str
    display_name: str
    email: str
    token: str
    app_password: str


@dataclass
class Participant:
    user: str
    role: Literal["PARTICIPANT", "REVIEWER"]
    approved: bool
    state: str | None
    when: datetime


@dataclass
class PullRequest:
    id: int
    title: str
    description: str
    source: str
    destination: str
    author: str
    created: datetime
    updated: datetime
    draft: bool = False
    state: Literal["OPEN", "MERGED", "DECLINED", "SUPERSEDED"] = "OPEN"
    source_sha: str = ""
    destination_sha: str = ""
    merge_sha: str | None = None
    closed_by: str | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BuildStatus:
    uuid: str
    sha: str
    key: str
    name: str
    state: str
    url: str
    description: str
    created: datetime
    updated: datetime


@dataclass
class Repo:
    uuid: str
    workspace: str
    slug: str
    name: str
    description: str
    is_private: bool
    git: GitRepo
    created: datetime
    updated: datetime
    prs: dict[int, PullRequest] = field(default_factory=dict)
    statuses: list[BuildStatus] = field(default_factory=list)
    next_pr: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.workspace}/{self.slug}"


class BitbucketFake:
    """An in-memory Bitbucket Cloud answering at ``api_url`` (``https://api.bitbucket.test/2.0``)."""

    def __init__(self, api_url: str = "https://api.bitbucket.test/2.0",
                 web_url: str = "https://bitbucket.test") -> None:
        self.api = api_url.rstrip("/")
        self.web = web_url.rstrip("/")
        self.clock = Clock()
        self.accounts: dict[str, Account] = {}
        self.workspaces: dict[str, set[str]] = {}
        self.repos: dict[str, Repo] = {}
        # Merges answered 202 (then done in the background) while this is positive.
        self.slow_merges = 0
        self._ids = 0
        self.router = Router(prefix="/2.0", greedy=("path",),
                             not_found_body=lambda path: {"type": "error", "error": {"message": "Resource not found"}})
        self._routes()

    # -- setup -------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        response = self.router(request)
        if "x-ratelimit-limit" not in response.headers:
            response.headers["X-RateLimit-Limit"] = "1000"
            response.headers["X-RateLimit-Resource"] = "api"
            response.headers["X-RateLimit-NearLimit"] = "false"
        return response

    def _uuid(self) -> str:
        self._ids += 1
        return f"{{{self._ids:08x}-0000-4000-8000-{self._ids:012x}}}"

    def add_user(self, nickname: str, token: str, app_password: str = "") -> Account:
        account = Account(self._uuid(), f"5570:{self._ids:08x}", nickname, nickname.capitalize(),
                          f"{nickname}@example.com", token, app_password)
        self.accounts[nickname] = account
        self.workspaces.setdefault(nickname, {nickname})
        return account

    def add_workspace(self, slug: str, members: list[str]) -> None:
        self.workspaces[slug] = set(members)

    def add_repo(self, full_name: str, files: dict[str, str] | None = None, *, private: bool = True,
                 main: str = "main") -> Repo:
        workspace, _, slug = full_name.partition("/")
        repo = self._new_repo(workspace, slug, slug, "", private, main)
        if files is not None:
            author = next(iter(sorted(self.workspaces[workspace])))
            repo.git.push(main, dict(files), "Initial commit", self.person(author))
        return repo

    def person(self, nickname: str) -> Person:
        account = self.accounts[nickname]
        return Person(account.display_name, account.email)

    def _new_repo(self, workspace: str, slug: str, name: str, description: str, private: bool,
                  main: str) -> Repo:
        when = self.clock.now()
        repo = Repo(self._uuid(), workspace, slug, name, description, private, GitRepo(self.clock, main),
                    when, when)
        self.repos[repo.full_name] = repo
        return repo

    # -- access ------------------------------------------------------------------
    def whoami(self, req: FakeRequest) -> Account:
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            found = next((a for a in self.accounts.values() if value and a.token == value), None)
        elif scheme.lower() == "basic":
            user, _, password = base64.b64decode(value).decode().partition(":")
            found = next((a for a in self.accounts.values() if a.nickname == user and a.app_password
                          and a.app_password == password), None)
        else:
            found = None
        if found is None:
            raise _err(401, "Unauthorized")
        return found

    def repo_for(self, req: FakeRequest, *, write: bool = False) -> tuple[Repo, Account]:
        me = self.whoami(req)
        repo = self.repos.get(f"{req.params['workspace']}/{req.params['repo_slug']}")
        members = self.workspaces.get(req.params["workspace"], set())
        if repo is None or (repo.is_private and me.nickname not in members):
            raise _err(404, f"Repository {req.params['workspace']}/{req.params['repo_slug']} not found")
        if write and me.nickname not in members:
            raise _err(403, "You do not have write access to this repository.")
        return repo, me

    def pr_for(self, repo: Repo, req: FakeRequest) -> PullRequest:
        found = repo.prs.get(int(req.params["pull_request_id"]))
        if found is None:
            raise _err(404, "Pull request not found")
        return found

    def resolve(self, repo: Repo, ref: str) -> str:
        sha = repo.git.resolve(ref)
        if sha is None:
            raise _err(404, f"Commit not found: {ref}")
        return sha

    # -- payloads (bitbucket.yaml) -------------------------------------------------
    def account_json(self, nickname: str) -> dict[str, Any]:
        a = self.accounts[nickname]
        return {"type": "user", "uuid": a.uuid, "account_id": a.account_id, "nickname": a.nickname,
                "display_name": a.display_name,
                "links": {"self": {"href": f"{self.api}/users/{quote(a.uuid)}"},
                          "html": {"href": f"{self.web}/{quote(a.uuid)}/"},
                          "avatar": {"href": f"{self.web}/account/{a.nickname}/avatar/"}}}

    def repo_ref(self, repo: Repo) -> dict[str, Any]:
        return {"type": "repository", "full_name": repo.full_name, "name": repo.name, "uuid": repo.uuid,
                "links": {"self": {"href": f"{self.api}/repositories/{repo.full_name}"},
                          "html": {"href": f"{self.web}/{repo.full_name}"}}}

    def repo_json(self, repo: Repo) -> dict[str, Any]:
        web = f"{self.web}/{repo.full_name}"
        api = f"{self.api}/repositories/{repo.full_name}"
        return {
            "type": "repository", "uuid": repo.uuid, "full_name": repo.full_name, "name": repo.name,
            "slug": repo.slug, "description": repo.description, "scm": "git", "is_private": repo.is_private,
            "fork_policy": "no_public_forks", "has_issues": False, "has_wiki": False, "language": "",
            "size": sum(len(d) for c in repo.git.commits.values() for d in c.tree.values()),
            "created_on": iso(repo.created), "updated_on": iso(repo.updated),
            "owner": {"type": "team", "uuid": "{ws-" + repo.workspace + "}", "display_name": repo.workspace,
                      "links": {"html": {"href": f"{self.web}/{repo.workspace}/"}}},
            "workspace": {"type": "workspace", "slug": repo.workspace, "name": repo.workspace,
                          "uuid": "{ws-" + repo.workspace + "}"},
            "project": {"type": "project", "key": "PROJ", "name": "Project", "uuid": "{proj-1}"},
            "mainbranch": None if repo.git.empty else {"type": "branch", "name": repo.git.default_branch},
            "links": {"self": {"href": api}, "html": {"href": web},
                      "clone": [{"name": "https", "href": f"https://bitbucket.test/{repo.full_name}.git"},
                                {"name": "ssh", "href": f"git@bitbucket.test:{repo.full_name}.git"}],
                      "commits": {"href": f"{api}/commits"}, "pullrequests": {"href": f"{api}/pullrequests"}},
        }

    def commit_ref(self, repo: Repo, sha: str, *, short: bool = False) -> dict[str, Any]:
        return {"type": "commit", "hash": sha[:SHORT] if short else sha,
                "links": {"self": {"href": f"{self.api}/repositories/{repo.full_name}/commit/{sha}"},
                          "html": {"href": f"{self.web}/{repo.full_name}/commits/{sha}"}}}

    def commit_json(self, repo: Repo, c: CommitObj) -> dict[str, Any]:
        account = next((a.nickname for a in self.accounts.values() if a.email == c.author.email), None)
        author: dict[str, Any] = {"type": "author", "raw": f"{c.author.name} <{c.author.email}>"}
        if account:
            author["user"] = self.account_json(account)
        api = f"{self.api}/repositories/{repo.full_name}"
        return {"type": "commit", "hash": c.sha, "date": iso(c.date), "author": author, "message": c.message,
                "summary": {"raw": c.message, "markup": "markdown", "html": f"<p>{c.title}</p>"},
                "parents": [self.commit_ref(repo, p) for p in c.parents], "repository": self.repo_ref(repo),
                "links": {"self": {"href": f"{api}/commit/{c.sha}"},
                          "html": {"href": f"{self.web}/{repo.full_name}/commits/{c.sha}"},
                          "statuses": {"href": f"{api}/commit/{c.sha}/statuses"}}}

    def branch_json(self, repo: Repo, name: str) -> dict[str, Any]:
        api = f"{self.api}/repositories/{repo.full_name}"
        return {"type": "branch", "name": name,
                "target": self.commit_json(repo, repo.git.commits[repo.git.branches[name]]),
                "links": {"self": {"href": f"{api}/refs/branches/{quote(name, safe='')}"},
                          "commits": {"href": f"{api}/commits/{quote(name, safe='')}"},
                          "html": {"href": f"{self.web}/{repo.full_name}/branch/{quote(name, safe='')}"}},
                "merge_strategies": ["merge_commit", "squash", "fast_forward"],
                "default_merge_strategy": "merge_commit"}

    def diffstat_json(self, repo: Repo, d: FileDiff) -> dict[str, Any]:
        def side(path: str) -> dict[str, Any]:
            return {"type": "commit_file", "path": path, "escaped_path": path,
                    "links": {"self": {"href": f"{self.api}/repositories/{repo.full_name}/src/{path}"}}}

        return {"type": "diffstat", "status": d.status, "lines_added": d.additions, "lines_removed": d.deletions,
                "old": None if d.status == "added" else side(d.old_path),
                "new": None if d.status == "removed" else side(d.path)}

    def shas(self, repo: Repo, pr: PullRequest) -> tuple[str, str]:
        if pr.state == "OPEN":
            return repo.git.branches.get(pr.source, pr.source_sha), repo.git.branches.get(pr.destination,
                                                                                          pr.destination_sha)
        return pr.source_sha, pr.destination_sha

    def participant_json(self, p: Participant) -> dict[str, Any]:
        return {"type": "participant", "user": self.account_json(p.user), "role": p.role, "approved": p.approved,
                "state": p.state, "participated_on": iso(p.when)}

    def pr_json(self, repo: Repo, pr: PullRequest) -> dict[str, Any]:
        source, destination = self.shas(repo, pr)
        api = f"{self.api}/repositories/{repo.full_name}/pullrequests/{pr.id}"
        html = f"{self.web}/{repo.full_name}/pull-requests/{pr.id}"

        def endpoint(branch: str, sha: str) -> dict[str, Any]:
            return {"branch": {"name": branch}, "commit": self.commit_ref(repo, sha, short=True),
                    "repository": self.repo_ref(repo)}

        return {
            "type": "pullrequest", "id": pr.id, "title": pr.title, "description": pr.description,
            "summary": {"raw": pr.description, "markup": "markdown", "html": f"<p>{pr.description}</p>"},
            "state": pr.state, "draft": pr.draft, "author": self.account_json(pr.author),
            "source": endpoint(pr.source, source), "destination": endpoint(pr.destination, destination),
            "merge_commit": self.commit_ref(repo, pr.merge_sha, short=True) if pr.merge_sha else None,
            "comment_count": len(pr.comments), "task_count": 0, "close_source_branch": False,
            "closed_by": self.account_json(pr.closed_by) if pr.closed_by else None, "reason": "",
            "created_on": iso(pr.created), "updated_on": iso(pr.updated), "reviewers": [],
            "participants": [self.participant_json(p) for p in pr.participants.values()],
            "links": {"self": {"href": api}, "html": {"href": html}, "commits": {"href": f"{api}/commits"},
                      "approve": {"href": f"{api}/approve"}, "diff": {"href": f"{api}/diff"},
                      "comments": {"href": f"{api}/comments"}, "activity": {"href": f"{api}/activity"},
                      "merge": {"href": f"{api}/merge"}, "decline": {"href": f"{api}/decline"}},
        }

    def status_json(self, repo: Repo, s: BuildStatus) -> dict[str, Any]:
        api = f"{self.api}/repositories/{repo.full_name}/commit/{s.sha}"
        return {"type": "build", "uuid": s.uuid, "key": s.key, "name": s.name, "state": s.state, "url": s.url,
                "description": s.description, "refname": None, "created_on": iso(s.created),
                "updated_on": iso(s.updated),
                "links": {"self": {"href": f"{api}/statuses/build/{quote(s.key, safe='')}"},
                          "commit": {"href": api}}}

    # -- pagination ----------------------------------------------------------------
    def paginate(self, req: FakeRequest, items: list[Any], *, opaque: bool = False) -> httpx.Response:
        pagelen = req.query_int("pagelen", DEFAULT_PAGELEN)
        if not 1 <= pagelen <= MAX_PAGELEN:
            raise _err(400, f"Invalid pagelen: must be between 1 and {MAX_PAGELEN}")
        raw_page = req.query.get("page") or ("0" * 8 if opaque else "1")
        try:
            offset = int(raw_page, 16) if opaque else (int(raw_page) - 1) * pagelen
        except ValueError:
            raise _err(400, f"Invalid page: {raw_page}") from None
        chunk = items[offset: offset + pagelen]
        body: dict[str, Any] = {"pagelen": pagelen, "values": chunk}
        if not opaque:
            body.update(page=offset // pagelen + 1, size=len(items))
        if offset + pagelen < len(items):
            following = f"{offset + pagelen:08x}" if opaque else str(offset // pagelen + 2)
            body["next"] = str(req.request.url.copy_set_param("page", following))
        return json_response(200, body)

    # -- routes --------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router
        R = "/repositories/{workspace}/{repo_slug}"

        @r.route("GET", "/user")
        def current_user(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            return json_response(200, {**self.account_json(me.nickname), "username": me.nickname,
                                       "created_on": iso(self.clock.now()), "has_2fa_enabled": None,
                                       "is_staff": False, "account_status": "active"})

        @r.route("GET", "/repositories")
        def list_all(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            found = [x for x in self.repos.values() if me.nickname in self.workspaces.get(x.workspace, set())]
            return self.paginate(req, [self.repo_json(x) for x in sorted(found, key=lambda x: x.full_name)])

        @r.route("GET", "/repositories/{workspace}")
        def list_workspace(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            ws = req.params["workspace"]
            if ws not in self.workspaces:
                raise _err(404, f"Workspace {ws} not found")
            member = me.nickname in self.workspaces[ws]
            found = [x for x in self.repos.values() if x.workspace == ws and (member or not x.is_private)]
            return self.paginate(req, [self.repo_json(x) for x in sorted(found, key=lambda x: x.slug)])

        @r.route("POST", R)
        def create_repo(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            ws, slug = req.params["workspace"], req.params["repo_slug"]
            if ws not in self.workspaces:
                raise _err(404, f"Workspace {ws} not found")
            if me.nickname not in self.workspaces[ws]:
                raise _err(403, "You do not have permission to create repositories in this workspace.")
            if f"{ws}/{slug}" in self.repos:
                raise _err(400, "Repository with this Slug and Owner already exists.")
            body = req.json() or {}
            repo = self._new_repo(ws, slug, body.get("name") or slug, body.get("description") or "",
                                  bool(body.get("is_private", True)), "main")
            return json_response(200, self.repo_json(repo))

        @r.route("GET", R)
        def get_repo(req: FakeRequest) -> httpx.Response:
            return json_response(200, self.repo_json(self.repo_for(req)[0]))

        @r.route("PUT", R)
        def update_repo(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            body = req.json() or {}
            main = (body.get("mainbranch") or {}).get("name")
            if main and main not in repo.git.branches:
                raise _err(400, f"Branch {main} does not exist")
            if main:
                repo.git.default_branch = main
            for key, attr in (("description", "description"), ("is_private", "is_private")):
                if key in body:
                    setattr(repo, attr, body[key])
            if body.get("name") and body["name"] != repo.name:
                slug = body["name"].lower()
                if f"{repo.workspace}/{slug}" in self.repos:
                    raise _err(400, "Repository with this Slug and Owner already exists.")
                del self.repos[repo.full_name]
                repo.name, repo.slug = body["name"], slug
                self.repos[repo.full_name] = repo
            repo.updated = self.clock.now()
            return json_response(200, self.repo_json(repo))

        @r.route("DELETE", R)
        def delete_repo(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            del self.repos[repo.full_name]
            return empty_response(204)

        # -- refs
        @r.route("GET", R + "/refs/branches")
        def list_branches(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            return self.paginate(req, [self.branch_json(repo, b) for b in sorted(repo.git.branches)])

        @r.route("POST", R + "/refs/branches")
        def create_branch(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            body = req.json() or {}
            name = body.get("name") or ""
            if name in repo.git.branches:
                raise _err(400, f'Branch "{name}" already exists.')
            sha = repo.git.resolve((body.get("target") or {}).get("hash") or "")
            if sha is None:
                raise _err(400, "Target commit not found")
            repo.git.branches[name] = sha
            return json_response(201, self.branch_json(repo, name))

        @r.route("GET", R + "/refs/branches/{name}")
        def get_branch(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            if req.params["name"] not in repo.git.branches:
                raise _err(404, f"Branch {req.params['name']} not found")
            return json_response(200, self.branch_json(repo, req.params["name"]))

        @r.route("DELETE", R + "/refs/branches/{name}")
        def delete_branch(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            name = req.params["name"]
            if name not in repo.git.branches:
                raise _err(404, f"Branch {name} not found")
            if name == repo.git.default_branch:
                raise _err(400, "You can't delete the main branch.")
            del repo.git.branches[name]
            return empty_response(204)

        @r.route("GET", R + "/refs/tags/{name}")
        def get_tag(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            name = req.params["name"]
            if name not in repo.git.tags:
                raise _err(404, f"Tag {name} not found")
            return json_response(200, {"type": "tag", "name": name,
                                       "target": self.commit_json(repo, repo.git.commits[repo.git.tags[name]])})

        # -- source
        @r.route("GET", R + "/src/{node}/{path}")
        def get_src(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            sha = self.resolve(repo, req.params["node"])
            path = req.params["path"].strip("/")
            tree = repo.git.commits[sha].tree
            api = f"{self.api}/repositories/{repo.full_name}/src/{sha}"
            if path in tree:
                if req.query.get("format") == "meta":
                    return json_response(200, {
                        "type": "commit_file", "path": path, "escaped_path": path, "size": len(tree[path]),
                        "attributes": [], "mimetype": mimetypes.guess_type(path)[0],
                        "commit": self.commit_ref(repo, sha),
                        "links": {"self": {"href": f"{api}/{path}"}, "meta": {"href": f"{api}/{path}?format=meta"}}})
                ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
                return httpx.Response(200, content=tree[path], headers={
                    "content-type": ctype, "content-disposition": f'attachment; filename="{path.rsplit("/", 1)[-1]}"'})
            below = sorted({p[len(path) + 1:].split("/", 1)[0] for p in tree if p.startswith(path + "/")})
            if not below:
                raise _err(404, f"No such file or directory: {path}")
            if req.query.get("format") == "meta":
                return json_response(200, {"type": "commit_directory", "path": path,
                                           "commit": self.commit_ref(repo, sha),
                                           "links": {"self": {"href": f"{api}/{path}/"}}})
            entries = [{"type": "commit_file" if f"{path}/{n}" in tree else "commit_directory",
                        "path": f"{path}/{n}", "commit": self.commit_ref(repo, sha)} for n in below]
            return self.paginate(req, entries)

        @r.route("POST", R + "/src")
        def upload(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req, write=True)
            meta, files = _form(req.request)
            git = repo.git
            branch = meta.get("branch") or git.default_branch
            parents = [p for p in (meta.get("parents") or "").split(",") if p]
            tip = git.branches.get(branch)
            if parents and tip is not None and git.resolve(parents[0]) != tip:
                raise _err(409, "Parent is not the current head of the branch",
                           f"{branch} is at {tip}, not {parents[0]}")
            base = tip if tip is not None else (git.resolve(parents[0]) if parents
                                                else git.branches.get(git.default_branch))
            tree = dict(git.commits[base].tree) if base else {}
            for path in (meta.get("files") or "").split(","):
                if path.strip("/") and path.strip("/") not in files:
                    tree.pop(path.strip("/"), None)
            tree.update(files)
            author = self.person(me.nickname)
            if meta.get("author"):
                name, _, email = meta["author"].partition("<")
                author = Person(name.strip(), email.rstrip(">").strip())
            made = git.commit(tree, [base] if base else [], meta.get("message") or "Edited online with Bitbucket",
                              author, self.person(me.nickname))
            if git.empty:
                git.default_branch = branch
            git.branches[branch] = made.sha
            repo.updated = self.clock.now()
            return empty_response(200, {"Location": f"{self.api}/repositories/{repo.full_name}/commit/{made.sha}"})

        # -- commits
        def commits(req: FakeRequest, revision: str | None) -> httpx.Response:
            repo, _ = self.repo_for(req)
            git = repo.git
            heads = [self.resolve(repo, revision)] if revision else list(git.branches.values())
            reach: set[str] = set()
            for head in heads:
                reach |= git.ancestors(head)
            if req.query.get("exclude"):
                reach -= git.ancestors(self.resolve(repo, req.query["exclude"]))
            found = sorted((git.commits[s] for s in reach), key=lambda c: (c.date, c.sha), reverse=True)
            if req.query.get("path"):
                found = [c for c in found if git.touches(c, req.query["path"].strip("/"))]
            return self.paginate(req, [self.commit_json(repo, c) for c in found], opaque=True)

        r.add("GET", R + "/commits", lambda req: commits(req, None))
        r.add("GET", R + "/commits/{revision}", lambda req: commits(req, req.params["revision"]))

        @r.route("GET", R + "/commit/{node}")
        def get_commit(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            return json_response(200, self.commit_json(repo, repo.git.commits[self.resolve(repo, req.params["node"])]))

        @r.route("GET", R + "/diffstat/{spec}")
        def diffstat(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            spec = req.params["spec"]
            if ".." in spec:
                source, _, destination = spec.partition("..")
                changes = repo.git.changes_between(self.resolve(repo, destination), self.resolve(repo, source))
            else:
                c = repo.git.commits[self.resolve(repo, spec)]
                changes = repo.git.diff(repo.git.commits[c.parents[0]].tree if c.parents else {}, c.tree)
            return self.paginate(req, [self.diffstat_json(repo, d) for d in changes])

        # -- pull requests
        @r.route("GET", R + "/pullrequests")
        def list_prs(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            states = {req.query.get("state") or "OPEN"}
            if req.query.get("q"):
                # Only the BBQL this fake needs: `state="X" OR state="Y" ...`.
                states = {part.strip().removeprefix("state=").strip('"') for part in req.query["q"].split(" OR ")}
            found = [p for p in sorted(repo.prs.values(), key=lambda p: -p.id) if p.state in states]
            return self.paginate(req, [self.pr_json(repo, p) for p in found])

        @r.route("POST", R + "/pullrequests")
        def create_pr(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            body = req.json() or {}
            source = ((body.get("source") or {}).get("branch") or {}).get("name") or ""
            destination = (((body.get("destination") or {}).get("branch") or {}).get("name")
                           or repo.git.default_branch)
            if not body.get("title"):
                raise _err(400, "title: This field is required.")
            if source not in repo.git.branches:
                raise _err(400, f"source: Branch {source} not found")
            if destination not in repo.git.branches:
                raise _err(400, f"destination: Branch {destination} not found")
            if not repo.git.log(repo.git.branches[source], exclude=repo.git.branches[destination]):
                raise _err(400, "There are no changes to be pulled")
            when = self.clock.now()
            pr = PullRequest(repo.next_pr, body["title"], body.get("description") or "", source, destination,
                             me.nickname, when, when, draft=bool(body.get("draft")))
            repo.next_pr += 1
            repo.prs[pr.id] = pr
            return json_response(201, self.pr_json(repo, pr), {
                "Location": f"{self.api}/repositories/{repo.full_name}/pullrequests/{pr.id}"})

        @r.route("GET", R + "/pullrequests/{pull_request_id}")
        def get_pr(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            return json_response(200, self.pr_json(repo, self.pr_for(repo, req)))

        @r.route("PUT", R + "/pullrequests/{pull_request_id}")
        def update_pr(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            pr = self.pr_for(repo, req)
            if pr.state != "OPEN":
                raise _err(400, "You can't update a pull request that isn't open")
            body = req.json() or {}
            destination = ((body.get("destination") or {}).get("branch") or {}).get("name")
            if destination and destination not in repo.git.branches:
                raise _err(400, f"destination: Branch {destination} not found")
            pr.title = body.get("title", pr.title)
            pr.description = body.get("description", pr.description)
            pr.destination = destination or pr.destination
            pr.updated = self.clock.now()
            return json_response(200, self.pr_json(repo, pr))

        @r.route("POST", R + "/pullrequests/{pull_request_id}/decline")
        def decline(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            pr = self.pr_for(repo, req)
            if pr.state != "OPEN":
                raise _err(400, "You can't decline a pull request that isn't open")
            pr.source_sha, pr.destination_sha = self.shas(repo, pr)
            pr.state, pr.closed_by, pr.updated = "DECLINED", me.nickname, self.clock.now()
            return json_response(200, self.pr_json(repo, pr))

        @r.route("POST", R + "/pullrequests/{pull_request_id}/merge")
        def merge(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req, write=True)
            pr = self.pr_for(repo, req)
            if pr.state != "OPEN":
                raise _err(400, "You can't merge a pull request that isn't open")
            body = req.json() or {}
            strategy = body.get("merge_strategy") or "merge_commit"
            source, destination = self.shas(repo, pr)
            message = body.get("message") or f"Merged in {pr.source} (pull request #{pr.id})\n\n{pr.title}"
            style = {"merge_commit": "merge", "squash": "squash", "fast_forward": "ff"}[strategy]
            try:
                new_tip = repo.git.merge(destination, source, style, message, self.person(me.nickname))  # type: ignore[arg-type]
            except MergeConflict as exc:
                if style == "ff":
                    raise _err(400, "Unable to fast forward: the destination has commits the source lacks") \
                        from None
                raise _err(400, "You can't merge until you resolve all merge conflicts.", str(exc)) from None
            repo.git.branches[pr.destination] = new_tip
            pr.source_sha, pr.destination_sha = source, destination
            pr.state, pr.merge_sha, pr.closed_by, pr.updated = "MERGED", new_tip, me.nickname, self.clock.now()
            if self.slow_merges > 0:
                self.slow_merges -= 1
                task = f"{self.api}/repositories/{repo.full_name}/pullrequests/{pr.id}/merge/task-status/1"
                return json_response(202, {"task_status": "PENDING", "links": {"self": {"href": task}}},
                                     {"Location": task})
            return json_response(200, self.pr_json(repo, pr))

        def review(req: FakeRequest, state: Literal["approved", "changes_requested"]) -> httpx.Response:
            repo, me = self.repo_for(req)
            pr = self.pr_for(repo, req)
            if me.nickname == pr.author:
                what = "approve" if state == "approved" else "request changes on"
                raise _err(400, f"You can't {what} your own pull request.")
            if pr.state != "OPEN":
                raise _err(400, "This pull request is not open")
            part = Participant(me.nickname, "PARTICIPANT", state == "approved", state, self.clock.now())
            pr.participants[me.nickname] = part
            return json_response(200, self.participant_json(part))

        r.add("POST", R + "/pullrequests/{pull_request_id}/approve", lambda req: review(req, "approved"))
        r.add("POST", R + "/pullrequests/{pull_request_id}/request-changes",
              lambda req: review(req, "changes_requested"))

        @r.route("DELETE", R + "/pullrequests/{pull_request_id}/approve")
        def unapprove(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            pr = self.pr_for(repo, req)
            pr.participants.pop(me.nickname, None)
            return empty_response(204)

        @r.route("GET", R + "/pullrequests/{pull_request_id}/comments")
        def list_comments(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            return self.paginate(req, list(self.pr_for(repo, req).comments))

        @r.route("POST", R + "/pullrequests/{pull_request_id}/comments")
        def add_comment(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            pr = self.pr_for(repo, req)
            raw = ((req.json() or {}).get("content") or {}).get("raw") or ""
            if not raw.strip():
                raise _err(400, "content.raw: This field is required.")
            self._ids += 1
            html = f"{self.web}/{repo.full_name}/pull-requests/{pr.id}#comment-{self._ids}"
            when = iso(self.clock.now())
            comment = {"type": "pullrequest_comment", "id": self._ids, "content": {
                "type": "rendered", "raw": raw, "markup": "markdown", "html": f"<p>{raw}</p>"},
                "user": self.account_json(me.nickname), "created_on": when, "updated_on": when, "deleted": False,
                "pullrequest": {"type": "pullrequest", "id": pr.id, "title": pr.title},
                "links": {"self": {"href": f"{self.api}/repositories/{repo.full_name}/pullrequests/{pr.id}"
                                           f"/comments/{self._ids}"}, "html": {"href": html}}}
            pr.comments.append(comment)
            if me.nickname not in pr.participants:
                pr.participants[me.nickname] = Participant(me.nickname, "PARTICIPANT", False, None, self.clock.now())
            return json_response(201, comment)

        # -- statuses
        @r.route("POST", R + "/commit/{node}/statuses/build")
        def set_status(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            sha = self.resolve(repo, req.params["node"])
            body = req.json() or {}
            for required in ("key", "state", "url"):
                if not body.get(required):
                    raise _err(400, f"{required}: This field is required.")
            when = self.clock.now()
            existing = next((s for s in repo.statuses if s.sha == sha and s.key == body["key"]), None)
            if existing is None:
                existing = BuildStatus(self._uuid(), sha, body["key"], body.get("name") or body["key"],
                                       body["state"], body["url"], body.get("description") or "", when, when)
                repo.statuses.append(existing)
            else:
                existing.state, existing.url, existing.updated = body["state"], body["url"], when
                existing.name = body.get("name") or existing.name
                existing.description = body.get("description") or existing.description
            return json_response(201, self.status_json(repo, existing))

        @r.route("GET", R + "/commit/{node}/statuses")
        def list_statuses(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            sha = self.resolve(repo, req.params["node"])
            return self.paginate(req, [self.status_json(repo, s) for s in repo.statuses if s.sha == sha])


def _form(request: httpx.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """(meta fields, files by repository path) of a ``POST /src`` body, multipart or urlencoded."""
    ctype = request.headers.get("content-type", "")
    meta: dict[str, str] = {}
    files: dict[str, bytes] = {}
    names = ("message", "author", "parents", "files", "branch")
    if ctype.startswith("multipart/form-data"):
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + request.content)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(data, bytes):
                raise _err(400, "Malformed multipart body")
            if part.get_filename() is None and name in names:
                meta[name] = data.decode()
            else:
                files[name.strip("/")] = data
    elif ctype.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(request.content.decode(), keep_blank_values=True):
            if name in names:
                meta[name] = value
            else:
                files[name.strip("/")] = value.encode()
    else:
        raise _err(400, "Unsupported Content-Type; use multipart/form-data or application/x-www-form-urlencoded")
    return meta, files
