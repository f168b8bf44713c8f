"""The Redis counter store on a Redis Cluster and behind a Sentinel, both started by
the test (redis-server on free ports)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quiver.plugins.counters import Verdict, Window, resolved
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.redis import RedisCounters
from tests.support.redis_nodes import (
    RedisServer,
    create_cluster,
    free_port,
    redis_servers,
    require_redis_server,
)

pytestmark = pytest.mark.timeout(90)

T0 = 1_700_000_040.0


def takes_per_key(url: str, keys: int, each: int, window: Window) -> list[list[Verdict]]:
    """``each`` concurrent takes for each of ``keys`` keys, through two stores (nodes)."""

    async def run() -> list[list[Verdict]]:
        stores = [RedisCounters(url, timeout=5.0) for _ in range(2)]
        try:
            calls = [
                stores[n % 2].take(b"key-%d" % key, (window,))
                for n in range(each)
                for key in range(keys)
            ]
            verdicts = await asyncio.gather(*calls)
        finally:
            for store in stores:
                await store.aclose()
        return [list(verdicts[key::keys]) for key in range(keys)]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    require_redis_server()
    directory = tmp_path_factory.mktemp("cluster")
    with redis_servers(directory, 3, ["--cluster-enabled", "yes"]) as nodes:
        create_cluster(nodes)
        yield nodes


def test_a_cluster_counts_every_key_exactly(cluster: list[RedisServer]) -> None:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster[:2])
    per_key = takes_per_key(url, keys=40, each=50, window=Window(20, 60))
    assert [sum(v.allowed for v in verdicts) for verdicts in per_key] == [20] * 40
    # the keys landed on every node, each key's windows on one
    counts = []
    for node in cluster:
        with node.client() as client:
            counts.append(client.dbsize())
    assert sum(counts) == 40 and all(counts), counts


def test_a_cluster_gets_the_local_verdicts(cluster: list[RedisServer]) -> None:
    url = f"redis+cluster://127.0.0.1:{cluster[0].port}"
    now = [T0]
    windows = (Window(3, 1), Window(10, 60), Window(5, 10, "token_bucket"))

    async def run() -> None:
        local = LocalCounters(clock=lambda: now[0])
        remote = RedisCounters(url, timeout=5.0, prefix="same:", clock=lambda: now[0])
        try:
            for step in range(300):
                now[0] += (0.0, 0.3, 1.1, 7.0)[step % 4]
                key = b"k%d" % (step % 5)
                expected = local.take(key, windows)
                assert await resolved(remote.take(key, windows)) == expected
        finally:
            local.close()
            await remote.aclose()

    asyncio.run(run())


def write_sentinel_config(directory: Path, master: RedisServer) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "sentinel.conf"
    path.write_text(
        f"sentinel monitor quiver 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds quiver 1000\n"
        "sentinel failover-timeout quiver 5000\n"
    )
    return path


def test_sentinel_names_the_master_and_its_successor(tmp_path: Path) -> None:
    require_redis_server()
    master = RedisServer(tmp_path / "master").start()
    replica = RedisServer(
        tmp_path / "replica", args=["--replicaof", "127.0.0.1", str(master.port)]
    ).start()
    sentinel = RedisServer(
        tmp_path / "sentinel",
        free_port(),
        args=["--sentinel"],
        config=write_sentinel_config(tmp_path / "sentinel", master),
    )
    try:
        sentinel.start()
        url = f"redis+sentinel://127.0.0.1:{sentinel.port}/quiver/0"
        per_key = takes_per_key(url, keys=4, each=250, window=Window(100, 60))
        assert [sum(v.allowed for v in verdicts) for verdicts in per_key] == [100] * 4
        with sentinel.client() as client:
            # the sentinel finds replicas through the master's INFO (every 10 s): a
            # failover asked before it knows a healthy one is refused (NOGOODSLAVE)
            deadline = time.monotonic() + 30
            while not any(
                int(known["port"]) == replica.port and known.get("master-link-status") == "ok"
                for known in client.sentinel_slaves("quiver")
            ):
                assert time.monotonic() < deadline, "the sentinel never saw the replica"
                time.sleep(0.05)
            client.execute_command("SENTINEL", "FAILOVER", "quiver")
            # (get-master-addr-by-name names the successor as soon as the failover
            # starts; the master table switches once it is done)
            while client.sentinel_master("quiver")["port"] != replica.port:
                assert time.monotonic() < deadline, "the failover did not happen"
                time.sleep(0.05)

        async def after_failover() -> tuple[Verdict, list[bytes]]:
            store = RedisCounters(url, timeout=2.0, prefix="after:")
            try:
                verdict = await store.take(b"key", (Window(1, 60),))
                return verdict, store.keys(b"key", 1)
            finally:
                await store.aclose()

        verdict, keys = asyncio.run(after_failover())
        assert verdict.allowed
        with replica.client() as client:  # the master now, and the count is there
            assert client.role()[0] == b"master"
            assert client.exists(*keys) == 1
    finally:
        for server in (sentinel, replica, master):
            server.stop()
