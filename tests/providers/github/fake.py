"""A stateful in-memory GitHub REST API for tests: users and organizations, repositories, branches
and refs, contents, commits, compare, merges, pull requests (real three-way merges with the merge,
squash and rebase methods), reviews, commit statuses, rate limits and GitHub App installations.

Every payload is built from GitHub's own documented examples (``testdata/*.json``, taken from the
``components/examples`` of ``github.json``) with the fields that matter replaced, and the tests run
the fake behind a spec-validating transport that checks each request *and* each answer against
``github.json``. Behaviours follow GitHub's: 401 "Bad credentials", 404 for what the caller cannot
see, 422 ``already_exists`` for a repository name in use, 422 "Reference already exists", 422
'"sha" wasn't supplied' and 409 for a stale sha on the contents API, 409 "Git Repository is empty.",
405 for a pull request that cannot be merged, 422 for approving one's own pull request, Link
pagination with ``page``/``per_page`` (at most 100), and ``x-ratelimit-*`` headers on every answer
(a 403 with ``x-ratelimit-remaining: 0`` once the window is used up).

Commit time is a counter (one second per commit) and wall time (``now``, for tokens and rate-limit
resets) is set by the test, so shas, timestamps and tokens are deterministic.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from tests.providers.gitlab.gitmodel import (
    Clock,
    CommitObj,
    FileDiff,
    GitRepo,
    MergeConflict,
    Person,
    blob_sha,
)
from tests.support.fake_upstream import (
    FakeRequest,
    HttpError,
    Router,
    empty_response,
    json_response,
    link_paginate,
)

TESTDATA = Path(__file__).parent / "testdata"
DOCS = "https://docs.github.com/rest"
MAX_PAGE = 100
LARGE_FILE = 1024 * 1024
START = 1_717_430_000.0  # 2024-06-03T15:53:20Z


@cache
def _template(name: str) -> Any:
    return json.loads((TESTDATA / f"{name}.json").read_text())


def template(name: str) -> Any:
    return copy.deepcopy(_template(name))


def swap(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """``value`` with each pair's first string replaced by the second in every string inside it."""
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: swap(v, pairs) for k, v in value.items()}
    if isinstance(value, list):
        return [swap(v, pairs) for v in value]
    return value


