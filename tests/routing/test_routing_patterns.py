"""Every pattern type routes what it says, through the compiled matcher and the reference."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.routing.fakes import engine, request, route

from mosaic.routing.patterns import alternatives, parse_pattern
from mosaic.routing.rules import Facts


def one_rule(pattern: str, **extra: Any) -> Any:
    """`pattern` -> a; everything else falls back to the default instance c."""
    return engine({"rules": [{"pattern": pattern, "provider": "a", "priority": 10, **extra}]}, default="c")


def agrees(eng: Any, op: str, params: dict[str, Any], **kw: Any) -> list[str]:
    """Route through the compiled matcher and check the reference evaluator agrees."""
    ctx, operation = request(op, params, **kw)
    rs = eng.current
    compiled = rs.match(Facts(ctx, operation))
    reference = rs.reference().match(Facts(ctx, operation))
    assert [t.key() for t in compiled] == [t.key() for t in reference]
    return route(eng, op, params, **kw)


@pytest.mark.parametrize(("pattern", "repo", "hit"), [
    ("org:internal-*", "internal-tools/api", True),
    ("org:internal-*", "Internal-Tools/api", True),  # forges compare owners case-insensitively
    ("org:internal-*", "external/api", False),
    ("org:acme", "acme/api", True),
    ("org:acme", "acme-labs/api", False),
    ("org:{acme,globex}", "globex/web", True),
    ("org:team-?", "team-a/x", True),
    ("org:team-?", "team-ab/x", False),
    ("repo:acme/api", "acme/api", True),
    ("repo:acme/api", "acme/api2", False),
    ("repo:acme/*", "acme/web", True),
    ("repo:acme/svc-{a,b}", "acme/svc-b", True),
    ("repo:acme/svc-{a,b}", "acme/svc-c", False),
    ("acme/**", "acme/sub/deep", True),
    ("acme/*", "acme/sub/deep", False),
    ("*/docs", "anyone/docs", True),
    ("*/docs", "anyone/api", False),
    ("**/legacy-*", "org/group/legacy-app", True),
    ("@(acme|globex)/api", "globex/api", True),
    ("!org:internal-*", "public/api", True),
    ("!org:internal-*", "internal-x/api", False),
    ("!(internal-*)/api", "public/api", True),
    ("!(internal-*)/api", "internal-x/api", False),
])
def test_repository_patterns(pattern: str, repo: str, hit: bool) -> None:
    eng = one_rule(pattern)
    assert agrees(eng, "git.get_repository", {"repo": repo})[0] == ("a" if hit else "c")


def test_user_pattern_reads_the_caller() -> None:
    eng = one_rule("user:bot-*")
    assert agrees(eng, "git.get_repository", {"repo": "x/y"}, user="bot-ci") == ["a"]
    assert agrees(eng, "git.get_repository", {"repo": "x/y"}, user="alice") == ["c"]


def test_private_pattern_reads_stated_visibility() -> None:
    eng = one_rule("private:true")
    assert agrees(eng, "git.create_repository", {"name": "x", "owner": "o", "private": True}) == ["a"]
    assert agrees(eng, "git.create_repository", {"name": "x", "owner": "o", "private": False}) == ["c"]
    # A read does not state visibility: the rule cannot apply (no lookup on the request path).
    assert agrees(eng, "git.get_repository", {"repo": "o/x"}) == ["c"]
    assert agrees(one_rule("private:false"), "git.update_repository", {"repo": "o/x", "private": False}) == ["a"]
    assert agrees(one_rule("!private:true"), "git.get_repository", {"repo": "o/x"}) == ["a"]


def test_new_repos_pattern_matches_creations_only() -> None:
    eng = one_rule("new-repos:*")
    assert agrees(eng, "git.create_repository", {"name": "fresh", "owner": "acme"}) == ["a"]
    assert agrees(eng, "git.create_repository", {"name": "fresh"}) == ["a"]  # no owner: caller's namespace
    assert agrees(eng, "git.get_repository", {"repo": "acme/fresh"}) == ["c"]
    by_name = one_rule("new-repos:svc-*")
    assert agrees(by_name, "git.create_repository", {"name": "svc-pay", "owner": "acme"}) == ["a"]
    assert agrees(by_name, "git.create_repository", {"name": "web", "owner": "acme"}) == ["c"]
    by_owner = one_rule("new-repos:team-a/*")
    assert agrees(by_owner, "git.create_repository", {"name": "x", "owner": "team-a"}) == ["a"]
    assert agrees(by_owner, "git.create_repository", {"name": "x", "owner": "team-b"}) == ["c"]


def test_legacy_pattern_reads_the_legacy_set() -> None:
    eng = engine({"legacy": ["old-org/*", "acme/monolith"],
                  "rules": [{"pattern": "legacy:*", "provider": "a", "priority": 10},
                            {"pattern": "legacy:acme/*", "provider": "b", "priority": 20}]}, default="c")
    assert agrees(eng, "git.get_repository", {"repo": "old-org/thing"}) == ["a"]
    assert agrees(eng, "git.get_repository", {"repo": "acme/monolith"}) == ["b", "a"]
    assert agrees(eng, "git.get_repository", {"repo": "acme/new-service"}) == ["c"]
    assert agrees(eng, "git.list_repositories", {}) == ["c"]


def test_match_all_patterns_apply_without_a_repository() -> None:
    for p in ("*", "**"):
        assert agrees(one_rule(p), "git.list_repositories", {}) == ["a"]
    assert agrees(one_rule("!*"), "git.list_repositories", {}) == ["c"]


@pytest.mark.parametrize(("pattern", "problem"), [
    ("owner:acme", "unknown type 'owner:'"),
    ("org:", "needs a glob"),
    ("private:maybe", "takes true or false"),
    ("org:has space", "never occur in names"),
    ("!!org:x", "double negation"),
    ("", "empty pattern"),
])
def test_bad_patterns_are_config_errors_naming_the_rule(pattern: str, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        one_rule(pattern)
    text = str(info.value)
    assert "rules.0.pattern" in text and problem in text


def test_brace_alternatives_are_indexed_separately() -> None:
    alts = alternatives("acme/{api,web-*}")
    assert [(a.glob, a.exact) for a in alts] == [("acme/api", True), ("acme/web-*", False)]
    assert alts[1].literal_prefix == "acme/web-"
    p = parse_pattern("!repo:Acme/API")
    assert (p.kind, p.field, p.glob, p.negated) == ("repo", "repo", "acme/api", True)
