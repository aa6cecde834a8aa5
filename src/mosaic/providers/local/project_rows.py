"""Database rows of the local project store -> provider-neutral catalog objects."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mosaic.catalog.project import Comment, Issue, IssueLink, Project, Sprint, WorkflowState


def load_states(text: str) -> list[WorkflowState]:
    return [WorkflowState.model_validate(s) for s in json.loads(text)]


def load_labels(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _raw(row: sqlite3.Row) -> dict[str, Any]:
    raw = dict(row)
    for k in ("states", "labels"):
        if isinstance(raw.get(k), str):
            raw[k] = json.loads(raw[k])
    return raw


class Renderer:
    """Builds catalog objects carrying this instance's id and web URLs."""

    def __init__(self, provider_id: str, base_url: str | None) -> None:
        self.provider = provider_id
        self.base = base_url.rstrip("/") if base_url else None

    def _url(self, path: str) -> str | None:
        return None if self.base is None else f"{self.base}{path}"

    def project(self, row: sqlite3.Row) -> Project:
        key = row["key"]
        return Project(
            provider=self.provider, id=key, url=self._url(f"/projects/{key}"), raw=_raw(row),
            key=key, name=row["name"], description=row["description"], lead=row["lead"],
            states=load_states(row["states"]),
            created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]),
        )

    def link(self, row: sqlite3.Row) -> IssueLink:
        return IssueLink(
            provider=self.provider, id=str(row["id"]), raw=_raw(row),
            type=row["type"], source=row["source_key"], target=row["target_key"],
        )

    def issue(self, row: sqlite3.Row, links: Iterable[sqlite3.Row] = ()) -> Issue:
        project = row["project_key"]
        key = f"{project}-{row['number']}"
        own = [self.link(r) for r in links if row["id"] in (r["source_id"], r["target_id"])]
        return Issue(
            provider=self.provider, id=key, url=self._url(f"/projects/{project}/issues/{key}"),
            raw=_raw(row), project=project, key=key, number=row["number"], title=row["title"],
            description=row["description"], state=row["state"], state_category=row["state_category"],
            priority=row["priority"], estimate=row["estimate"], assignee=row["assignee"],
            labels=load_labels(row["labels"]),
            sprint_id=None if row["sprint_id"] is None else str(row["sprint_id"]),
            links=own, created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]),
        )

    def comment(self, row: sqlite3.Row, issue_key: str) -> Comment:
        project = issue_key.rsplit("-", 1)[0]
        return Comment(
            provider=self.provider, id=str(row["id"]),
            url=self._url(f"/projects/{project}/issues/{issue_key}#comment-{row['id']}"),
            raw=_raw(row), issue=issue_key, body=row["body"], author=row["author"],
            created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]),
        )

    def sprint(self, row: sqlite3.Row) -> Sprint:
        project = row["project_key"]
        return Sprint(
            provider=self.provider, id=str(row["id"]),
            url=self._url(f"/projects/{project}/sprints/{row['id']}"),
            raw=_raw(row), project=project, name=row["name"], goal=row["goal"],
            start=_dt(row["start_at"]), end=_dt(row["end_at"]), state=row["state"],
            capacity=row["capacity"], created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]),
        )
