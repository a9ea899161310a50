"""What the queue provider's tests share: a Redis of their own keys, and queue requests as Paved reads them.

The tests run against a real Redis (`PAVED_TEST_REDIS_URL`, by default database 15 of this machine's),
under a key prefix of each test's own, removed afterwards. Without a Redis they are skipped with how to
start one, except under `CI=true`, where they fail: CI must provide it (Paved's own rule).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

# From a checkout, the package is importable without installing it (Paved's tests install it for real).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import RepoConfig
from bot.model import MemoryTree, Resource
from bot.provider import Target

REDIS_URL = os.environ.get("PAVED_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
VARIABLE = "PAVED_QUEUE_REDIS_URL"
PLATFORM = "acme/platform"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if in_ci():
            pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); CI must provide it", pytrace=False)
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}). Start one with `redis-server --daemonize "
                    "yes` (Debian: `sudo apt-get install redis-server`) or set PAVED_TEST_REDIS_URL")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted when the test ends."""
    mine = f"paved-test-{uuid.uuid4().hex[:12]}:"
    yield mine
    for key in redis_client.scan_iter(match=f"{mine}*"):
        redis_client.delete(key)


def target(prefix: str, platform_repo: str = PLATFORM, **settings: Any) -> Target:
    """The merged platform repo as the provider sees it: paved.yaml puts queues on $PAVED_QUEUE_REDIS_URL."""
    section = {"connectionEnv": VARIABLE, "keyPrefix": prefix, **settings}
    return Target(organization="acme", platform_repo=platform_repo, tree=MemoryTree({}), revision="0" * 40,
                  config=RepoConfig(providers={"queue": section}))


def queue(name: str = "orders-placed", *, owner: str = "payments", **spec: Any) -> Resource:
    """A Queue request, as Paved hands it to its provider."""
    wanted = {"service": "checkout", "consumerGroups": ["fulfilment"], "retentionHours": 72, "maxLength": 1000,
              **spec}
    data = {"apiVersion": "paved/v1", "kind": "Queue",
            "metadata": {"name": name, "owner": owner, "description": "Orders the web shop took."}, "spec": wanted}
    return Resource("Queue", name, owner, "catalog/queues/orders.yaml", 0, 1, data)
