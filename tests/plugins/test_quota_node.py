"""quota in a real ``quiver serve``: exact across four workers, kept across a restart."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.support.process import serving, write_config
from tests.support.proxy import Client
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(60)


def quota_config(directory: Path, url: str, limit: int) -> Path:
    return write_config(
        directory,
        f"""\
        listen: 127.0.0.1:0
        workers: 4
        run_dir: {directory / "run"}
        targets:
          - name: backend
            url: {url}
        routes:
          - name: all
            paths: ["/"]
            target: backend
            plugins:
              quota: {{limit: {limit}, period: 30d, by: route}}
        """,
    )


def burst(port: int, count: int) -> list[int]:
    """``count`` requests at once, each on a connection of its own (so the kernel
    spreads them over the workers); their statuses."""
    statuses: list[int] = []
    start = threading.Barrier(count)
    lock = threading.Lock()

    def one() -> None:
        with Client(port) as client:
            start.wait()
            status = client.request("GET", "/").status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def test_a_quota_is_exact_across_workers_and_survives_a_restart(tmp_path: Path) -> None:
    with Upstream(echo) as node:
        path = quota_config(tmp_path, node.url, limit=25)
        with serving(path) as proxy:
            assert burst(proxy.port, 10) == [200] * 10
        with serving(path) as proxy:  # the same run directory: the count goes on
            statuses = burst(proxy.port, 60)
        assert sorted(statuses) == [200] * 15 + [429] * 45
        assert len(node.requests) == 25
