"""L1 (bounded LRU with TTL and tags) and cache keys/tags."""

from __future__ import annotations

import time

from mosaic.cache.keys import entry_key, negative_tag, read_tags, write_tags
from mosaic.cache.l1 import L1Cache
from mosaic.catalog.git import ListRepositoriesParams, Repository
from mosaic.catalog.registry import CATALOG

GET = CATALOG["git.get_repository"]
LIST = CATALOG["git.list_repositories"]


def test_l1_is_bounded_and_evicts_the_least_recently_used() -> None:
    l1 = L1Cache(3)
    for k in "abc":
        l1.set(k, k, 10, ())
    assert l1.get("a") is not None  # a is now the most recent
    l1.set("d", "d", 10, ())
    assert len(l1) == 3 and l1.get("b") is None and l1.get("a") is not None
    for i in range(1000):
        l1.set(f"k{i}", i, 10, (f"t{i % 7}",))
    assert len(l1) == 3 and l1.evictions >= 998
    assert sum(len(keys) for keys in l1._by_tag.values()) == 3  # the tag index shrinks with it


def test_l1_entries_expire() -> None:
    l1 = L1Cache(10)
    l1.set("a", 1, 0.02, ())
    assert l1.get("a") is not None
    time.sleep(0.03)
    assert l1.get("a") is None and len(l1) == 0


def test_l1_invalidation_by_tag_and_no_resurrection_by_an_older_fetch() -> None:
    l1 = L1Cache(10)
    started = time.monotonic()
    l1.set("x", 1, 10, ("repo:a", "op:get"))
    l1.set("y", 2, 10, ("repo:b", "op:get"))
    assert l1.invalidate(["repo:a"], 300) == 1
    assert l1.get("x") is None and l1.get("y") is not None
    # A fetch that began before that invalidation must not be stored.
    assert l1.set("x", 1, 10, ("repo:a",), fetch_started=started) is False
    assert l1.set("x", 1, 10, ("repo:a",), fetch_started=time.monotonic()) is True
    l1.clear()
    assert l1.set("z", 1, 10, (), fetch_started=started) is False


def test_keys_use_normalized_params() -> None:
    a = entry_key("t1", None, LIST, ListRepositoriesParams())
    b = entry_key("t1", None, LIST, ListRepositoriesParams(limit=30))
    c = entry_key("t1", None, LIST, ListRepositoriesParams(limit=31))
    assert a == b != c
    assert entry_key("t2", None, LIST, ListRepositoriesParams()) != a  # tenants never share
    assert entry_key("t1", "gitea-1", LIST, ListRepositoriesParams()) != a  # nor pinned providers
    assert a.startswith("t1|auto|git.list_repositories|")


def test_writes_invalidate_their_reads() -> None:
    update = CATALOG["git.update_repository"]
    tags = write_tags("t1", update, {"repo": "acme/api"})
    assert "t1|git.get_repository|acme/api" in tags  # that repository's get only
    assert "t1|git.list_repositories" in tags  # every list page of the tenant
    assert "t1|git|missing|acme/api" in tags  # cached NotFound about it
    assert set(read_tags("t1", GET, {"repo": "acme/api"})) & set(tags)
    assert not set(read_tags("t1", GET, {"repo": "acme/web"})) & set(tags)
    assert negative_tag("t1", GET, {"repo": "acme/api"}) in tags
    # A create without an owner learns the repository from its result.
    create = CATALOG["git.create_repository"]
    made = Repository(provider="p", id="1", owner="me", name="x", full_name="me/x")
    assert "t1|git|missing|me/x" in write_tags("t1", create, {"name": "x"}, made)
