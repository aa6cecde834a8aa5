"""SQLite records of the local CI/CD provider: pipelines, runs, jobs and the artifact index."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from pydantic import BaseModel

from mosaic.catalog.base import Page
from mosaic.catalog.cicd import (
    TERMINAL_RUN_STATUSES,
    Artifact,
    Job,
    Pipeline,
    PipelineRun,
    PipelineStep,
    PipelineTrigger,
)
from mosaic.errors import Conflict, InvalidRequest, NotFound, ProviderUnavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    name TEXT NOT NULL,
    steps TEXT NOT NULL,
    triggers TEXT NOT NULL,
    definition TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (repo, name)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    pipeline_id TEXT NOT NULL REFERENCES pipelines(id),
    repo TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    ref TEXT,
    sha TEXT,
    variables TEXT NOT NULL,
    steps TEXT NOT NULL,
    error TEXT,
    rerun_of TEXT,
    owner TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    UNIQUE (pipeline_id, number)
);
CREATE INDEX IF NOT EXISTS runs_by_repo ON runs (repo, pipeline);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE TABLE IF NOT EXISTS jobs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (run_id, number),
    UNIQUE (run_id, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    job TEXT,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, name)
);
"""


M = TypeVar("M", bound=BaseModel)


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _int_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise InvalidRequest(f"invalid cursor {cursor!r}: pass back a `next_cursor` from a previous page")
    return int(cursor)


