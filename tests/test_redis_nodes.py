"""Two gateways sharing one Redis enforce one limit: real ``quiver serve`` processes,
2,000 concurrent requests of one consumer split across both, exactly the limit let
through."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.process import serving, write_config
from tests.support.redis_nodes import delete_prefixed, require_redis, unique_prefix
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(120)

ALICE_KEY = "alice-key-0123456789"
REQUESTS = 2000
LIMIT = 100


async def get(port: int, path: str, key: str) -> int:
    """One request on its own connection; the status of its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: test\r\napikey: {key}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # the body, up to the close
        return int(head.split(b" ", 2)[1])
    finally:
        writer.close()


async def burst(ports: list[int]) -> Counter[int]:
    calls = [get(ports[n % len(ports)], "/items", ALICE_KEY) for n in range(REQUESTS)]
    return Counter(await asyncio.gather(*calls))


def test_two_gateways_sharing_a_redis_let_exactly_the_limit_through(tmp_path: Path) -> None:
    url = require_redis()
    prefix = unique_prefix()
    with Upstream(echo) as upstream:
        config = f"""\
            listen: 127.0.0.1:0
            targets:
              - name: backend
                url: {upstream.url}
            consumers:
              - name: alice
                credentials:
                  key-auth: [{{key: "{ALICE_KEY}"}}]
            routes:
              - name: items
                paths: ["/items"]
                target: backend
                plugins:
                  key-auth: {{}}
                  rate-limit:
                    limit: {LIMIT}
                    window: 60
                    by: consumer
                    store: redis
                    on_store_error: deny
                    redis: {{url: "{url}", prefix: "{prefix}", timeout: 5}}
            """
        paths = [write_config(tmp_path, config, f"node{n}.yaml") for n in range(2)]
        try:
            with serving(paths[0]) as first, serving(paths[1]) as second:
                started = time.monotonic()
                statuses = asyncio.run(burst([first.port, second.port]))
                elapsed = time.monotonic() - started
        finally:
            delete_prefixed(url, prefix)
    assert statuses == Counter({200: LIMIT, 429: REQUESTS - LIMIT}), statuses
    assert elapsed < 20, f"{REQUESTS} requests took {elapsed:.1f} s"
