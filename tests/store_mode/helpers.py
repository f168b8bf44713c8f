"""Running store-mode nodes for the tests: ``quiver serve`` on port 0, each in a
working directory and run directory of its own."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.support.process import QuiverProcess
from tests.support.proxy import Client

#: the longest an apply may take to be served by every worker of every node
LIVE_WITHIN = 1.0
TOKEN_LINE = re.compile(r"admin token \(shown once, keep it\): (qv_[A-Za-z0-9_-]+)")


def declaration(tag: str, *, extra_routes: int = 0) -> dict[str, Any]:
    """Every path to the demo target, answers marked ``X-Revision: tag``."""
    routes: list[dict[str, Any]] = [
        {
            "name": "demo",
            "paths": ["/"],
            "target": "demo",
            "plugins": {"response-transformer": {"add": {"headers": {"X-Revision": tag}}}},
        }
    ]
    routes += [
        {"name": f"r{i}", "paths": [f"/svc{i}/{{id}}"], "target": "demo"}
        for i in range(extra_routes)
    ]
    return {"targets": [{"name": "demo", "type": "demo"}], "routes": routes}


def start_node(
    home: Path, *args: str, env: dict[str, str | None] | None = None, admin: bool = True
) -> QuiverProcess:
    """``quiver serve`` in store mode (no config file) in ``home``, listening on port 0."""
    home.mkdir(parents=True, exist_ok=True)
    argv = ["serve", "--listen", "127.0.0.1:0", "--run-dir", str(home / "run")]
    if admin:
        argv += ["--admin-listen", "127.0.0.1:0"]
    environment: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}
    environment.update(env or {})
    return QuiverProcess([*argv, *args], cwd=home, env=environment)


def revision_served(port: int) -> str | None:
    """The X-Revision of a GET on a fresh connection (None: the demo unmarked)."""
    with Client(port, timeout=5) as client:
        response = client.request("GET", "/hello", headers={"Connection": "close"})
        assert response.status == 200, response.body
        return response.header("X-Revision")


def wait_live(node: QuiverProcess, revision: int, tag: str, workers: int, within: float) -> None:
    """Every one of the ``workers`` of ``node`` serves ``revision`` within ``within``
    seconds: each logged its reload, and fresh connections (spread over the workers
    by the kernel) are answered with ``tag``."""
    node.wait_for(
        rf"config reloaded from store revision {revision}\b", timeout=within, count=workers
    )
    for _ in range(10):
        assert revision_served(node.port) == tag


def wait_logged(node: QuiverProcess, pattern: str, timeout: float = 20.0) -> None:
    node.wait_for(pattern, timeout=timeout)


def elapsed_since(start: float) -> float:
    return time.monotonic() - start


ADMIN_READY = re.compile(r"admin API \(pid \d+\) ready at http://127\.0\.0\.1:(\d+)")


def admin_port(node: QuiverProcess, timeout: float = 30.0) -> int:
    """The port of the node's admin API, once it is ready."""
    [match] = node.wait_for(ADMIN_READY, timeout=timeout)
    return int(match.group(1))
