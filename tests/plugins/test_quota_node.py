"""quota in a real ``quiver serve``: exact across four workers, kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.process import serving, write_config
from tests.support.proxy import Client
from tests.support.spread import burst, connections, serving_workers
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


def test_a_quota_is_exact_across_workers_and_survives_a_restart(tmp_path: Path) -> None:
    with Upstream(echo) as node:
        path = quota_config(tmp_path, node.url, limit=25)
        with serving(path) as proxy, Client(proxy.port) as client:
            assert [client.request("GET", "/").status for _ in range(10)] == [200] * 10
        # the same run directory: the count goes on
        with serving(path) as proxy, connections(proxy.port, 60) as clients:
            statuses = burst(clients)
            assert len(serving_workers(clients, proxy.port, proxy.pid)) > 1
        assert sorted(statuses) == [200] * 15 + [429] * 45
        assert len(node.requests) == 25