class CicdStore:
    """All SQL of the provider. Returns catalog models stamped with the provider instance id."""

    def __init__(self, path: Path, provider_id: str) -> None:
        self.path = path
        self.provider_id = provider_id
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    # -- connection ---------------------------------------------------------
    async def open(self) -> None:
        db = await aiosqlite.connect(self.path)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(SCHEMA)
        await db.commit()
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise ProviderUnavailable("the local CI/CD provider is not started", sent=False)
        return self._db

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        # One connection is shared by every coroutine: serialize write transactions so that
        # one coroutine's commit never publishes another's half-done work.
        db = self.db
        async with self._write_lock:
            try:
                yield db
            except BaseException:
                await db.rollback()
                raise
            await db.commit()

    async def _one(self, sql: str, args: Sequence[Any]) -> sqlite3.Row | None:
        async with self.db.execute(sql, args) as cur:
            row: sqlite3.Row | None = await cur.fetchone()
            return row

    async def _all(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        async with self.db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    # -- pipelines ------------------------------------------------------------
    def _pipeline(self, row: sqlite3.Row) -> Pipeline:
        raw = dict(row)
        raw["steps"] = json.loads(row["steps"])
        raw["triggers"] = json.loads(row["triggers"])
        return Pipeline(
            provider=self.provider_id, id=row["id"], repo=row["repo"], name=row["name"],
            steps=[PipelineStep.model_validate(s) for s in raw["steps"]],
            triggers=[PipelineTrigger.model_validate(t) for t in raw["triggers"]],
            definition=row["definition"], created_at=_ts(row["created_at"]),
            updated_at=_ts(row["updated_at"]), raw=raw,
        )

    async def put_pipeline(self, repo: str, name: str, steps: list[PipelineStep],
                           triggers: list[PipelineTrigger], definition: str | None,
                           replace: bool) -> Pipeline:
        stamp = now().isoformat()
        steps_json = json.dumps([s.model_dump(mode="json") for s in steps])
        triggers_json = json.dumps([t.model_dump(mode="json") for t in triggers])
        async with self._tx() as db:
            existing = await self._one("SELECT id FROM pipelines WHERE repo = ? AND name = ?", (repo, name))
            if existing is not None and not replace:
                raise Conflict(
                    f"pipeline {name!r} already exists in {repo}; pass replace=true to redefine it",
                    details={"repo": repo, "pipeline": name})
            if existing is None:
                await db.execute(
                    "INSERT INTO pipelines (id, repo, name, steps, triggers, definition, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (new_id(), repo, name, steps_json, triggers_json, definition, stamp, stamp))
            else:
                await db.execute(
                    "UPDATE pipelines SET steps = ?, triggers = ?, definition = ?, updated_at = ? "
                    "WHERE id = ?", (steps_json, triggers_json, definition, stamp, existing["id"]))
        return await self.get_pipeline(repo, name)

    async def get_pipeline(self, repo: str, name: str) -> Pipeline:
        row = await self._one("SELECT * FROM pipelines WHERE repo = ? AND name = ?", (repo, name))
        if row is None:
            raise NotFound(f"no pipeline {name!r} in {repo}", details={"repo": repo, "pipeline": name})
        return self._pipeline(row)

    async def list_pipelines(self, repo: str, cursor: str | None, limit: int) -> Page[Pipeline]:
        rows = await self._all(
            "SELECT * FROM pipelines WHERE repo = ? AND name > ? ORDER BY name LIMIT ?",
            (repo, cursor or "", limit + 1))
        return _page([self._pipeline(r) for r in rows], limit, lambda p: p.name)

    # -- runs ---------------------------------------------------------------
    def _job(self, row: sqlite3.Row) -> Job:
        return Job(
            provider=self.provider_id, id=f"{row['run_id']}:{row['name']}", run_id=row["run_id"],
            name=row["name"], number=row["number"], status=row["status"], exit_code=row["exit_code"],
            started_at=_ts(row["started_at"]), finished_at=_ts(row["finished_at"]), raw=dict(row),
        )

    def _run(self, row: sqlite3.Row, jobs: list[Job]) -> PipelineRun:
        raw = {k: v for k, v in dict(row).items() if k not in {"steps", "variables", "seq"}}
        raw["variables"] = json.loads(row["variables"])
        raw["steps"] = json.loads(row["steps"])
        return PipelineRun(
            provider=self.provider_id, id=row["id"], repo=row["repo"], pipeline=row["pipeline"],
            number=row["number"], status=row["status"], ref=row["ref"], sha=row["sha"],
            variables=raw["variables"], error=row["error"], rerun_of=row["rerun_of"],
            created_at=_ts(row["created_at"]), started_at=_ts(row["started_at"]),
            finished_at=_ts(row["finished_at"]), jobs=jobs, raw=raw,
        )

    async def _runs_with_jobs(self, rows: list[sqlite3.Row]) -> list[PipelineRun]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ",".join("?" * len(ids))
        job_rows = await self._all(
            f"SELECT * FROM jobs WHERE run_id IN ({marks}) ORDER BY run_id, number", ids)
        by_run: dict[str, list[Job]] = {i: [] for i in ids}
        for jr in job_rows:
            by_run[jr["run_id"]].append(self._job(jr))
        return [self._run(r, by_run[r["id"]]) for r in rows]

    async def create_run(self, pipeline: Pipeline, steps: list[PipelineStep], ref: str | None,
                         sha: str, variables: dict[str, str], owner: str,
                         rerun_of: str | None = None) -> PipelineRun:
        run_id = new_id()
        async with self._tx() as db:
            # Number allocation and insert are one statement, so concurrent triggers (even from
            # another process on the same file) cannot pick the same number.
            await db.execute(
                "INSERT INTO runs (id, pipeline_id, repo, pipeline, number, status, ref, sha, variables, "
                "steps, rerun_of, owner, created_at) SELECT ?, ?, ?, ?, COALESCE(MAX(number), 0) + 1, "
                "'pending', ?, ?, ?, ?, ?, ?, ? FROM runs WHERE pipeline_id = ?",
                (run_id, pipeline.id, pipeline.repo, pipeline.name, ref, sha, json.dumps(variables),
                 json.dumps([s.model_dump(mode="json") for s in steps]), rerun_of, owner,
                 now().isoformat(), pipeline.id))
            await db.executemany(
                "INSERT INTO jobs (run_id, number, name, status) VALUES (?, ?, ?, 'pending')",
                [(run_id, i, s.name, ) for i, s in enumerate(steps, start=1)])
        return await self.get_run(run_id)

    async def get_run(self, run_id: str, repo: str | None = None) -> PipelineRun:
        row = await self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None or (repo is not None and row["repo"] != repo):
            where = f" in {repo}" if repo else ""
            raise NotFound(f"no pipeline run {run_id!r}{where}", details={"run_id": run_id})
        return (await self._runs_with_jobs([row]))[0]

    async def run_steps(self, run_id: str) -> list[PipelineStep]:
        """The steps as they were when the run was triggered (a later redefinition does not apply)."""
        row = await self._one("SELECT steps FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFound(f"no pipeline run {run_id!r}", details={"run_id": run_id})
        return [PipelineStep.model_validate(s) for s in json.loads(row["steps"])]

    async def list_runs(self, repo: str, pipeline: str | None, status: str | None,
                        cursor: str | None, limit: int) -> Page[PipelineRun]:
        sql = "SELECT rowid AS seq, * FROM runs WHERE repo = ?"
        args: list[Any] = [repo]
        if pipeline is not None:
            sql += " AND pipeline = ?"
            args.append(pipeline)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        after = _int_cursor(cursor)
        if after is not None:
            sql += " AND rowid < ?"
            args.append(after)
        rows = await self._all(sql + " ORDER BY rowid DESC LIMIT ?", [*args, limit + 1])
        seqs = {r["id"]: r["seq"] for r in rows}
        runs = await self._runs_with_jobs(rows)
        return _page(runs, limit, lambda r: str(seqs[r.id]))

    async def nonterminal_runs(self) -> list[tuple[str, str]]:
        """(run id, owner) of every run not in a final status."""
        marks = ",".join("?" * len(TERMINAL_RUN_STATUSES))
        rows = await self._all(f"SELECT id, owner FROM runs WHERE status NOT IN ({marks})",
                               sorted(TERMINAL_RUN_STATUSES))
        return [(r["id"], r["owner"]) for r in rows]

    async def run_status(self, run_id: str) -> str:
        row = await self._one("SELECT status FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFound(f"no pipeline run {run_id!r}", details={"run_id": run_id})
        return str(row["status"])

    async def start_run(self, run_id: str) -> bool:
        """pending → running; False when the run is no longer pending (canceled meanwhile)."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE runs SET status = 'running', started_at = ? WHERE id = ? AND status = 'pending'",
                (now().isoformat(), run_id))
            return cur.rowcount == 1

    async def set_run_sha(self, run_id: str, sha: str) -> None:
        async with self._tx() as db:
            await db.execute("UPDATE runs SET sha = ? WHERE id = ?", (sha, run_id))

    async def finish_run(self, run_id: str, status: str, error: str | None = None) -> bool:
        """Move a run to a final status and settle its unfinished jobs; False if it already was final.

        The job left running takes the run's status (canceled/error); jobs never reached are skipped.
        """
        stamp = now().isoformat()
        marks = ",".join("?" * len(TERMINAL_RUN_STATUSES))
        async with self._tx() as db:
            cur = await db.execute(
                f"UPDATE runs SET status = ?, error = COALESCE(?, error), finished_at = ? "
                f"WHERE id = ? AND status NOT IN ({marks})",
                (status, error, stamp, run_id, *sorted(TERMINAL_RUN_STATUSES)))
            if cur.rowcount != 1:
                return False
            running_as = status if status in {"canceled", "error"} else "error"
            await db.execute(
                "UPDATE jobs SET status = ?, finished_at = ? WHERE run_id = ? AND status = 'running'",
                (running_as, stamp, run_id))
            await db.execute("UPDATE jobs SET status = 'skipped' WHERE run_id = ? AND status = 'pending'",
                             (run_id,))
            return True

    # -- jobs ---------------------------------------------------------------
    async def set_job(self, run_id: str, number: int, status: str, *, exit_code: int | None = None,
                      started: bool = False, finished: bool = False) -> None:
        stamp = now().isoformat()
        async with self._tx() as db:
            await db.execute(
                "UPDATE jobs SET status = ?, exit_code = COALESCE(?, exit_code), "
                "started_at = CASE WHEN ? THEN ? ELSE started_at END, "
                "finished_at = CASE WHEN ? THEN ? ELSE finished_at END "
                "WHERE run_id = ? AND number = ?",
                (status, exit_code, started, stamp, finished, stamp, run_id, number))

    async def get_job(self, run_id: str, name: str) -> Job:
        row = await self._one("SELECT * FROM jobs WHERE run_id = ? AND name = ?", (run_id, name))
        if row is None:
            raise NotFound(f"run {run_id!r} has no job {name!r}", details={"run_id": run_id, "job": name})
        return self._job(row)

    async def list_jobs(self, run_id: str, cursor: str | None, limit: int) -> Page[Job]:
        after = _int_cursor(cursor) or 0
        rows = await self._all("SELECT * FROM jobs WHERE run_id = ? AND number > ? ORDER BY number LIMIT ?",
                               (run_id, after, limit + 1))
        return _page([self._job(r) for r in rows], limit, lambda j: str(j.number))

    # -- artifacts ------------------------------------------------------------
    def _artifact(self, row: sqlite3.Row) -> Artifact:
        return Artifact(
            provider=self.provider_id, id=row["id"], run_id=row["run_id"], name=row["name"],
            size=row["size"], digest=f"sha256:{row['digest']}", content_type=row["content_type"],
            job=row["job"], created_at=_ts(row["created_at"]),
            raw={k: v for k, v in dict(row).items() if k != "seq"},
        )

    async def add_artifact(self, run_id: str, name: str, digest: str, size: int, content_type: str,
                           job: str | None, replace: bool = False) -> Artifact:
        artifact_id = new_id()
        async with self._tx() as db:
            existing = await self._one("SELECT id FROM artifacts WHERE run_id = ? AND name = ?",
                                       (run_id, name))
            if existing is not None:
                if not replace:
                    raise Conflict(f"run {run_id!r} already has an artifact named {name!r}",
                                   details={"run_id": run_id, "name": name})
                await db.execute("DELETE FROM artifacts WHERE id = ?", (existing["id"],))
            await db.execute(
                "INSERT INTO artifacts (id, run_id, name, job, digest, size, content_type, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (artifact_id, run_id, name, job, digest, size, content_type, now().isoformat()))
        return await self.get_artifact(artifact_id)

    async def get_artifact(self, artifact_id: str) -> Artifact:
        row = await self._one("SELECT * FROM artifacts WHERE id = ?", (artifact_id,))
        if row is None:
            raise NotFound(f"no artifact {artifact_id!r}", details={"artifact_id": artifact_id})
        return self._artifact(row)

    async def artifact_repo(self, artifact_id: str) -> str:
        row = await self._one("SELECT runs.repo FROM artifacts JOIN runs ON runs.id = artifacts.run_id "
                              "WHERE artifacts.id = ?", (artifact_id,))
        if row is None:
            raise NotFound(f"no artifact {artifact_id!r}", details={"artifact_id": artifact_id})
        return str(row["repo"])

    async def list_artifacts(self, run_id: str, cursor: str | None, limit: int) -> Page[Artifact]:
        after = _int_cursor(cursor) or 0
        rows = await self._all(
            "SELECT rowid AS seq, * FROM artifacts WHERE run_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
            (run_id, after, limit + 1))
        seqs = {r["id"]: r["seq"] for r in rows}
        return _page([self._artifact(r) for r in rows], limit, lambda a: str(seqs[a.id]))


def _page(items: list[M], limit: int, key: Callable[[M], str]) -> Page[Any]:
    if len(items) > limit:
        return Page(items=items[:limit], next_cursor=key(items[limit - 1]))
    return Page(items=items, next_cursor=None)
