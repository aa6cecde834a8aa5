"""A stateful in-memory Gitea (or Forgejo) for tests: repositories, branches, contents, commits,
pull requests (with real three-way merges at file level), reviews and commit statuses.

Every payload has the shape of the definitions in ``gitea.json``/``forgejo.json`` — the tests run
the fake behind ``SpecValidatingTransport``, which checks each answer against the description too.
Behaviours follow Gitea's API handlers: 409 for an existing repository/branch or a second open pull
request on the same branches, 422 for a file that exists (create) or a stale sha (update), 405 for
a pull request that cannot be merged, 422 for approving one's own pull request, 409 "Git
Repository is empty" when listing the commits of an empty repository, Link + X-Total-Count
pagination with ``page``/``limit`` (at most 50 items, as ``MAX_RESPONSE_ITEMS``).

Time is a counter (one second per write), so shas and timestamps are deterministic.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tests.support.fake_upstream import (
    FakeRequest,
    HttpError,
    Router,
    empty_response,
    json_response,
    link_paginate,
)

Tree = dict[str, bytes]
EPOCH = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
MAX_ITEMS = 50
DEFAULT_PAGE = 30


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class User:
    id: int
    login: str
    token: str
    email: str
    full_name: str
    is_org: bool = False
    members: set[str] = field(default_factory=set)


@dataclass
class CommitObj:
    sha: str
    tree: Tree
    parents: list[str]
    message: str
    author: tuple[str, str]
    committer: tuple[str, str]
    date: datetime


@dataclass
class Pull:
    index: int
    id: int
    title: str
    body: str
    head: str
    base: str
    user: str
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
    description: str
    target_url: str
    creator: str
    created: datetime


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    description: str
    private: bool
    default_branch: str
    created: datetime
    updated: datetime
    archived: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, CommitObj] = field(default_factory=dict)
    pulls: dict[int, Pull] = field(default_factory=dict)
    reviews: dict[int, list[ReviewObj]] = field(default_factory=dict)
    statuses: list[StatusObj] = field(default_factory=list)
    next_index: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class MergeConflict(Exception):
    pass


def _error(status: int, message: str, base: str) -> HttpError:
    body: dict[str, Any] = {"message": message, "url": f"{base}/api/swagger"}
    if status == 404:
        body = {"errors": [message], "message": "The target couldn't be found.", "url": body["url"]}
    return HttpError(status, body)


class GiteaFake:
    """An in-memory Gitea at ``base_url`` (API under ``/api/v1``)."""

    def __init__(self, *, base_url: str = "https://gitea.test", flavour: str = "gitea") -> None:
        self.base = base_url.rstrip("/")
        self.api = self.base + "/api/v1"
        self.flavour = flavour
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self._ids = 0
        self._tick = 0
        self.router = Router(
            prefix="/api/v1",
            greedy=("filepath", "basehead"),
            not_found_body=lambda path: {
                "errors": [f"no route {path}"],
                "message": "The target couldn't be found.",
                "url": f"{self.base}/api/swagger",
            },
        )
        self._routes()

    # -- setup -----------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return self.router.transport()

    def add_user(self, login: str, token: str) -> User:
        user = User(self._id(), login, token, f"{login}@example.com", login.capitalize())
        self.users[login] = user
        return user

    def add_org(self, login: str, members: list[str]) -> User:
        org = User(
            self._id(),
            login,
            "",
            f"{login}@example.com",
            login.capitalize(),
            is_org=True,
            members=set(members),
        )
        self.users[login] = org
        return org

    def _id(self) -> int:
        self._ids += 1
        return self._ids

    def now(self) -> datetime:
        self._tick += 1
        return EPOCH + timedelta(seconds=self._tick)

    # -- git model -------------------------------------------------------------
    def make_commit(
        self, repo: Repo, tree: Tree, parents: list[str], message: str, author: tuple[str, str]
    ) -> CommitObj:
        when = self.now()
        tree_id = hashlib.sha1(
            b"".join(p.encode() + b"\0" + blob_sha(d).encode() for p, d in sorted(tree.items()))
        ).hexdigest()
        text = (
            f"tree {tree_id}\n"
            + "".join(f"parent {p}\n" for p in parents)
            + f"author {author[0]} <{author[1]}> {int(when.timestamp())} +0000\n\n{message}"
        )
        sha = hashlib.sha1(f"commit {len(text)}\0{text}".encode()).hexdigest()
        commit = CommitObj(sha, dict(tree), list(parents), message, author, author, when)
        repo.commits[sha] = commit
        return commit

    def seed_repo(
        self,
        owner: str,
        name: str,
        files: dict[str, str] | None = None,
        *,
        private: bool = False,
        default_branch: str = "main",
    ) -> Repo:
        """Create a repository directly (no request), with one commit holding ``files``."""
        repo = self._new_repo(owner, name, "", private, default_branch)
        if files is not None:
            user = self.users[owner]
            commit = self.make_commit(
                repo,
                {k: v.encode() for k, v in files.items()},
                [],
                "Initial commit",
                (user.full_name, user.email),
            )
            repo.branches[default_branch] = commit.sha
        return repo

    def push(self, repo: Repo, branch: str, files: dict[str, str | None], message: str, login: str) -> str:
        """Commit changes (None deletes a file) on top of ``branch`` (created from the default one)."""
        parent = repo.branches.get(branch) or repo.branches.get(repo.default_branch)
        tree = dict(repo.commits[parent].tree) if parent else {}
        for path, text in files.items():
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text.encode()
        user = self.users[login]
        commit = self.make_commit(
            repo, tree, [parent] if parent else [], message, (user.full_name, user.email)
        )
        repo.branches[branch] = commit.sha
        return commit.sha

    def _new_repo(self, owner: str, name: str, description: str, private: bool, default_branch: str) -> Repo:
        when = self.now()
        repo = Repo(self._id(), owner, name, description, private, default_branch, when, when)
        self.repos[f"{owner}/{name}".lower()] = repo
        return repo

    @staticmethod
    def ancestors(repo: Repo, sha: str) -> set[str]:
        seen: set[str] = set()
        todo = [sha]
        while todo:
            cur = todo.pop()
            if cur in seen or cur not in repo.commits:
                continue
            seen.add(cur)
            todo.extend(repo.commits[cur].parents)
        return seen

    def log(self, repo: Repo, sha: str, exclude: str | None = None) -> list[CommitObj]:
        """Commits reachable from sha (minus those reachable from exclude), newest first."""
        reach = self.ancestors(repo, sha)
        if exclude:
            reach -= self.ancestors(repo, exclude)
        return sorted((repo.commits[s] for s in reach), key=lambda c: (c.date, c.sha), reverse=True)

    def merge_base(self, repo: Repo, a: str, b: str) -> str | None:
        common = self.ancestors(repo, a) & self.ancestors(repo, b)
        if not common:
            return None
        return max(common, key=lambda s: (repo.commits[s].date, s))

    @staticmethod
    def three_way(base: Tree, ours: Tree, theirs: Tree) -> Tree:
        out: Tree = {}
        for path in sorted(set(base) | set(ours) | set(theirs)):
            b, o, t = base.get(path), ours.get(path), theirs.get(path)
            if o == t:
                merged = o
            elif b == o:
                merged = t
            elif b == t:
                merged = o
            else:
                raise MergeConflict(path)
            if merged is not None:
                out[path] = merged
        return out

    @staticmethod
    def diff(old: Tree, new: Tree) -> list[dict[str, Any]]:
        changes = []
        for path in sorted(set(old) | set(new)):
            a, b = old.get(path), new.get(path)
            if a == b:
                continue
            status = "added" if a is None else "deleted" if b is None else "modified"
            lines_a = (a or b"").decode("utf-8", "replace").splitlines()
            lines_b = (b or b"").decode("utf-8", "replace").splitlines()
            adds = dels = 0
            for line in difflib.unified_diff(lines_a, lines_b, lineterm="", n=0):
                if line.startswith("+") and not line.startswith("+++"):
                    adds += 1
                elif line.startswith("-") and not line.startswith("---"):
                    dels += 1
            changes.append({"path": path, "status": status, "additions": adds, "deletions": dels})
        return changes

    # -- payloads (gitea.json definitions) ----------------------------------------
    def user_json(self, login: str) -> dict[str, Any]:
        u = self.users[login]
        data: dict[str, Any] = {
            "id": u.id,
            "login": u.login,
            "login_name": "",
            "source_id": 0,
            "full_name": u.full_name,
            "email": u.email,
            "avatar_url": f"{self.base}/avatars/{u.id}",
            "html_url": f"{self.base}/{u.login}",
            "language": "en-US",
            "is_admin": False,
            "last_login": "0001-01-01T00:00:00Z",
            "created": _iso(EPOCH),
            "restricted": False,
            "active": True,
            "prohibit_login": False,
            "location": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": u.login,
        }
        if self.flavour == "forgejo":
            data["pronouns"] = ""
        return data

    def repo_json(self, repo: Repo, viewer: str | None = None) -> dict[str, Any]:
        html = f"{self.base}/{repo.full_name}"
        can_write = viewer is not None and self.can_write(repo, viewer)
        data: dict[str, Any] = {
            "id": repo.id,
            "owner": self.user_json(repo.owner),
            "name": repo.name,
            "full_name": repo.full_name,
            "description": repo.description,
            "empty": not repo.branches,
            "private": repo.private,
            "fork": False,
            "template": False,
            "parent": None,
            "mirror": False,
            "size": 0,
            "language": "",
            "languages_url": f"{self.api}/repos/{repo.full_name}/languages",
            "html_url": html,
            "url": f"{self.api}/repos/{repo.full_name}",
            "link": "",
            "ssh_url": f"git@gitea.test:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "original_url": "",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 1,
            "open_issues_count": 0,
            "open_pr_counter": sum(1 for p in repo.pulls.values() if p.state == "open"),
            "release_counter": 0,
            "default_branch": repo.default_branch,
            "archived": repo.archived,
            "created_at": _iso(repo.created),
            "updated_at": _iso(repo.updated),
            "archived_at": "1970-01-01T00:00:00Z",
            "permissions": {"admin": can_write, "push": can_write, "pull": True},
            "has_issues": True,
            "internal_tracker": {
                "enable_time_tracker": True,
                "allow_only_contributors_to_track_time": True,
                "enable_issue_dependencies": True,
            },
            "has_wiki": True,
            "has_pull_requests": True,
            "has_projects": True,
            "has_releases": True,
            "has_packages": True,
            "has_actions": True,
            "ignore_whitespace_conflicts": False,
            "allow_merge_commits": True,
            "allow_rebase": True,
            "allow_rebase_explicit": True,
            "allow_squash_merge": True,
            "allow_fast_forward_only_merge": True,
            "allow_rebase_update": True,
            "default_delete_branch_after_merge": False,
            "default_merge_style": "merge",
            "default_allow_maintainer_edit": False,
            "avatar_url": "",
            "internal": False,
            "mirror_interval": "",
            "object_format_name": "sha1",
            "mirror_updated": "0001-01-01T00:00:00Z",
            "repo_transfer": None,
            "topics": [],
        }
        if self.flavour == "gitea":
            data.update(
                {
                    "has_code": True,
                    "projects_mode": "all",
                    "licenses": [],
                    "allow_manual_merge": False,
                    "autodetect_manual_merge": False,
                }
            )
        else:
            data.update(
                {"globally_editable_wiki": False, "wiki_branch": "main", "default_update_style": "merge"}
            )
        return data

    def _payload_user(self, who: tuple[str, str]) -> dict[str, Any]:
        login = next((u.login for u in self.users.values() if u.email == who[1]), "")
        return {"name": who[0], "email": who[1], "username": login}

    def branch_json(self, repo: Repo, name: str) -> dict[str, Any]:
        c = repo.commits[repo.branches[name]]
        return {
            "name": name,
            "commit": {
                "id": c.sha,
                "message": c.message,
                "url": f"{self.base}/{repo.full_name}/commit/{c.sha}",
                "author": self._payload_user(c.author),
                "committer": self._payload_user(c.committer),
                "verification": None,
                "timestamp": _iso(c.date),
                "added": None,
                "removed": None,
                "modified": None,
            },
            "protected": False,
            "required_approvals": 0,
            "enable_status_check": False,
            "status_check_contexts": [],
            "user_can_push": True,
            "user_can_merge": True,
            "effective_branch_protection_name": "",
        }

    def _commit_meta(self, repo: Repo, sha: str) -> dict[str, Any]:
        return {
            "url": f"{self.api}/repos/{repo.full_name}/git/commits/{sha}",
            "sha": sha,
            "created": _iso(repo.commits[sha].date),
        }

    def commit_json(
        self, repo: Repo, c: CommitObj, *, files: bool = True, stat: bool = True
    ) -> dict[str, Any]:
        parent_tree = repo.commits[c.parents[0]].tree if c.parents else {}
        changes = self.diff(parent_tree, c.tree)
        api = f"{self.api}/repos/{repo.full_name}"
        login = next((u.login for u in self.users.values() if u.email == c.author[1]), None)
        return {
            "url": f"{api}/git/commits/{c.sha}",
            "sha": c.sha,
            "created": _iso(c.date),
            "html_url": f"{self.base}/{repo.full_name}/commit/{c.sha}",
            "commit": {
                "url": f"{api}/git/commits/{c.sha}",
                "author": {"name": c.author[0], "email": c.author[1], "date": _iso(c.date)},
                "committer": {"name": c.committer[0], "email": c.committer[1], "date": _iso(c.date)},
                "message": c.message,
                "tree": {"url": f"{api}/git/trees/{c.sha}", "sha": c.sha, "created": _iso(c.date)},
                "verification": {
                    "verified": False,
                    "reason": "gpg.error.not_signed_commit",
                    "signature": "",
                    "signer": None,
                    "payload": "",
                },
            },
            "author": self.user_json(login) if login else None,
            "committer": self.user_json(login) if login else None,
            "parents": [self._commit_meta(repo, p) for p in c.parents],
            "files": [{"filename": x["path"], "status": x["status"]} for x in changes] if files else None,
            "stats": {
                "total": sum(x["additions"] + x["deletions"] for x in changes),
                "additions": sum(x["additions"] for x in changes),
                "deletions": sum(x["deletions"] for x in changes),
            }
            if stat
            else None,
        }

    def contents_json(self, repo: Repo, ref: str, path: str, commit: CommitObj) -> dict[str, Any]:
        data = commit.tree[path]
        sha = blob_sha(data)
        api = f"{self.api}/repos/{repo.full_name}"
        html = f"{self.base}/{repo.full_name}/src/branch/{ref}/{path}"
        last = next(
            (
                c.sha
                for c in self.log(repo, commit.sha)
                if c.tree.get(path) == data
                and (not c.parents or repo.commits[c.parents[0]].tree.get(path) != data)
            ),
            commit.sha,
        )
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "last_commit_sha": last,
            "type": "file",
            "size": len(data),
            "encoding": "base64",
            "content": base64.b64encode(data).decode("ascii"),
            "target": None,
            "url": f"{api}/contents/{path}?ref={ref}",
            "html_url": html,
            "git_url": f"{api}/git/blobs/{sha}",
            "download_url": f"{self.base}/{repo.full_name}/raw/branch/{ref}/{path}",
            "submodule_git_url": None,
            "_links": {
                "self": f"{api}/contents/{path}?ref={ref}",
                "git": f"{api}/git/blobs/{sha}",
                "html": html,
            },
        }

    def _dir_entry(self, repo: Repo, ref: str, path: str, is_dir: bool) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        return {
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": hashlib.sha1(path.encode()).hexdigest(),
            "type": "dir" if is_dir else "file",
            "size": 0,
            "encoding": None,
            "content": None,
            "url": f"{api}/contents/{path}?ref={ref}",
            "html_url": f"{self.base}/{repo.full_name}/src/{path}",
            "_links": {"self": f"{api}/contents/{path}?ref={ref}"},
        }

    def pull_json(self, repo: Repo, pr: Pull) -> dict[str, Any]:
        head_sha, base_sha = self._pull_shas(repo, pr)
        mb = self.merge_base(repo, base_sha, head_sha) if head_sha and base_sha else None
        changes = (
            self.diff(repo.commits[mb].tree if mb else {}, repo.commits[head_sha].tree) if head_sha else []
        )
        html = f"{self.base}/{repo.full_name}/pulls/{pr.index}"

        def side(ref: str, sha: str) -> dict[str, Any]:
            return {"label": ref, "ref": ref, "sha": sha, "repo_id": repo.id, "repo": self.repo_json(repo)}

        return {
            "id": pr.id,
            "url": html,
            "number": pr.index,
            "user": self.user_json(pr.user),
            "title": pr.title,
            "body": pr.body,
            "labels": [],
            "milestone": None,
            "assignee": None,
            "assignees": None,
            "requested_reviewers": None,
            "requested_reviewers_teams": None,
            "state": pr.state,
            "draft": pr.title.lower().startswith(("wip:", "[wip]")),
            "is_locked": False,
            "comments": 0,
            "review_comments": 0,
            "additions": sum(c["additions"] for c in changes),
            "deletions": sum(c["deletions"] for c in changes),
            "changed_files": len(changes),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "mergeable": pr.state == "open" and self._mergeable(repo, pr),
            "merged": pr.merged,
            "merged_at": _iso(pr.merged_at) if pr.merged_at else None,
            "merge_commit_sha": pr.merge_sha,
            "merged_by": self.user_json(pr.merged_by) if pr.merged_by else None,
            "allow_maintainer_edit": False,
            "base": side(pr.base, base_sha),
            "head": side(pr.head, head_sha),
            "merge_base": mb or "",
            "due_date": None,
            "created_at": _iso(pr.created),
            "updated_at": _iso(pr.updated),
            "closed_at": _iso(pr.closed_at) if pr.closed_at else None,
            "pin_order": 0,
        }

    def review_json(self, repo: Repo, pr: Pull, r: ReviewObj) -> dict[str, Any]:
        html = f"{self.base}/{repo.full_name}/pulls/{pr.index}"
        return {
            "id": r.id,
            "user": self.user_json(r.user),
            "team": None,
            "state": r.state,
            "body": r.body,
            "commit_id": r.commit_id,
            "stale": False,
            "official": r.state == "APPROVED",
            "dismissed": False,
            "comments_count": 0,
            "submitted_at": _iso(r.submitted),
            "updated_at": _iso(r.submitted),
            "html_url": f"{html}#issuecomment-{r.id}",
            "pull_request_url": html,
        }

    def status_json(self, repo: Repo, s: StatusObj) -> dict[str, Any]:
        return {
            "id": s.id,
            "status": s.state,
            "target_url": s.target_url,
            "description": s.description,
            "url": f"{self.api}/repos/{repo.full_name}/statuses/{s.sha}",
            "context": s.context,
            "creator": self.user_json(s.creator),
            "created_at": _iso(s.created),
            "updated_at": _iso(s.created),
        }

    # -- access ------------------------------------------------------------------------
    def whoami(self, req: FakeRequest) -> str:
        header = req.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() in ("token", "bearer") and token:
            for user in self.users.values():
                if user.token and user.token == token:
                    return user.login
            raise _error(401, "user does not exist", self.base)
        raise _error(401, "token is required", self.base)

    def can_write(self, repo: Repo, login: str) -> bool:
        owner = self.users.get(repo.owner)
        return login == repo.owner or (owner is not None and owner.is_org and login in owner.members)

    def repo_for(self, req: FakeRequest, *, write: bool = False) -> tuple[Repo, str]:
        me = self.whoami(req)
        repo = self.repos.get(f"{req.params['owner']}/{req.params['repo']}".lower())
        if repo is None or (repo.private and not self.can_write(repo, me)):
            raise _error(404, "repository does not exist", self.base)
        if write:
            if not self.can_write(repo, me):
                raise _error(403, "user should have a permission to write to this repository", self.base)
            if repo.archived:
                raise _error(423, "repo is archived", self.base)
        return repo, me

    def resolve(self, repo: Repo, ref: str | None) -> str:
        ref = ref or repo.default_branch
        if ref in repo.branches:
            return repo.branches[ref]
        if ref in repo.commits:
            return ref
        matches = [s for s in repo.commits if len(ref) >= 7 and s.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise _error(404, f"object does not exist [id: {ref}, rel_path: ]", self.base)

    def _pull_shas(self, repo: Repo, pr: Pull) -> tuple[str, str]:
        if pr.state == "open":
            return repo.branches.get(pr.head, pr.head_sha), repo.branches.get(pr.base, pr.base_sha)
        return pr.head_sha, pr.base_sha

    def _mergeable(self, repo: Repo, pr: Pull) -> bool:
        head, base = self._pull_shas(repo, pr)
        mb = self.merge_base(repo, base, head)
        try:
            self.three_way(
                repo.commits[mb].tree if mb else {}, repo.commits[base].tree, repo.commits[head].tree
            )
        except MergeConflict:
            return False
        return True

    def _pull(self, repo: Repo, req: FakeRequest) -> Pull:
        pr = repo.pulls.get(int(req.params["index"]))
        if pr is None:
            raise _error(404, "pull request does not exist", self.base)
        return pr

    # -- routes ----------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router
        base = self.base

        @r.route("GET", "/user")
        def get_user(req: FakeRequest) -> httpx.Response:
            return json_response(200, self.user_json(self.whoami(req)))

        def create(req: FakeRequest, owner: str) -> httpx.Response:
            body = req.json() or {}
            name = body.get("name", "")
            if not name or not all(c.isalnum() or c in "-_." for c in name):
                raise _error(422, "[Name]: invalid repository name", base)
            if f"{owner}/{name}".lower() in self.repos:
                raise _error(409, "The repository with the same name already exists.", base)
            branch = body.get("default_branch") or "main"
            repo = self._new_repo(owner, name, body.get("description", ""), bool(body.get("private")), branch)
            if body.get("auto_init"):
                author = self.users[self.whoami(req)]
                readme = f"# {name}\n\n{repo.description}\n" if repo.description else f"# {name}\n"
                commit = self.make_commit(
                    repo,
                    {"README.md": readme.encode()},
                    [],
                    "Initial commit",
                    (author.full_name, author.email),
                )
                repo.branches[branch] = commit.sha
            return json_response(201, self.repo_json(repo, self.whoami(req)))

        @r.route("POST", "/user/repos")
        def create_user_repo(req: FakeRequest) -> httpx.Response:
            return create(req, self.whoami(req))

        @r.route("POST", "/orgs/{org}/repos")
        def create_org_repo(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            org = self.users.get(req.params["org"])
            if org is None or not org.is_org:
                raise _error(404, "org does not exist", base)
            if me not in org.members:
                raise _error(403, "Given user is not allowed to create repository in organization.", base)
            return create(req, org.login)

        def listing(req: FakeRequest, repos: list[Repo], me: str) -> httpx.Response:
            chunk, headers = link_paginate(
                req, sorted(repos, key=lambda x: x.id), default_size=DEFAULT_PAGE, max_size=MAX_ITEMS
            )
            return json_response(200, [self.repo_json(x, me) for x in chunk], headers)

        @r.route("GET", "/user/repos")
        def list_mine(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            return listing(req, [x for x in self.repos.values() if self.can_write(x, me)], me)

        @r.route("GET", "/users/{username}/repos")
        def list_users(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            owner = req.params["username"]
            if owner not in self.users:
                raise _error(404, "user does not exist", base)
            return listing(
                req,
                [
                    x
                    for x in self.repos.values()
                    if x.owner == owner and (not x.private or self.can_write(x, me))
                ],
                me,
            )

        @r.route("GET", "/repos/{owner}/{repo}")
        def get_repo(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            return json_response(200, self.repo_json(repo, me))

        @r.route("PATCH", "/repos/{owner}/{repo}")
        def edit_repo(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            repo = self.repos.get(f"{req.params['owner']}/{req.params['repo']}".lower())
            if repo is None or (repo.private and not self.can_write(repo, me)):
                raise _error(404, "repository does not exist", base)
            if not self.can_write(repo, me):
                raise _error(403, "user should be an owner or a collaborator with admin write", base)
            body = req.json() or {}
            if "default_branch" in body and repo.branches and body["default_branch"] not in repo.branches:
                raise _error(404, "default branch does not exist", base)
            new_name = body.get("name")
            if new_name and new_name != repo.name:
                if f"{repo.owner}/{new_name}".lower() in self.repos:
                    raise _error(422, "repository name already exists", base)
                del self.repos[repo.full_name.lower()]
                repo.name = new_name
                self.repos[repo.full_name.lower()] = repo
            for key in ("description", "private", "default_branch", "archived"):
                if key in body:
                    setattr(repo, key, body[key])
            repo.updated = self.now()
            return json_response(200, self.repo_json(repo, me))

        @r.route("DELETE", "/repos/{owner}/{repo}")
        def delete_repo(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            del self.repos[repo.full_name.lower()]
            return empty_response(204)

        # -- branches
        @r.route("GET", "/repos/{owner}/{repo}/branches")
        def list_branches(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            chunk, headers = link_paginate(
                req, sorted(repo.branches), default_size=DEFAULT_PAGE, max_size=MAX_ITEMS
            )
            return json_response(200, [self.branch_json(repo, b) for b in chunk], headers)

        @r.route("POST", "/repos/{owner}/{repo}/branches")
        def create_branch(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            body = req.json() or {}
            name = body.get("new_branch_name", "")
            if name in repo.branches:
                raise _error(409, "The branch already exists.", base)
            old = body.get("old_ref_name") or body.get("old_branch_name") or repo.default_branch
            try:
                sha = self.resolve(repo, old)
            except HttpError:
                raise _error(404, "The old branch does not exist", base) from None
            repo.branches[name] = sha
            return json_response(201, self.branch_json(repo, name))

        @r.route("GET", "/repos/{owner}/{repo}/branches/{branch}")
        def get_branch(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            if req.params["branch"] not in repo.branches:
                raise _error(404, "Branch not found", base)
            return json_response(200, self.branch_json(repo, req.params["branch"]))

        @r.route("DELETE", "/repos/{owner}/{repo}/branches/{branch}")
        def delete_branch(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req, write=True)
            name = req.params["branch"]
            if name not in repo.branches:
                raise _error(404, "Branch not found", base)
            if name == repo.default_branch:
                raise _error(403, "can not delete default branch", base)
            del repo.branches[name]
            return empty_response(204)

        # -- contents
        @r.route("GET", "/repos/{owner}/{repo}/contents/{filepath}")
        def get_contents(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            ref = req.query.get("ref") or repo.default_branch
            commit = repo.commits[self.resolve(repo, ref)]
            path = req.params["filepath"].strip("/")
            if path in commit.tree:
                return json_response(200, self.contents_json(repo, ref, path, commit))
            below = sorted(
                {p[len(path) + 1 :].split("/", 1)[0] for p in commit.tree if p.startswith(path + "/")}
            )
            if not below:
                raise _error(404, f"object does not exist [id: , rel_path: {path}]", base)
            return json_response(
                200,
                [self._dir_entry(repo, ref, f"{path}/{n}", f"{path}/{n}" not in commit.tree) for n in below],
            )

        def write_file(req: FakeRequest, *, create: bool) -> httpx.Response:
            repo, me = self.repo_for(req, write=True)
            body = req.json() or {}
            path = req.params["filepath"].strip("/")
            branch = body.get("branch") or repo.default_branch
            parent = repo.branches.get(branch)
            if parent is None and repo.branches:
                raise _error(404, f"branch does not exist [name: {branch}]", base)
            tree = dict(repo.commits[parent].tree) if parent else {}
            if create and path in tree:
                raise _error(422, f"repository file already exists [path: {path}]", base)
            if not create:
                if path not in tree:
                    raise _error(404, f"repository file does not exist [path: {path}]", base)
                current = blob_sha(tree[path])
                if body.get("sha") != current:
                    raise _error(
                        422, f"sha does not match [given: {body.get('sha')}, expected: {current}]", base
                    )
            try:
                data = base64.b64decode(body.get("content", ""), validate=True)
            except (binascii.Error, ValueError):
                raise _error(422, "invalid base64 content", base) from None
            tree[path] = data
            user = self.users[me]
            author = body.get("author") or {}
            who = (author.get("name") or user.full_name, author.get("email") or user.email)
            message = body.get("message") or (f"Add {path}" if create else f"Update {path}")
            commit = self.make_commit(repo, tree, [parent] if parent else [], message, who)
            target = body.get("new_branch") or branch
            repo.branches[target] = commit.sha
            api = f"{self.api}/repos/{repo.full_name}"
            payload = {
                "content": self.contents_json(repo, target, path, commit),
                "commit": {
                    "url": f"{api}/git/commits/{commit.sha}",
                    "sha": commit.sha,
                    "created": _iso(commit.date),
                    "html_url": f"{base}/{repo.full_name}/commit/{commit.sha}",
                    "author": {"name": who[0], "email": who[1], "date": _iso(commit.date)},
                    "committer": {"name": who[0], "email": who[1], "date": _iso(commit.date)},
                    "parents": [self._commit_meta(repo, p) for p in commit.parents],
                    "message": message,
                    "tree": {
                        "url": f"{api}/git/trees/{commit.sha}",
                        "sha": commit.sha,
                        "created": _iso(commit.date),
                    },
                },
                "verification": {
                    "verified": False,
                    "reason": "gpg.error.not_signed_commit",
                    "signature": "",
                    "signer": None,
                    "payload": "",
                },
            }
            return json_response(201 if create else 200, payload)

        @r.route("POST", "/repos/{owner}/{repo}/contents/{filepath}")
        def create_file(req: FakeRequest) -> httpx.Response:
            return write_file(req, create=True)

        @r.route("PUT", "/repos/{owner}/{repo}/contents/{filepath}")
        def update_file(req: FakeRequest) -> httpx.Response:
            return write_file(req, create=False)

        # -- commits
        @r.route("GET", "/repos/{owner}/{repo}/commits")
        def list_commits(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            if not repo.branches:
                raise _error(409, "Git Repository is empty", base)
            commits = self.log(repo, self.resolve(repo, req.query.get("sha")))
            path = req.query.get("path")
            if path:
                commits = [
                    c
                    for c in commits
                    if c.tree.get(path) != (repo.commits[c.parents[0]].tree.get(path) if c.parents else None)
                ]
            chunk, headers = link_paginate(req, commits, default_size=DEFAULT_PAGE, max_size=MAX_ITEMS)
            files = req.query.get("files", "true") != "false"
            stat = req.query.get("stat", "true") != "false"
            return json_response(
                200, [self.commit_json(repo, c, files=files, stat=stat) for c in chunk], headers
            )

        @r.route("GET", "/repos/{owner}/{repo}/git/commits/{sha}")
        def get_commit(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            sha = self.resolve(repo, req.params["sha"])
            return json_response(200, self.commit_json(repo, repo.commits[sha]))

        @r.route("GET", "/repos/{owner}/{repo}/compare/{basehead}")
        def compare(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            spec = req.params["basehead"]
            sep = "..." if "..." in spec else ".."
            base_ref, _, head_ref = spec.partition(sep)
            base_sha, head_sha = self.resolve(repo, base_ref), self.resolve(repo, head_ref)
            commits = self.log(repo, head_sha, exclude=base_sha)
            payload: dict[str, Any] = {
                "total_commits": len(commits),
                "commits": [self.commit_json(repo, c) for c in commits],
            }
            if self.flavour == "forgejo":
                mb = self.merge_base(repo, base_sha, head_sha)
                payload["files"] = [
                    {"filename": x["path"], "status": x["status"]}
                    for x in self.diff(repo.commits[mb].tree if mb else {}, repo.commits[head_sha].tree)
                ]
            return json_response(200, payload)

        # -- pull requests
        @r.route("GET", "/repos/{owner}/{repo}/pulls")
        def list_pulls(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            state = req.query.get("state", "open")
            pulls = [
                p
                for p in sorted(repo.pulls.values(), key=lambda p: -p.index)
                if state == "all" or p.state == state
            ]
            chunk, headers = link_paginate(req, pulls, default_size=DEFAULT_PAGE, max_size=MAX_ITEMS)
            return json_response(200, [self.pull_json(repo, p) for p in chunk], headers)

        @r.route("POST", "/repos/{owner}/{repo}/pulls")
        def create_pull(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            body = req.json() or {}
            head, base_ref = body.get("head", ""), body.get("base", "")
            if head not in repo.branches or base_ref not in repo.branches:
                raise _error(404, "base or head branch does not exist", base)
            if not body.get("title"):
                raise _error(422, "[Title]: Required", base)
            for p in repo.pulls.values():
                if p.state == "open" and p.head == head and p.base == base_ref:
                    raise _error(
                        409,
                        f"pull request already exists for these targets [id: {p.id}, "
                        f"issue_id: {p.id}, head_repo_id: {repo.id}, base_repo_id: {repo.id}, "
                        f"head_branch: {head}, base_branch: {base_ref}]",
                        base,
                    )
            if not self.log(repo, repo.branches[head], exclude=repo.branches[base_ref]):
                raise _error(422, "There are no changes between the head and the base", base)
            when = self.now()
            pr = Pull(
                repo.next_index,
                self._id(),
                body["title"],
                body.get("body", ""),
                head,
                base_ref,
                me,
                when,
                when,
                head_sha=repo.branches[head],
                base_sha=repo.branches[base_ref],
            )
            repo.next_index += 1
            repo.pulls[pr.index] = pr
            return json_response(201, self.pull_json(repo, pr))

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{index}")
        def get_pull(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            return json_response(200, self.pull_json(repo, self._pull(repo, req)))

        @r.route("PATCH", "/repos/{owner}/{repo}/pulls/{index}")
        def edit_pull(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            pr = self._pull(repo, req)
            if me != pr.user and not self.can_write(repo, me):
                raise _error(403, "user should have permission to edit the pull request", base)
            body = req.json() or {}
            if "base" in body and body["base"] != pr.base:
                if body["base"] not in repo.branches:
                    raise _error(404, "new base branch does not exist", base)
                pr.base = body["base"]
            for key in ("title", "body"):
                if key in body:
                    setattr(pr, key, body[key])
            state = body.get("state")
            if state in ("open", "closed") and state != pr.state:
                if pr.merged:
                    raise _error(409, "cannot change state of a merged pull request", base)
                if state == "closed":
                    pr.head_sha, pr.base_sha = self._pull_shas(repo, pr)
                    pr.closed_at = self.now()
                else:
                    pr.closed_at = None
                pr.state = state
            pr.updated = self.now()
            return json_response(201, self.pull_json(repo, pr))

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{index}/merge")
        def is_merged(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            pr = self._pull(repo, req)
            return empty_response(204 if pr.merged else 404)

        @r.route("POST", "/repos/{owner}/{repo}/pulls/{index}/merge")
        def merge_pull(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req, write=True)
            pr = self._pull(repo, req)
            body = req.json() or {}
            if pr.merged or pr.state != "open":
                raise HttpError(
                    405, {"message": "The PR is already merged or closed", "url": f"{base}/api/swagger"}
                )
            head_sha, base_sha = self._pull_shas(repo, pr)
            if body.get("head_commit_id") and body["head_commit_id"] != head_sha:
                raise _error(409, "head out of date", base)
            try:
                merged_sha = self._merge(
                    repo,
                    pr,
                    body.get("Do", "merge"),
                    head_sha,
                    base_sha,
                    me,
                    body.get("MergeTitleField"),
                    body.get("MergeMessageField"),
                )
            except MergeConflict as exc:
                raise HttpError(
                    405, {"message": f"Merge conflict in {exc}", "url": f"{base}/api/swagger"}
                ) from None
            repo.branches[pr.base] = merged_sha
            when = self.now()
            pr.merged, pr.state, pr.merge_sha, pr.merged_at, pr.merged_by = (
                True,
                "closed",
                merged_sha,
                when,
                me,
            )
            pr.closed_at = pr.updated = when
            pr.head_sha, pr.base_sha = head_sha, base_sha
            return empty_response(200)

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{index}/files")
        def pull_files(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            pr = self._pull(repo, req)
            head_sha, base_sha = self._pull_shas(repo, pr)
            mb = self.merge_base(repo, base_sha, head_sha)
            changes = self.diff(repo.commits[mb].tree if mb else {}, repo.commits[head_sha].tree)
            chunk, headers = link_paginate(req, changes, default_size=DEFAULT_PAGE, max_size=MAX_ITEMS)
            html = f"{base}/{repo.full_name}"
            api = f"{self.api}/repos/{repo.full_name}"
            return json_response(
                200,
                [
                    {
                        "filename": c["path"],
                        "status": c["status"],
                        "additions": c["additions"],
                        "deletions": c["deletions"],
                        "changes": c["additions"] + c["deletions"],
                        "html_url": f"{html}/src/commit/{head_sha}/{c['path']}",
                        "contents_url": f"{api}/contents/{c['path']}?ref={head_sha}",
                        "raw_url": f"{html}/raw/commit/{head_sha}/{c['path']}",
                    }
                    for c in chunk
                ],
                headers,
            )

        @r.route("GET", "/repos/{owner}/{repo}/pulls/{index}/reviews")
        def list_reviews(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            pr = self._pull(repo, req)
            chunk, headers = link_paginate(
                req, repo.reviews.get(pr.index, []), default_size=DEFAULT_PAGE, max_size=MAX_ITEMS
            )
            return json_response(200, [self.review_json(repo, pr, x) for x in chunk], headers)

        @r.route("POST", "/repos/{owner}/{repo}/pulls/{index}/reviews")
        def create_review(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req)
            pr = self._pull(repo, req)
            body = req.json() or {}
            event = body.get("event") or "PENDING"
            text = (body.get("body") or "").strip()
            if event in ("APPROVED", "REQUEST_CHANGES") and me == pr.user:
                raise _error(
                    422, "reviewer cannot approve or request changes on their own pull request", base
                )
            if event in ("COMMENT", "REQUEST_CHANGES") and not text and not body.get("comments"):
                raise _error(422, f"review event {event} requires a body or a comment", base)
            head_sha, _ = self._pull_shas(repo, pr)
            review = ReviewObj(
                self._id(), me, event, body.get("body") or "", body.get("commit_id") or head_sha, self.now()
            )
            repo.reviews.setdefault(pr.index, []).append(review)
            return json_response(200, self.review_json(repo, pr, review))

        # -- statuses
        @r.route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
        def create_status(req: FakeRequest) -> httpx.Response:
            repo, me = self.repo_for(req, write=True)
            sha = req.params["sha"]
            if sha not in repo.commits:
                raise _error(404, f"object does not exist [id: {sha}, rel_path: ]", base)
            body = req.json() or {}
            status = StatusObj(
                self._id(),
                sha,
                body.get("state", "pending"),
                body.get("context") or "default",
                body.get("description", ""),
                body.get("target_url", ""),
                me,
                self.now(),
            )
            repo.statuses.append(status)
            return json_response(201, self.status_json(repo, status))

        @r.route("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses")
        def list_statuses(req: FakeRequest) -> httpx.Response:
            repo, _ = self.repo_for(req)
            sha = self.resolve(repo, req.params["ref"])
            found = [s for s in reversed(repo.statuses) if s.sha == sha]
            chunk, headers = link_paginate(req, found, default_size=DEFAULT_PAGE, max_size=MAX_ITEMS)
            return json_response(200, [self.status_json(repo, s) for s in chunk], headers)

    def _merge(
        self,
        repo: Repo,
        pr: Pull,
        style: str,
        head: str,
        base: str,
        me: str,
        title: str | None,
        message: str | None,
    ) -> str:
        user = self.users[me]
        who = (user.full_name, user.email)
        mb = self.merge_base(repo, base, head)
        base_tree = repo.commits[mb].tree if mb else {}
        subject = title or f"Merge pull request '{pr.title}' (#{pr.index}) from {pr.head} into {pr.base}"
        text = subject + (f"\n\n{message}" if message else "")
        if style == "fast-forward-only":
            if mb != base:
                raise MergeConflict("(not a fast-forward)")
            return head
        if style in ("rebase", "rebase-merge"):
            tip = head
            if mb != base:
                tip = base
                for c in reversed(self.log(repo, head, exclude=base)):
                    parent_tree = repo.commits[c.parents[0]].tree if c.parents else {}
                    tree = self.three_way(parent_tree, repo.commits[tip].tree, c.tree)
                    tip = self.make_commit(repo, tree, [tip], c.message, c.author).sha
            if style == "rebase":
                return tip
            return self.make_commit(repo, repo.commits[tip].tree, [base, tip], text, who).sha
        tree = self.three_way(base_tree, repo.commits[base].tree, repo.commits[head].tree)
        if style == "squash":
            squashed = text if title else f"{pr.title} (#{pr.index})" + (f"\n\n{message}" if message else "")
            return self.make_commit(repo, tree, [base], squashed, who).sha
        if style == "merge":
            return self.make_commit(repo, tree, [base, head], text, who).sha
        raise MergeConflict(f"(merge style {style} is not supported by the fake)")
