"""Routing-relevant facts read from an operation's parameters."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mosaic.catalog.base import Operation


def extract_resource(op: Operation, params: BaseModel) -> dict[str, Any]:
    """``org``, ``repo``, ``name``, ``private``, ``build`` facts — only those present."""
    data = params.__dict__
    res: dict[str, Any] = {"service": op.service}
    repo = data.get("repo")
    if isinstance(repo, str):
        org, _, name = repo.rpartition("/")
        res.update(repo=repo, org=org, name=name)
    elif op.name == "create_repository":
        owner = data.get("owner")
        if owner:
            res.update(org=owner, repo=f"{owner}/{data['name']}", name=data["name"])
        else:
            res.update(name=data["name"])
    for key in ("private", "project", "space", "space_id"):
        value = data.get(key)
        if value is not None:
            res[key] = value
    build: dict[str, Any] = {}
    if data.get("size_bytes") is not None:
        build["size"] = data["size_bytes"]
    if data.get("public") is not None:
        build["public"] = data["public"]
    if build:
        res["build"] = build
    return res
