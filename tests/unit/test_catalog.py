"""The catalog is the single source of every interface: check its declarations are coherent."""

from __future__ import annotations

import re

import pytest

from mosaic.catalog.base import Effect, Entity, Operation, Page
from mosaic.catalog.registry import CATALOG

SEED_OPERATIONS = """
git.create_repository git.get_repository git.update_repository git.delete_repository
git.list_repositories git.create_branch git.merge_branch git.create_pull_request
git.review_pull_request cicd.create_pipeline cicd.trigger_pipeline cicd.get_pipeline_status
cicd.upload_artifact cicd.download_artifact docs.create_document docs.update_document
docs.search_documents docs.create_space docs.organize_content project.create_project
project.update_project project.create_issue project.update_issue project.link_issues
project.create_sprint project.plan_sprint
""".split()

EXPECTED_BESIDES = """
git.get_branch git.list_branches git.delete_branch git.get_file git.put_file git.list_commits
git.get_commit git.compare_commits git.get_pull_request git.list_pull_requests
git.update_pull_request git.merge_pull_request git.close_pull_request git.list_pull_request_files
git.list_reviews git.set_commit_status git.list_commit_statuses
cicd.get_pipeline cicd.list_pipelines cicd.list_runs cicd.cancel_run cicd.rerun cicd.list_jobs
cicd.get_job_log cicd.list_artifacts
docs.get_space docs.list_spaces docs.get_document docs.delete_document docs.list_documents
docs.move_document docs.list_revisions
project.get_project project.list_projects project.get_issue project.list_issues
project.transition_issue project.comment_issue project.create_sprint project.list_sprints
project.get_sprint
""".split()

OPS = list(CATALOG.values())


@pytest.mark.parametrize("name", SEED_OPERATIONS + EXPECTED_BESIDES)
def test_operation_is_declared(name: str) -> None:
    assert name in CATALOG


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.qualified_name)
def test_declaration_is_coherent(op: Operation) -> None:
    assert re.fullmatch(r"[a-z][a-z_]*", op.name)
    assert len(op.tool_name) <= 64
    assert op.summary.endswith(".") and len(op.summary) >= 15
    assert op.rest.path.startswith(f"/{op.service}/")
    fields = set(op.params.model_fields)
    for placeholder in re.findall(r"{(\w+)}", op.rest.path):
        assert placeholder in fields, f"{op.qualified_name}: REST path names unknown field {placeholder}"
    if op.effect is Effect.READ:
        assert op.rest.method == "GET", "reads are GETs"
    else:
        assert op.cache_ttl is None, "writes are never cached"
        assert op.rest.method != "GET"
    for name in op.invalidates:
        target = CATALOG[f"{op.service}.{name}"]
        assert target.is_read
    # Every domain object says where it came from (lists: their items do).
    result = op.result
    if issubclass(result, Page):
        item = result.model_fields["items"].annotation.__args__[0]  # type: ignore[union-attr]
        assert "provider" in item.model_fields
    else:
        assert "provider" in result.model_fields
    op.params.model_json_schema()
    op.result.model_json_schema()


def test_rest_routes_are_unique() -> None:
    seen: dict[tuple[str, str], str] = {}
    for op in OPS:
        key = (op.rest.method, re.sub(r"{\w+}", "{}", op.rest.path))
        assert key not in seen, f"{op.qualified_name} and {seen[key]} share {key}"
        seen[key] = op.qualified_name


def test_entities_carry_identity() -> None:
    assert {"provider", "id", "url", "raw"} <= set(Entity.model_fields)