def iso(when: datetime | float) -> str:
    moment = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wrap64(data: bytes) -> str:
    """Base64 in lines of 60 characters, as the contents API sends it."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def node_id(kind: str, number: int | str) -> str:
    return base64.b64encode(f"{kind}:{number}".encode()).decode()


def error(status: int, message: str, **extra: Any) -> HttpError:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, **extra}
    if status != 422:
        body.setdefault("status", str(status))
    return HttpError(status, body)


@dataclass
class User:
    id: int
    login: str
    token: str | None
    email: str
    name: str
    is_org: bool = False
    members: set[str] = field(default_factory=set)
    default_branch: str = "main"

    @property
    def person(self) -> Person:
        return Person(self.name, self.email)


@dataclass
class Installation:
    id: int
    app_id: str
    public_key: str
    account: str


@dataclass
class Pull:
    number: int
    id: int
    title: str
    body: str | None
    head: str
    base: str
    user: str
    draft: bool
    created: datetime
    updated: datetime
    state: str = "open"
    merged: bool = False
    merge_sha: str | None = None
    merged_at: datetime | None = None
    merged_by: str | None = None
    closed_at: datetime | None = None
    head_sha: str = ""
    base_sha: str = ""


@dataclass
class ReviewObj:
    id: int
    user: str
    state: str
    body: str
    commit_id: str
    submitted: datetime


@dataclass
class StatusObj:
    id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created: datetime


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    description: str | None
    private: bool
    git: GitRepo
    created: datetime
    updated: datetime
    archived: bool = False
    pulls: dict[int, Pull] = field(default_factory=dict)
    reviews: dict[int, list[ReviewObj]] = field(default_factory=dict)
    statuses: list[StatusObj] = field(default_factory=list)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class GitHubFake:
    """An in-memory GitHub whose REST API lives at ``api`` (``https://api.github.com``, or
    ``https://HOST/api/v3`` for Enterprise Server) and whose web pages at ``web``."""

    def __init__(self, *, api: str = "https://api.github.com", web: str = "https://github.com") -> None:
        self.api = api.rstrip("/")
        self.web = web.rstrip("/")
        self.host = urlsplit(self.web).hostname or "github.com"
        prefix = urlsplit(self.api).path.rstrip("/")
        self.clock = Clock()
        self.now = START
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.installations: dict[int, Installation] = {}
        self.installation_tokens: dict[str, tuple[int, float]] = {}
        self.tokens_issued = 0
        self.rate_limit = 5000
        self.rate_remaining = 5000
        self.rate_reset = int(START) + 3600
        self.requests: list[httpx.Request] = []
        self._ids = 1000
        self.me: str | None = None
        self.installation: Installation | None = None
        self._bases = [
            ("https://api.github.com", self.api),
            ("https://github.com", self.web),
            ("git@github.com:", f"git@{self.host}:"),
            ("git:github.com/", f"git:{self.host}/"),
        ]
        self.router = Router(
            prefix=prefix,
            greedy=("path", "basehead"),
            not_found_body=lambda path: {"message": "Not Found", "documentation_url": DOCS, "status": "404"},
        )
        self._routes()

    # -- setup -------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_user(self, login: str, token: str, *, default_branch: str = "main") -> User:
        user = User(
            self.next_id(),
            login,
            token,
            f"{login}@users.example",
            login.capitalize(),
            default_branch=default_branch,
        )
        self.users[login.lower()] = user
        return user

    def add_org(self, login: str, members: list[str]) -> User:
        org = User(
            self.next_id(),
            login,
            None,
            f"{login}@orgs.example",
            login.capitalize(),
            is_org=True,
            members={m.lower() for m in members},
        )
        self.users[login.lower()] = org
        return org

    def add_installation(self, installation_id: int, app_id: str, public_key: str, account: str) -> None:
        self.installations[installation_id] = Installation(installation_id, app_id, public_key, account)

    def seed_repo(
        self,
        owner: str,
        name: str,
        files: dict[str, str] | None = None,
        *,
        private: bool = False,
        description: str | None = None,
    ) -> Repo:
        """Create a repository directly (no request), with one commit holding ``files``."""
        repo = self._new_repo(owner, name, description, private)
        if files is not None:
            repo.git.push(repo.git.default_branch, dict(files), "Initial commit", self.user(owner).person)
        return repo

    def user(self, login: str) -> User:
        return self.users[login.lower()]

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def _new_repo(self, owner: str, name: str, description: str | None, private: bool) -> Repo:
        when = self.clock.now()
        git = GitRepo(self.clock, default_branch=self.user(owner).default_branch)
        repo = Repo(self.next_id(), self.user(owner).login, name, description, private, git, when, when)
        self.repos[repo.full_name.lower()] = repo
        return repo

    # -- the transport -------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.me, self.installation = None, None
        path = request.url.path
        exchanging = (
            request.method == "POST" and path.endswith("/access_tokens") and "/app/installations/" in path
        )
        if not exchanging:
            problem = self._authenticate(request)
            if problem is not None:
                return problem
            if self.rate_remaining <= 0:
                return self._rate_headers(
                    json_response(
                        403,
                        {
                            "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support "
                            "for help, please include the request ID.",
                            "documentation_url": DOCS + "/overview/rate-limits-for-the-rest-api",
                            "status": "403",
                        },
                    )
                )
            self.rate_remaining -= 1
        return self._rate_headers(self.router(request))

    def _authenticate(self, request: httpx.Request) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            return json_response(
                401, {"message": "Requires authentication", "documentation_url": DOCS, "status": "401"}
            )
        issued = self.installation_tokens.get(token)
        if issued is not None:
            installation_id, expires = issued
            if self.now < expires:
                self.installation = self.installations[installation_id]
                return None
        for user in self.users.values():
            if user.token is not None and user.token == token:
                self.me = user.login
                return None
        return json_response(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})

    def _rate_headers(self, response: httpx.Response) -> httpx.Response:
        if "x-ratelimit-limit" not in response.headers:
            response.headers["x-ratelimit-limit"] = str(self.rate_limit)
            response.headers["x-ratelimit-remaining"] = str(max(0, self.rate_remaining))
            response.headers["x-ratelimit-used"] = str(self.rate_limit - max(0, self.rate_remaining))
            response.headers["x-ratelimit-reset"] = str(self.rate_reset)
            response.headers["x-ratelimit-resource"] = "core"
        response.headers["date"] = datetime.fromtimestamp(self.now, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
        return response

    # -- access --------------------------------------------------------------------
    def can_read(self, repo: Repo) -> bool:
        return not repo.private or self.can_write(repo)

    def can_write(self, repo: Repo) -> bool:
        if self.installation is not None:
            return repo.owner.lower() == self.installation.account.lower()
        if self.me is None:
            return False
        owner = self.user(repo.owner)
        return owner.login.lower() == self.me.lower() or self.me.lower() in owner.members

    def repo_for(self, req: FakeRequest, *, write: bool = False) -> Repo:
        repo = self.repos.get(f"{req.params['owner']}/{req.params['repo']}".lower())
        if repo is None or not self.can_read(repo):
            raise error(404, "Not Found")
        if write and not self.can_write(repo):
            raise error(403, "Must have push access to repository")
        return repo

    def acting(self) -> User:
        """Who a write is recorded as (an installation acts as its app's bot user)."""
        if self.me is not None:
            return self.user(self.me)
        assert self.installation is not None
        bot = f"app-{self.installation.app_id}[bot]"
        if bot.lower() not in self.users:
            user = self.add_user(bot, "")
            user.token = None
        return self.user(bot)

    def resolve(self, repo: Repo, ref: str | None) -> str:
        sha = repo.git.resolve(ref)
        if sha is None:
            raise error(404, f"No commit found for SHA: {ref}")
        return sha

    def login_of(self, person: Person) -> str | None:
        return next((u.login for u in self.users.values() if u.email == person.email), None)

    # -- payloads (github.json schemas, from its examples) ----------------------------
    def simple_user(self, login: str) -> dict[str, Any]:
        u = self.user(login)
        data = swap(template("full-repository")["owner"], [("octocat", u.login), *self._bases])
        data.update(
            id=u.id,
            node_id=node_id("User", u.id),
            type="Organization" if u.is_org else "User",
            site_admin=False,
        )
        return data

    def user_json(self, login: str, *, private: bool) -> dict[str, Any]:
        u = self.user(login)
        data = swap(template("user" if private else "public-user"), [("octocat", u.login), *self._bases])
        data.update(
            id=u.id,
            node_id=node_id("User", u.id),
            type="Organization" if u.is_org else "User",
            name=u.name,
            email=u.email,
            company=None,
            blog="",
            location=None,
            bio=None,
            twitter_username=None,
            created_at=iso(START - 86400),
            updated_at=iso(START - 86400),
            user_view_type="private" if private else "public",
        )
        if u.is_org:
            data["hireable"] = None
        return data

    def repo_json(self, repo: Repo, kind: str = "full") -> dict[str, Any]:
        source = {
            "full": "full-repository",
            "repository": "repository-items",
            "minimal": "minimal-repository-items",
        }[kind]
        raw = template(source)
        if isinstance(raw, list):
            raw = raw[0]
        for key in (
            "template_repository",
            "parent",
            "source",
            "organization",
            "temp_clone_token",
            "security_and_analysis",
        ):
            raw.pop(key, None)
        data = swap(raw, [("octocat/Hello-World", repo.full_name), ("Hello-World", repo.name), *self._bases])
        data["owner"] = self.simple_user(repo.owner)
        pushed = max((c.date for c in repo.git.commits.values()), default=repo.created)
        writable = self.can_write(repo)
        data.update(
            id=repo.id,
            node_id=node_id("Repository", repo.id),
            name=repo.name,
            full_name=repo.full_name,
            private=repo.private,
            visibility="private" if repo.private else "public",
            description=repo.description,
            fork=False,
            homepage=None,
            mirror_url=None,
            license=None,
            language=None,
            default_branch=repo.git.default_branch,
            archived=repo.archived,
            disabled=False,
            is_template=False,
            topics=[],
            size=len(repo.git.commits),
            forks_count=0,
            stargazers_count=0,
            watchers_count=0,
            open_issues_count=sum(1 for p in repo.pulls.values() if p.state == "open"),
            created_at=iso(repo.created),
            updated_at=iso(repo.updated),
            pushed_at=iso(pushed),
            permissions={
                "admin": writable,
                "maintain": writable,
                "push": writable,
                "triage": writable,
                "pull": True,
            },
        )
        for key in ("forks", "watchers"):
            if key in data:
                data[key] = 0
        if "open_issues" in data:
            data["open_issues"] = data["open_issues_count"]
        if kind == "full":
            data.update(subscribers_count=1, network_count=0, has_discussions=False)
        return data

    def commit_json(
        self, repo: Repo, c: CommitObj, *, files: bool = True, files_limit: int | None = None
    ) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        data = swap(template("commit"), [("octocat/Hello-World", repo.full_name), *self._bases])
        parent_tree = repo.git.commits[c.parents[0]].tree if c.parents else {}
        changes = repo.git.diff(parent_tree, c.tree)
        author, committer = self.login_of(c.author), self.login_of(c.committer)
        data.update(
            sha=c.sha,
            node_id=node_id("Commit", c.sha),
            url=f"{api}/commits/{c.sha}",
            html_url=f"{self.web}/{repo.full_name}/commit/{c.sha}",
            comments_url=f"{api}/commits/{c.sha}/comments",
            commit={
                "url": f"{api}/git/commits/{c.sha}",
                "author": {"name": c.author.name, "email": c.author.email, "date": iso(c.date)},
                "committer": {"name": c.committer.name, "email": c.committer.email, "date": iso(c.date)},
                "message": c.message,
                "comment_count": 0,
                "tree": {
                    "sha": hashlib.sha1(c.sha.encode()).hexdigest(),
                    "url": f"{api}/git/trees/{hashlib.sha1(c.sha.encode()).hexdigest()}",
                },
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            author=self.simple_user(author) if author else None,
            committer=self.simple_user(committer) if committer else None,
            parents=[
                {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{self.web}/{repo.full_name}/commit/{p}"}
                for p in c.parents
            ],
            stats={
                "additions": sum(d.additions for d in changes),
                "deletions": sum(d.deletions for d in changes),
                "total": sum(d.additions + d.deletions for d in changes),
            },
        )
        if files:
            shown = changes if files_limit is None else changes[:files_limit]
            data["files"] = [self.diff_entry(repo, d, c.sha, c.tree) for d in shown]
        else:
            data.pop("files", None)
            data.pop("stats", None)
        return data

    def diff_entry(self, repo: Repo, d: FileDiff, head: str, tree: dict[str, bytes]) -> dict[str, Any]:
        content = tree.get(d.path)
        entry: dict[str, Any] = {
            "sha": blob_sha(content) if content is not None else "0" * 40,
            "filename": d.path,
            "status": d.status,
            "additions": d.additions,
            "deletions": d.deletions,
            "changes": d.additions + d.deletions,
            "blob_url": f"{self.web}/{repo.full_name}/blob/{head}/{d.path}",
            "raw_url": f"{self.web}/{repo.full_name}/raw/{head}/{d.path}",
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{d.path}?ref={head}",
        }
        if d.patch:
            entry["patch"] = d.patch
        return entry

    def short_branch(self, repo: Repo, name: str) -> dict[str, Any]:
        sha = repo.git.branches[name]
        return {
            "name": name,
            "commit": {"sha": sha, "url": f"{self.api}/repos/{repo.full_name}/commits/{sha}"},
            "protected": False,
        }

    def branch_json(self, repo: Repo, name: str) -> dict[str, Any]:
        data = swap(template("branch"), [("octocat/Hello-World", repo.full_name), *self._bases])
        api = f"{self.api}/repos/{repo.full_name}/branches/{name}"
        data.update(
            name=name,
            commit=self.commit_json(repo, repo.git.commits[repo.git.branches[name]], files=False),
            _links={"html": f"{self.web}/{repo.full_name}/tree/{name}", "self": api},
            protected=False,
            protection_url=f"{api}/protection",
            protection={
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
            },
        )
        return data

    def content_json(self, repo: Repo, ref: str, path: str, data: bytes) -> dict[str, Any]:
        sha = blob_sha(data)
        api = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.web}/{repo.full_name}/blob/{ref}/{path}"
        large = len(data) > LARGE_FILE
        encoded = "" if large or not data else wrap64(data)
        return {
            "type": "file",
            "encoding": "none" if large else "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "" if large else encoded,
            "sha": sha,
            "url": f"{api}/contents/{path}?ref={ref}",
            "git_url": f"{api}/git/blobs/{sha}",
            "html_url": html,
            "download_url": f"https://raw.example/{repo.full_name}/{ref}/{path}",
            "_links": {
                "self": f"{api}/contents/{path}?ref={ref}",
                "git": f"{api}/git/blobs/{sha}",
                "html": html,
            },
        }

    def dir_json(self, repo: Repo, ref: str, tree: dict[str, bytes], prefix: str) -> list[dict[str, Any]]:
        api = f"{self.api}/repos/{repo.full_name}"
        entries: dict[str, bool] = {}
        for path in tree:
            if path.startswith(prefix + "/" if prefix else ""):
                rest = path[len(prefix) + 1 :] if prefix else path
                head, _, tail = rest.partition("/")
                entries[head] = entries.get(head, False) or bool(tail)
        out = []
        for name, is_dir in sorted(entries.items()):
            full = f"{prefix}/{name}" if prefix else name
            sha = hashlib.sha1(full.encode()).hexdigest() if is_dir else blob_sha(tree[full])
            out.append(
                {
                    "type": "dir" if is_dir else "file",
                    "size": 0 if is_dir else len(tree[full]),
                    "name": name,
                    "path": full,
                    "sha": sha,
                    "url": f"{api}/contents/{full}?ref={ref}",
                    "git_url": f"{api}/git/trees/{sha}" if is_dir else f"{api}/git/blobs/{sha}",
                    "html_url": f"{self.web}/{repo.full_name}/tree/{ref}/{full}",
                    "download_url": None if is_dir else f"https://raw.example/{repo.full_name}/{ref}/{full}",
                    "_links": {
                        "self": f"{api}/contents/{full}?ref={ref}",
                        "git": f"{api}/git/blobs/{sha}",
                        "html": f"{self.web}/{repo.full_name}/tree/{ref}/{full}",
                    },
                }
            )
        return out

    def file_commit_json(self, repo: Repo, branch: str, path: str, c: CommitObj) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        content = self.content_json(repo, branch, path, c.tree[path])
        for key in ("content", "encoding"):
            content.pop(key)
        return {
            "content": content,
            "commit": {
                "sha": c.sha,
                "node_id": node_id("Commit", c.sha),
                "url": f"{api}/git/commits/{c.sha}",
                "html_url": f"{self.web}/{repo.full_name}/commit/{c.sha}",
                "author": {"date": iso(c.date), "name": c.author.name, "email": c.author.email},
                "committer": {"date": iso(c.date), "name": c.committer.name, "email": c.committer.email},
                "message": c.message,
                "tree": {"url": f"{api}/git/trees/{c.sha}", "sha": hashlib.sha1(c.sha.encode()).hexdigest()},
                "parents": [
                    {
                        "url": f"{api}/git/commits/{p}",
                        "html_url": f"{self.web}/{repo.full_name}/commit/{p}",
                        "sha": p,
                    }
                    for p in c.parents
                ],
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
        }

    def pull_shas(self, repo: Repo, pr: Pull) -> tuple[str, str]:
        if pr.state == "open":
            return repo.git.branches.get(pr.head, pr.head_sha), repo.git.branches.get(pr.base, pr.base_sha)
        return pr.head_sha, pr.base_sha

    def pull_json(self, repo: Repo, pr: Pull, *, simple: bool = False) -> dict[str, Any]:
        raw = template("pull-request-simple-items")[0] if simple else template("pull-request")
        data = swap(raw, [("octocat/Hello-World", repo.full_name), ("1347", str(pr.number)), *self._bases])
        head_sha, base_sha = self.pull_shas(repo, pr)

        def side(ref: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{repo.owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "user": self.simple_user(repo.owner),
                "repo": self.repo_json(repo, "repository"),
            }

        data.update(
            id=pr.id,
            node_id=node_id("PullRequest", pr.id),
            number=pr.number,
            state=pr.state,
            locked=False,
            title=pr.title,
            user=self.simple_user(pr.user),
            body=pr.body,
            labels=[],
            milestone=None,
            active_lock_reason=None,
            created_at=iso(pr.created),
            updated_at=iso(pr.updated),
            closed_at=iso(pr.closed_at) if pr.closed_at else None,
            merged_at=iso(pr.merged_at) if pr.merged_at else None,
            merge_commit_sha=pr.merge_sha,
            assignee=None,
            assignees=[],
            requested_reviewers=[],
            requested_teams=[],
            head=side(pr.head, head_sha),
            base=side(pr.base, base_sha),
            author_association="OWNER" if pr.user.lower() == repo.owner.lower() else "CONTRIBUTOR",
            auto_merge=None,
            draft=pr.draft,
        )
        if not simple:
            mergeable = repo.git.mergeable(base_sha, head_sha) if pr.state == "open" else None
            changes = repo.git.changes_between(base_sha, head_sha) if head_sha else []
            data.update(
                merged=pr.merged,
                mergeable=mergeable,
                rebaseable=mergeable,
                mergeable_state="clean" if mergeable else ("dirty" if mergeable is False else "unknown"),
                merged_by=self.simple_user(pr.merged_by) if pr.merged_by else None,
                comments=0,
                review_comments=0,
                maintainer_can_modify=False,
                commits=len(repo.git.log(head_sha, exclude=base_sha)) if head_sha else 0,
                additions=sum(c.additions for c in changes),
                deletions=sum(c.deletions for c in changes),
                changed_files=len(changes),
            )
        return data

    def review_json(self, repo: Repo, pr: Pull, r: ReviewObj) -> dict[str, Any]:
        html = f"{self.web}/{repo.full_name}/pull/{pr.number}"
        data = swap(template("pull-request-review"), [("octocat/Hello-World", repo.full_name), *self._bases])
        data.update(
            id=r.id,
            node_id=node_id("PullRequestReview", r.id),
            user=self.simple_user(r.user),
            body=r.body,
            state=r.state,
            html_url=f"{html}#pullrequestreview-{r.id}",
            pull_request_url=f"{self.api}/repos/{repo.full_name}/pulls/{pr.number}",
            _links={
                "html": {"href": f"{html}#pullrequestreview-{r.id}"},
                "pull_request": {"href": f"{self.api}/repos/{repo.full_name}/pulls/{pr.number}"},
            },
            submitted_at=iso(r.submitted),
            commit_id=r.commit_id,
            author_association="OWNER" if r.user.lower() == repo.owner.lower() else "NONE",
        )
        return data

    def status_json(self, repo: Repo, s: StatusObj) -> dict[str, Any]:
        data = swap(template("status"), [("octocat/Hello-World", repo.full_name), *self._bases])
        data.update(
            url=f"{self.api}/repos/{repo.full_name}/statuses/{s.sha}",
            id=s.id,
            node_id=node_id("StatusContext", s.id),
            state=s.state,
            description=s.description,
            target_url=s.target_url,
            context=s.context,
            created_at=iso(s.created),
            updated_at=iso(s.created),
            creator=self.simple_user(s.creator),
        )
        return data

    def comparison_json(
        self, repo: Repo, base_ref: str, head_ref: str, base: str, head: str
    ) -> dict[str, Any]:
        git = repo.git
        ahead = list(reversed(git.log(head, exclude=base)))
        behind = git.log(base, exclude=head)
        mb = git.merge_base(base, head)
        status = (
            "identical"
            if not ahead and not behind
            else "ahead"
            if not behind
            else "behind"
            if not ahead
            else "diverged"
        )
        spec = f"{base_ref}...{head_ref}"
        changes = git.diff(git.commits[mb].tree if mb else {}, git.commits[head].tree)
        return {
            "url": f"{self.api}/repos/{repo.full_name}/compare/{spec}",
            "html_url": f"{self.web}/{repo.full_name}/compare/{spec}",
            "permalink_url": f"{self.web}/{repo.full_name}/compare/{repo.owner}:{base}...{repo.owner}:{head}",
            "diff_url": f"{self.web}/{repo.full_name}/compare/{spec}.diff",
            "patch_url": f"{self.web}/{repo.full_name}/compare/{spec}.patch",
            "base_commit": self.commit_json(repo, git.commits[base], files=False),
            "merge_base_commit": self.commit_json(repo, git.commits[mb or base], files=False),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [self.commit_json(repo, c, files=False) for c in ahead],
            "files": [self.diff_entry(repo, d, head, git.commits[head].tree) for d in changes],
        }

    # -- routes --------------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router

        @r.route("GET", "/rate_limit")
        def rate_limit(req: FakeRequest) -> httpx.Response:
            data = template("rate-limit-overview")
            core = {
                "limit": self.rate_limit,
                "used": self.rate_limit - self.rate_remaining,
                "remaining": self.rate_remaining,
                "reset": self.rate_reset,
            }
            data["resources"]["core"] = core
            data["rate"] = dict(core)
            return json_response(200, data)

        @r.route("GET", "/user")
        def me(req: FakeRequest) -> httpx.Response:
            if self.me is None:
                raise error(403, "Resource not accessible by integration")
            return json_response(200, self.user_json(self.me, private=True))

        @r.route("GET", "/users/{username}")
        def user(req: FakeRequest) -> httpx.Response:
            if req.params["username"].lower() not in self.users:
                raise error(404, "Not Found")
            return json_response(200, self.user_json(req.params["username"], private=False))

        @r.route("POST", "/app/installations/{installation_id}/access_tokens")
        def access_token(req: FakeRequest) -> httpx.Response:
            installation = self.installations.get(int(req.params["installation_id"]))
            if installation is None:
                raise error(404, "Not Found")
            scheme, _, token = req.headers.get("authorization", "").partition(" ")
            try:
                claims = jwt.decode(
                    token,
                    installation.public_key,
                    algorithms=["RS256"],
                    options={"verify_exp": False, "verify_iat": False},
                )
            except jwt.PyJWTError:
                raise error(401, "A JSON web token could not be decoded") from None
            if scheme.lower() != "bearer" or str(claims.get("iss")) != installation.app_id:
                raise error(401, "'Issuer' claim ('iss') must be an Integer")
            if not claims["iat"] <= self.now < claims["exp"] or claims["exp"] - claims["iat"] > 600:
                raise error(401, "'Expiration time' claim ('exp') is too far in the future")
            self.tokens_issued += 1
            token_value = f"ghs_fake{self.tokens_issued:04d}{installation.id}"
            expires = self.now + 3600
            self.installation_tokens[token_value] = (installation.id, expires)
            data = template("installation-token")
            data.pop("repositories", None)
            data.update(token=token_value, expires_at=iso(expires), repository_selection="all")
            return json_response(201, data)

        # -- repositories
        def create_repo(owner: str, req: FakeRequest) -> httpx.Response:
            body = req.json() or {}
            name = str(body.get("name", ""))
            if f"{owner}/{name}".lower() in self.repos:
                raise error(
                    422,
                    "Repository creation failed.",
                    errors=[
                        {
                            "resource": "Repository",
                            "code": "custom",
                            "field": "name",
                            "message": "name already exists on this account",
                        }
                    ],
                )
            repo = self._new_repo(owner, name, body.get("description") or None, bool(body.get("private")))
            if body.get("auto_init"):
                text = f"# {name}\n" + (f"\n{body['description']}\n" if body.get("description") else "")
                repo.git.push(
                    repo.git.default_branch, {"README.md": text}, "Initial commit", self.acting().person
                )
            return json_response(
                201, self.repo_json(repo), {"Location": f"{self.api}/repos/{repo.full_name}"}
            )

        @r.route("POST", "/user/repos")
        def create_user_repo(req: FakeRequest) -> httpx.Response:
            if self.me is None:
                raise error(403, "Resource not accessible by integration")
            return create_repo(self.me, req)

        @r.route("POST", "/orgs/{org}/repos")
        def create_org_repo(req: FakeRequest) -> httpx.Response:
            org = self.users.get(req.params["org"].lower())
            if org is None or not org.is_org:
                raise error(404, "Not Found")
            allowed = (
                self.installation is not None and self.installation.account.lower() == org.login.lower()
            ) or (self.me is not None and self.me.lower() in org.members)
            if not allowed:
                raise error(
                    403, "You need admin access to the organization before adding a repository to it."
                )
            return create_repo(org.login, req)

        def repo_list(req: FakeRequest, repos: list[Repo], kind: str) -> httpx.Response:
            chunk, headers = link_paginate(
                req, repos, size_param="per_page", default_size=30, max_size=MAX_PAGE, total_header=None
            )
            return json_response(200, [self.repo_json(x, kind) for x in chunk], headers)

        @r.route("GET", "/user/repos")
        def my_repos(req: FakeRequest) -> httpx.Response:
            if self.me is None:
                raise error(403, "Resource not accessible by integration")
            owned_only = req.query.get("affiliation") == "owner"
            mine = [
                x
                for x in self.repos.values()
                if x.owner.lower() == self.me.lower() or (not owned_only and self.can_write(x))
            ]
            return repo_list(req, sorted(mine, key=lambda x: x.full_name.lower()), "repository")

        @r.route("GET", "/orgs/{org}/repos")
        def org_repos(req: FakeRequest) -> httpx.Response:
            org = self.users.get(req.params["org"].lower())
            if org is None or not org.is_org:
                raise error(404, "Not Found")
            found = [
                x for x in self.repos.values() if x.owner.lower() == org.login.lower() and self.can_read(x)
            ]
            return repo_list(req, sorted(found, key=lambda x: x.created), "minimal")

        @r.route("GET", "/users/{username}/repos")
        def user_repos(req: FakeRequest) -> httpx.Response:
            found = [
                x
                for x in self.repos.values()
                if x.owner.lower() == req.params["username"].lower() and not x.private
            ]
            return repo_list(req, sorted(found, key=lambda x: x.full_name.lower()), "minimal")

        @r.route("GET", "/installation/repositories")
        def installation_repos(req: FakeRequest) -> httpx.Response:
            if self.installation is None:
                raise error(403, "This endpoint is only for GitHub App installations")
            found = sorted(
                (x for x in self.repos.values() if self.can_write(x)), key=lambda x: x.full_name.lower()
            )
            chunk, headers = link_paginate(
                req, found, size_param="per_page", default_size=30, max_size=MAX_PAGE, total_header=None
            )
            return json_response(
                200,
                {
                    "total_count": len(found),
                    "repository_selection": "all",
                    "repositories": [self.repo_json(x, "repository") for x in chunk],
                },
                headers,
            )

        @r.route("GET", "/repos/{owner}/{repo}")
        def get_repo(req: FakeRequest) -> httpx.Response:
            return json_response(200, self.repo_json(self.repo_for(req)))

        @r.route("PATCH", "/repos/{owner}/{repo}")
        def edit_repo(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            body = req.json() or {}
            if "default_branch" in body and body["default_branch"] not in repo.git.branches:
                raise error(
                    422,
                    "Validation Failed",
                    errors=[{"resource": "Repository", "code": "invalid", "field": "default_branch"}],
                )
            if "name" in body and body["name"] != repo.name:
                if f"{repo.owner}/{body['name']}".lower() in self.repos:
                    raise error(
                        422,
                        "Validation Failed",
                        errors=[
                            {
                                "resource": "Repository",
                                "code": "custom",
                                "field": "name",
                                "message": "name already exists on this account",
                            }
                        ],
                    )
                del self.repos[repo.full_name.lower()]
                repo.name = body["name"]
                self.repos[repo.full_name.lower()] = repo
            if "default_branch" in body:
                repo.git.default_branch = body["default_branch"]
            for key in ("description", "private", "archived"):
                if key in body:
                    setattr(repo, key, body[key])
            repo.updated = self.clock.now()
            return json_response(200, self.repo_json(repo))

        @r.route("DELETE", "/repos/{owner}/{repo}")
        def delete_repo(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            del self.repos[repo.full_name.lower()]
            return empty_response(204)

        # -- branches and refs
        @r.route("GET", "/repos/{owner}/{repo}/branches")
        def list_branches(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            chunk, headers = link_paginate(
                req,
                sorted(repo.git.branches),
                size_param="per_page",
                default_size=30,
                max_size=MAX_PAGE,
                total_header=None,
            )
            return json_response(200, [self.short_branch(repo, b) for b in chunk], headers)

        @r.route("GET", "/repos/{owner}/{repo}/branches/{branch}")
        def get_branch(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            if req.params["branch"] not in repo.git.branches:
                raise error(404, "Branch not found")
            return json_response(200, self.branch_json(repo, req.params["branch"]))

        @r.route("POST", "/repos/{owner}/{repo}/branches/{branch}/rename")
        def rename_branch(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            old, new = req.params["branch"], str((req.json() or {}).get("new_name", ""))
            if old not in repo.git.branches:
                raise error(404, "Branch not found")
            repo.git.branches[new] = repo.git.branches.pop(old)
            if repo.git.default_branch == old:
                repo.git.default_branch = new
            return json_response(201, self.branch_json(repo, new))

        @r.route("POST", "/repos/{owner}/{repo}/git/refs")
        def create_ref(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            body = req.json() or {}
            ref, sha = str(body.get("ref", "")), str(body.get("sha", ""))
            if not ref.startswith("refs/") or ref.count("/") < 2:
                raise error(422, "Reference name is invalid")
            if sha not in repo.git.commits:
                raise error(422, "Object does not exist")
            if not ref.startswith("refs/heads/"):
                raise error(422, "Only branches are supported by this fake")
            name = ref[len("refs/heads/") :]
            if name in repo.git.branches:
                raise error(422, "Reference already exists")
            repo.git.branches[name] = sha
            return json_response(
                201,
                {
                    "ref": ref,
                    "node_id": node_id("Ref", f"{repo.id}:{ref}"),
                    "url": f"{self.api}/repos/{repo.full_name}/git/{ref}",
                    "object": {
                        "type": "commit",
                        "sha": sha,
                        "url": f"{self.api}/repos/{repo.full_name}/git/commits/{sha}",
                    },
                },
                {"Location": f"{self.api}/repos/{repo.full_name}/git/{ref}"},
            )

        @r.route("DELETE", "/repos/{owner}/{repo}/git/refs/{ref}")
        def delete_ref(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            ref = req.params["ref"]
            name = ref[len("heads/") :] if ref.startswith("heads/") else None
            if name is None or name not in repo.git.branches:
                raise error(422, "Reference does not exist")
            del repo.git.branches[name]
            return empty_response(204)

        @r.route("POST", "/repos/{owner}/{repo}/merges")
        def merge_branches(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            body = req.json() or {}
            base_name, head_ref = str(body.get("base", "")), str(body.get("head", ""))
            if base_name not in repo.git.branches:
                raise error(404, "Base does not exist")
            head = repo.git.resolve(head_ref)
            if head is None:
                raise error(404, "Head does not exist")
            base = repo.git.branches[base_name]
            if head in repo.git.ancestors(base):
                return empty_response(204)
            message = body.get("commit_message") or f"Merge {head_ref} into {base_name}"
            try:
                merged = repo.git.merge(base, head, "merge", message, self.acting().person)
            except MergeConflict:
                raise error(409, "Merge conflict") from None
            repo.git.branches[base_name] = merged
            return json_response(201, self.commit_json(repo, repo.git.commits[merged]))

        # -- contents
        @r.route("GET", "/repos/{owner}/{repo}/contents/{path}")
        def get_contents(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            ref = req.query.get("ref") or repo.git.default_branch
            sha = repo.git.resolve(ref)
            if sha is None:
                raise error(404, f"No commit found for the ref {ref}")
            tree = repo.git.commits[sha].tree
            path = req.params["path"].strip("/")
            if path in tree:
                return json_response(200, self.content_json(repo, ref, path, tree[path]))
            listing = self.dir_json(repo, ref, tree, path)
            if not listing:
                raise error(404, "Not Found")
            return json_response(200, listing)

        @r.route("PUT", "/repos/{owner}/{repo}/contents/{path}")
        def put_contents(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            body = req.json() or {}
            path = req.params["path"].strip("/")
            branch = body.get("branch") or repo.git.default_branch
            parent = repo.git.branches.get(branch)
            if parent is None and repo.git.branches:
                raise error(404, f"Branch {branch} not found")
            tree = dict(repo.git.commits[parent].tree) if parent else {}
            current = tree.get(path)
            if current is not None and not body.get("sha"):
                raise error(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
            if current is not None and body["sha"] != blob_sha(current):
                raise error(409, f"{path} does not match {body['sha']}")
            try:
                data = base64.b64decode(str(body.get("content", "")), validate=True)
            except ValueError:
                raise error(422, "content is not valid Base64") from None
            tree[path] = data
            who = self.acting().person
            author = body.get("author")
            made_by = Person(author["name"], author["email"]) if isinstance(author, dict) else who
            made = repo.git.commit(
                tree, [parent] if parent else [], str(body.get("message", "")), made_by, who
            )
            repo.git.branches[branch] = made.sha
            repo.updated = made.date
            self.on_push(repo, branch, made)
            return json_response(
                200 if current is not None else 201, self.file_commit_json(repo, branch, path, made)
            )

        @r.route("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}")
        def get_blob(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            for c in repo.git.commits.values():
                for data in c.tree.values():
                    if blob_sha(data) == req.params["file_sha"]:
                        return json_response(
                            200,
                            {
                                "sha": blob_sha(data),
                                "node_id": node_id("Blob", blob_sha(data)),
                                "size": len(data),
                                "url": f"{self.api}/repos/{repo.full_name}/git/blobs/{blob_sha(data)}",
                                "content": base64.b64encode(data).decode(),
                                "encoding": "base64",
                            },
                        )
            raise error(404, "Not Found")

        # -- commits
        @r.route("GET", "/repos/{owner}/{repo}/commits")
        def list_commits(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            if repo.git.empty:
                raise error(409, "Git Repository is empty.")
            commits = repo.git.log(self.resolve(repo, req.query.get("sha")))
            path = req.query.get("path")
            if path:
                commits = [c for c in commits if repo.git.touches(c, path)]
            chunk, headers = link_paginate(
                req, commits, size_param="per_page", default_size=30, max_size=MAX_PAGE, total_header=None
            )
            return json_response(200, [self.commit_json(repo, c, files=False) for c in chunk], headers)

        @r.route("GET", "/repos/{owner}/{repo}/commits/{ref}")
        def get_commit(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            sha = self.resolve(repo, req.params["ref"])
            limit = req.query_int("per_page", 300)
            return json_response(200, self.commit_json(repo, repo.git.commits[sha], files_limit=limit))

        @r.route("GET", "/repos/{owner}/{repo}/compare/{basehead}")
        def compare(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            spec = req.params["basehead"]
            base_ref, _, head_ref = spec.partition("...")
            return json_response(
                200,
                self.comparison_json(
                    repo, base_ref, head_ref, self.resolve(repo, base_ref), self.resolve(repo, head_ref)
                ),
            )

        # -- pull requests
        def the_pull(repo: Repo, req: FakeRequest) -> Pull:
            pr = repo.pulls.get(int(req.params["pull_number"]))
            if pr is None:
                raise error(404, "Not Found")
            return pr

        @r.route("GET", "/repos/{owner}/{repo}/pulls")
        def list_pulls(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            state = req.query.get("state", "open")
            pulls = [
                p
                for p in sorted(repo.pulls.values(), key=lambda p: -p.number)
                if state == "all" or p.state == state
            ]
            chunk, headers = link_paginate(
                req, pulls, size_param="per_page", default_size=30, max_size=MAX_PAGE, total_header=None
            )
            return json_response(200, [self.pull_json(repo, p, simple=True) for p in chunk], headers)

        @r.route("POST", "/repos/{owner}/{repo}/pulls")
        def create_pull(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            body = req.json() or {}
            head = str(body.get("head", "")).split(":", 1)[-1]
            base = str(body.get("base", ""))
            invalid = [
                f
                for f, ok in (("head", head in repo.git.branches), ("base", base in repo.git.branches))
                if not ok
            ]
            if invalid:
                raise error(
                    422,
                    "Validation Failed",
                    errors=[{"resource": "PullRequest", "field": f, "code": "invalid"} for f in invalid],
                )
            for p in repo.pulls.values():
                if p.state == "open" and p.head == head and p.base == base:
                    raise error(
                        422,
                        "Validation Failed",
                        errors=[
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": f"A pull request already exists for {repo.owner}:{head}.",
                            }
                        ],
                    )
            if not repo.git.log(repo.git.branches[head], exclude=repo.git.branches[base]):
                raise error(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"No commits between {base} and {head}",
                        }
                    ],
                )
            when = self.clock.now()
            pr = Pull(
                repo.next_number,
                self.next_id(),
                str(body.get("title", "")),
                body.get("body"),
                head,
                base,
                self.acting().login,
                bool(body.get("draft")),
                when,
                when,
            )
            repo.next_number += 1
            repo.pulls[pr.number] = pr
            return json_response(
                201,
                self.pull_json(repo, pr),
                {"Location": f"{self.api}/repos/{repo.full_name}/pulls/{pr.number}"},
            )

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
        def get_pull(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            return json_response(200, self.pull_json(repo, the_pull(repo, req)))

        @r.route("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}")
        def edit_pull(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            pr = the_pull(repo, req)
            if self.acting().login != pr.user and not self.can_write(repo):
                raise error(403, "Must have push access to repository")
            body = req.json() or {}
            if "base" in body and body["base"] != pr.base:
                if body["base"] not in repo.git.branches:
                    raise error(
                        422,
                        "Validation Failed",
                        errors=[{"resource": "PullRequest", "field": "base", "code": "invalid"}],
                    )
                pr.base = body["base"]
            for key in ("title", "body"):
                if key in body:
                    setattr(pr, key, body[key])
            state = body.get("state")
            if state in ("open", "closed") and state != pr.state:
                if pr.merged:
                    raise error(
                        422,
                        "Validation Failed",
                        errors=[
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "field": "state",
                                "message": "state cannot be changed. The pull request has been merged.",
                            }
                        ],
                    )
                if state == "closed":
                    pr.head_sha, pr.base_sha = self.pull_shas(repo, pr)
                    pr.closed_at = self.clock.now()
                else:
                    pr.closed_at = None
                pr.state = state
            pr.updated = self.clock.now()
            return json_response(200, self.pull_json(repo, pr))

        @r.route("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge")
        def merge_pull(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            pr = the_pull(repo, req)
            body = req.json() or {}
            if pr.state != "open":
                raise error(405, "Pull Request is not mergeable")
            head, base = self.pull_shas(repo, pr)
            if body.get("sha") and body["sha"] != head:
                raise error(409, "Head branch was modified. Review and try the merge again.")
            method = body.get("merge_method") or "merge"
            title = body.get("commit_title")
            extra = body.get("commit_message")
            if method == "squash":
                commits = reversed(repo.git.log(head, exclude=base))
                default = "\n\n".join(f"* {c.message}" for c in commits)
                message = (
                    title or f"{pr.title} (#{pr.number})"
                ) + f"\n\n{extra if extra is not None else default}"
            else:
                message = (
                    title or f"Merge pull request #{pr.number} from {repo.owner}/{pr.head}"
                ) + f"\n\n{extra if extra is not None else pr.title}"
            try:
                merged = repo.git.merge(base, head, method, message.rstrip("\n"), self.acting().person)
            except MergeConflict:
                raise error(405, "Pull Request is not mergeable") from None
            repo.git.branches[pr.base] = merged
            when = self.clock.now()
            pr.merged, pr.state, pr.merge_sha, pr.merged_at = True, "closed", merged, when
            pr.merged_by, pr.closed_at, pr.updated = self.acting().login, when, when
            pr.head_sha, pr.base_sha = head, base
            return json_response(
                200, {"sha": merged, "merged": True, "message": "Pull Request successfully merged"}
            )

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
        def pull_files(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            pr = the_pull(repo, req)
            head, base = self.pull_shas(repo, pr)
            changes = repo.git.changes_between(base, head)
            chunk, headers = link_paginate(
                req, changes, size_param="per_page", default_size=30, max_size=MAX_PAGE, total_header=None
            )
            tree = repo.git.commits[head].tree
            return json_response(200, [self.diff_entry(repo, d, head, tree) for d in chunk], headers)

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
        def list_reviews(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            pr = the_pull(repo, req)
            chunk, headers = link_paginate(
                req,
                repo.reviews.get(pr.number, []),
                size_param="per_page",
                default_size=30,
                max_size=MAX_PAGE,
                total_header=None,
            )
            return json_response(200, [self.review_json(repo, pr, x) for x in chunk], headers)

        @r.route("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
        def create_review(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            pr = the_pull(repo, req)
            body = req.json() or {}
            event = body.get("event")
            who = self.acting().login
            text = str(body.get("body") or "")
            if event == "APPROVE" and who.lower() == pr.user.lower():
                raise error(422, "Unprocessable Entity", errors=["Can not approve your own pull request"])
            if event == "REQUEST_CHANGES" and who.lower() == pr.user.lower():
                raise error(
                    422, "Unprocessable Entity", errors=["Can not request changes on your own pull request"]
                )
            if event in ("REQUEST_CHANGES", "COMMENT") and not text.strip():
                raise error(
                    422, "Unprocessable Entity", errors=[f"Body is required for {event.lower()} reviews"]
                )
            state = {
                "APPROVE": "APPROVED",
                "REQUEST_CHANGES": "CHANGES_REQUESTED",
                "COMMENT": "COMMENTED",
            }.get(str(event), "PENDING")
            head, _ = self.pull_shas(repo, pr)
            review = ReviewObj(
                self.next_id(), who, state, text, body.get("commit_id") or head, self.clock.now()
            )
            repo.reviews.setdefault(pr.number, []).append(review)
            return json_response(200, self.review_json(repo, pr, review))

        # -- statuses
        @r.route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
        def create_status(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req, write=True)
            sha = req.params["sha"]
            if sha not in repo.git.commits:
                raise error(
                    422,
                    "Validation Failed",
                    errors=[
                        {
                            "resource": "Status",
                            "code": "custom",
                            "field": "sha",
                            "message": f"No commit found for SHA: {sha}",
                        }
                    ],
                )
            body = req.json() or {}
            status = StatusObj(
                self.next_id(),
                sha,
                str(body.get("state")),
                body.get("context") or "default",
                body.get("description"),
                body.get("target_url"),
                self.acting().login,
                self.clock.now(),
            )
            repo.statuses.append(status)
            return json_response(
                201,
                self.status_json(repo, status),
                {"Location": f"{self.api}/repos/{repo.full_name}/statuses/{sha}"},
            )

        @r.route("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses")
        def list_statuses(req: FakeRequest) -> httpx.Response:
            repo = self.repo_for(req)
            sha = self.resolve(repo, req.params["ref"])
            found = [s for s in reversed(repo.statuses) if s.sha == sha]
            chunk, headers = link_paginate(
                req, found, size_param="per_page", default_size=30, max_size=MAX_PAGE, total_header=None
            )
            return json_response(200, [self.status_json(repo, s) for s in chunk], headers)

    # -- hooks ----------------------------------------------------------------------------
    def on_push(self, repo: Repo, branch: str, made: CommitObj) -> None:
        """Called after a commit lands on a branch through the API (Actions registers workflows)."""
