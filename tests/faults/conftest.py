"""Fixtures: the machine's Redis under a private prefix, a scripted Gitea-shaped upstream."""

from tests.faults.support import no_redis, private_redis, redis_env, redis_prefix, upstream

__all__ = ["no_redis", "private_redis", "redis_env", "redis_prefix", "upstream"]
