"""`quiver status`: the nodes of each target as the running workers see them."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.process import run_quiver, serving
from tests.support.proxy import Client
from tests.support.upstream import Upstream, echo


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def two_node_config(path: Path, good: str, dead: str, workers: int = 1) -> Path:
    path.write_text(
        textwrap.dedent(
            f"""\
            listen: 127.0.0.1:0
            workers: {workers}
            targets:
              - name: backend
                nodes: [{{url: "{good}"}}, {{url: "{dead}"}}]
                health_check:
                  passive: {{failures: 1, cooldown: 60s}}
            routes:
              - name: all
                paths: ["/"]
                target: backend
            """
        )
    )
    return path


def documents(run_dir: Path) -> list[dict[str, Any]]:
    result = run_quiver("status", "--run-dir", str(run_dir), "--json")
    assert result.returncode == 0, result.stderr
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    return parsed


def wait_for_documents(
    run_dir: Path, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        result = run_quiver("status", "--run-dir", str(run_dir), "--json")
        if result.returncode == 0:
            found: list[dict[str, Any]] = json.loads(result.stdout)
            if check(found):
                return found
        if time.monotonic() > deadline:
            raise AssertionError(f"status never satisfied the check: {result.stdout}")
        time.sleep(0.1)  # the workers rewrite their status once a second


def test_status_shows_each_node_and_an_ejected_one(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    dead = f"http://127.0.0.1:{closed_port()}"
    with Upstream(echo) as good:
        config = two_node_config(tmp_path / "quiver.yaml", good.url, dead)
        with serving(config, "--run-dir", str(run_dir)) as proc, Client(proc.port) as client:
            for _ in range(4):
                assert client.request("GET", "/x").status == 200  # retried off the dead node

            def dead_is_down(found: list[dict[str, Any]]) -> bool:
                nodes = found[0]["targets"]["backend"]["nodes"]
                return any(n["url"] == dead and not n["up"] for n in nodes)

            [worker] = wait_for_documents(run_dir, dead_is_down)
            nodes = {n["url"]: n for n in worker["targets"]["backend"]["nodes"]}
            assert nodes[good.url]["up"] is True
            assert nodes[dead]["health"]["passive"]["ejected"] is True
            table = run_quiver("status", "--run-dir", str(run_dir))
            assert table.returncode == 0
            assert "1 worker(s)" in table.stdout
            assert good.url in table.stdout and dead in table.stdout
            assert "ejected" in table.stdout
        # a stopped server leaves no status behind
        result = run_quiver("status", "--run-dir", str(run_dir))
        assert result.returncode == 1
        assert "no running worker" in result.stderr


def test_status_merges_every_worker(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with Upstream(echo) as first, Upstream(echo) as second:
        config = two_node_config(tmp_path / "quiver.yaml", first.url, second.url, workers=2)
        with serving(config, "--run-dir", str(run_dir)):
            found = wait_for_documents(run_dir, lambda docs: len(docs) == 2)
            assert len({doc["pid"] for doc in found}) == 2
            table = run_quiver("status", "--run-dir", str(run_dir))
            assert "2 worker(s)" in table.stdout
            assert "2/2" in table.stdout  # up in both workers


def test_a_worker_runs_one_thread_between_its_status_writes(tmp_path: Path) -> None:
    # the documents' writer is a thread that ends with its write: the rest of the time
    # the worker has a single thread (the kernel skips the shared file table's
    # reference counting on each of its socket reads and writes)
    run_dir = tmp_path / "run"
    with Upstream(echo) as node:
        config = two_node_config(tmp_path / "quiver.yaml", node.url, node.url)
        with serving(config, "--run-dir", str(run_dir)) as proc:
            [first] = wait_for_documents(run_dir, lambda docs: len(docs) == 1)
            assert first["pid"] == proc.pid
            wait_for_documents(run_dir, lambda docs: docs[0]["written_at"] > first["written_at"])
            deadline = time.monotonic() + 10
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            while threads > 1 and time.monotonic() < deadline:
                time.sleep(0.01)  # (the polled condition: its write ends within the second)
                threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            assert threads == 1
