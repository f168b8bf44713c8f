"""Counter stores to test, each with a clock the test sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from quiver.plugins.counters import Counters
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.redis import RedisCounters
from tests.support.redis_nodes import delete_prefixed, require_redis, unique_prefix

MakeStore = Callable[[Callable[[], float]], Counters]


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    """The shared test Redis and a key prefix of this test's own, cleaned up after."""
    url = require_redis()
    prefix = unique_prefix()
    yield url, prefix
    delete_prefixed(url, prefix)


@pytest.fixture(params=["local", "redis"])
def make_store(request: pytest.FixtureRequest) -> MakeStore:
    """Makes the store named by the parameter, reading time from the clock given."""
    if request.param == "local":
        return lambda clock: LocalCounters(clock=clock)
    url, prefix = request.getfixturevalue("redis_prefix")
    return lambda clock: RedisCounters(url, timeout=2.0, prefix=prefix, clock=clock)
