"""concurrency-limit in a real ``quiver serve`` with four workers: exact on the node."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.holding import HoldingNode
from tests.support.process import serving, write_config
from tests.support.proxy import Client
from tests.support.spread import burst, connections, serving_workers
from tests.support.upstream import Conn, Upstream, json_response

pytestmark = pytest.mark.timeout(60)

LIMIT, EXTRA = 6, 10


def test_exactly_limit_requests_reach_the_node_across_four_workers(tmp_path: Path) -> None:
    with HoldingNode() as node, Upstream(node) as upstream:
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
        with serving(path) as proxy, connections(proxy.port, LIMIT + EXTRA) as clients:
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
            workers = serving_workers(clients, proxy.port, proxy.pid)
            assert len(workers) > 1, "one worker took every connection"
            # one table for the gateway, named after its master process
            tables = sorted(p.name for p in (tmp_path / "run").glob("in-flight.*"))
            assert tables == [f"in-flight.{proxy.pid}.table"]
            node.release()
            for thread in threads:
                thread.join(10)
        assert node.arrived == LIMIT


class BusyNode:
    """Answers each request after a spell of work, noting the most at once."""

    def __init__(self, work: float) -> None:
        self.work = work
        self.current = self.most = self.served = 0
        self.lock = threading.Lock()

    def __call__(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            with self.lock:
                self.current += 1
                self.most = max(self.most, self.current)
            time.sleep(self.work)  # (the work a slot is held for, not synchronisation)
            with self.lock:
                self.current -= 1
                self.served += 1
            json_response(conn, request)


def test_queued_requests_get_slots_freed_by_any_worker(tmp_path: Path) -> None:
    node = BusyNode(work=0.05)
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
                  concurrency-limit: {{limit: 2, queue: 20, queue_timeout: 20s}}
            """,
        )
        with serving(path) as proxy, connections(proxy.port, 12, timeout=30) as clients:
            statuses = burst(clients)
            assert len(serving_workers(clients, proxy.port, proxy.pid)) > 1
    assert statuses == [200] * 12
    assert node.served == 12
    assert node.most == 2
