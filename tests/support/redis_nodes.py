"""Redis for tests: the shared one at ``QUIVER_TEST_REDIS_URL``, and servers of our own.

The shared Redis (``redis://127.0.0.1:6379/0`` by default) is never stopped or
flushed: a test writes under a prefix of its own (:func:`unique_prefix`) and deletes
its keys afterwards.  A test that stops Redis, or needs a Cluster or a Sentinel,
starts :class:`RedisServer` processes of its own on free ports.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from quiver.plugins.counters.redis_url import masked

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
NO_RETRY = Retry(NoBackoff(), 0)


def redis_url() -> str:
    return os.environ.get("QUIVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when ``CI=true`` (CI always has the service)."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require_redis() -> str:
    """The URL of the shared test Redis, once it answers."""
    url = redis_url()
    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except (redis.RedisError, OSError) as exc:
        unavailable(f"Redis at {masked(url)} is unreachable ({exc}); set QUIVER_TEST_REDIS_URL")
    return url


def require_redis_server() -> str:
    """The redis-server program, for tests that start their own."""
    if not os.access(REDIS_SERVER, os.X_OK):
        unavailable("redis-server is not installed (apt-get install redis-server)")
    return REDIS_SERVER


def unique_prefix() -> str:
    return f"quiver-test:{uuid.uuid4().hex[:12]}:"


def delete_prefixed(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` in the Redis at ``url``."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def free_port(*, bus: bool = False) -> int:
    """A free TCP port on 127.0.0.1 (``bus``: and port + 10000, for a Cluster node)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not bus:
            return port
        if port + 10000 < 65536:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


class RedisServer:
    """A redis-server process of this test, without persistence, on ``port``."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        args: Sequence[str] = (),
        config: Path | None = None,
    ) -> None:
        """``config``: a config file read first (a Sentinel's, with ``--sentinel``)."""
        self.directory = directory
        self.config = config
        self.port = port if port is not None else free_port()
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = [str(self.config)] if self.config is not None else []
        command = [require_redis_server(), *config, "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.directory), *self.args]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return self
            except redis.RedisError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"redis-server on port {self.port} did not start") from exc
                time.sleep(0.02)

    def client(self) -> redis.Redis:
        """A client of this server (with its password), that never retries."""
        args = self.args
        password = args[args.index("--requirepass") + 1] if "--requirepass" in args else None
        return redis.Redis(port=self.port, password=password, socket_timeout=5, retry=NO_RETRY)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@contextmanager
def redis_servers(
    directory: Path, count: int, args: Sequence[str] = ()
) -> Iterator[list[RedisServer]]:
    """``count`` redis-servers of this test, stopped at the end whatever happens."""
    servers: list[RedisServer] = []
    try:
        for index in range(count):
            port = free_port(bus="--cluster-enabled" in args)
            servers.append(RedisServer(directory / str(index), port, args).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


def create_cluster(nodes: Sequence[RedisServer], timeout: float = 20.0) -> None:
    """Join ``nodes`` (started with ``--cluster-enabled yes``) into a Cluster of masters
    and wait until every node reports it healthy."""
    addresses = [f"127.0.0.1:{node.port}" for node in nodes]
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    for node in nodes:
        with node.client() as client:
            while client.cluster("info")["cluster_state"] != "ok":
                assert time.monotonic() < deadline, "the cluster did not become healthy"
                time.sleep(0.05)
