"""concurrency-limit in a real ``quiver serve`` with four workers: exact on the node."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.support.holding import HoldingNode
from tests.support.process import parent_pid, serving, write_config
from tests.support.proxy import Client
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(60)

LIMIT, EXTRA = 6, 10


def owners(ports: list[int], master: int) -> set[int]:
    """The worker processes (children of ``master``) whose sockets have these local
    ports, from /proc: which workers the held requests went through."""
    inodes = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        inodes[int(fields[1].split(":")[1], 16)] = fields[9]
    wanted = {f"socket:[{inodes[port]}]" for port in ports if port in inodes}
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or parent_pid(int(name)) != master:
            continue
        with_fds = Path("/proc", name, "fd")
        for fd in with_fds.iterdir():
            try:
                if os.readlink(fd) in wanted:
                    found.add(int(name))
            except OSError:
                continue
    return found


def test_exactly_limit_requests_reach_the_node_across_four_workers(tmp_path: Path) -> None:
    node = HoldingNode()
    with Upstream(node) as upstream:
        path = write_config(
            tmp_path,
            f"""\
            listen: 127.0.0.1:0
            workers: 4
            run_dir: {tmp_path / "run"}
            targets:
              - name: backend
                url: {upstream.url}
            routes:
              - name: all
                paths: ["/"]
                target: backend
                plugins:
                  concurrency-limit: {{limit: {LIMIT}}}
            """,
        )
        with serving(path) as proxy:
            clients = [Client(proxy.port) for _ in range(LIMIT + EXTRA)]
            refused: list[int] = []
            answered = threading.Condition()

            def one(client: Client) -> None:
                client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                response = client.read_response()
                if response.status != 200:
                    with answered:
                        refused.append(response.status)
                        answered.notify_all()

            threads = [threading.Thread(target=one, args=(c,)) for c in clients]
            for thread in threads:
                thread.start()
            node.wait_arrived(LIMIT)
            with answered:  # the refused ones are answered while the others are held
                answered.wait_for(lambda: len(refused) >= EXTRA, 10)
            assert refused == [429] * EXTRA, node.arrived
            assert node.arrived == LIMIT
            assert len(owners(node.ports, proxy.pid)) > 1, "one worker took every request"
            # one table for the gateway, named after its master process
            tables = sorted(p.name for p in (tmp_path / "run").glob("in-flight.*"))
            assert tables == [f"in-flight.{proxy.pid}.table"]
            node.release()
            for thread in threads:
                thread.join(10)
            for client in clients:
                client.close()
        assert node.arrived == LIMIT
