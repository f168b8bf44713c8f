"""``quiver serve --workers N``: a master process and N workers sharing the port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from tests.support.process import (
    LISTENING,
    WORKER_EXITED,
    WORKER_STARTED,
    QuiverProcess,
    catch_all_config,
    parent_pid,
    process_alive,
    serving,
    write_config,
)
from tests.support.proxy import Client, Response
from tests.support.streams import wait_for
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def config(tmp_path: Path, echo_upstream: Upstream) -> Path:
    return write_config(tmp_path, catch_all_config(echo_upstream.url))


def fresh_request(proxy: QuiverProcess, path: str = "/") -> Response:
    """One request on a new connection (the kernel picks a worker for each); must be 200."""
    for attempt in range(3):
        try:
            with Client(proxy.port, timeout=10) as client:
                response = client.request("GET", path)
        except (ConnectionError, OSError):
            # a connection can land on a worker in the instant it is killed
            if attempt == 2:
                raise
            time.sleep(0.1)
            continue
        assert response.status == 200, f"{response.body!r}\nquiver stderr:\n{proxy.stderr}"
        return response
    raise AssertionError("unreachable")


def worker_tag(response: Response) -> str:
    """Which worker answered: each one draws its own random request-id prefix."""
    request_id = response.header("X-Request-ID")
    assert request_id is not None and len(request_id) == 32
    return request_id[:20]


def started_workers(proxy: QuiverProcess, count: int) -> list[int]:
    return [int(match.group(1)) for match in proxy.wait_for(WORKER_STARTED, count=count)]


def none_alive(pids: list[int]) -> bool:
    return not any(process_alive(pid) for pid in pids)


def test_two_workers_start_and_share_the_connections(config: Path) -> None:
    with serving(config, "--workers", "2") as proxy:
        workers = started_workers(proxy, 2)
        assert len(set(workers)) == 2
        assert proxy.pid not in workers
        assert all(parent_pid(pid) == proxy.pid for pid in workers)
        tags = set()
        for index in range(60):
            response = fresh_request(proxy, f"/n{index}")
            assert response.json()["path"] == f"/n{index}"
            tags.add(worker_tag(response))
        assert len(tags) == 2, "every connection went to the same worker"
        assert proxy.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_listening_is_logged_once_connections_are_accepted(config: Path, workers: str) -> None:
    # Scripts and service managers take this line to mean "ready".
    with QuiverProcess(["serve", "-c", str(config), "--workers", workers]) as proxy:
        [match] = proxy.wait_for(LISTENING)
        with Client(int(match.group(3)), timeout=5) as client:
            assert client.request().status == 200


def test_workers_count_from_the_config_file(tmp_path: Path, echo_upstream: Upstream) -> None:
    path = write_config(tmp_path, catch_all_config(echo_upstream.url, workers=2))
    with serving(path) as proxy:
        assert len(set(started_workers(proxy, 2))) == 2
        fresh_request(proxy)


def test_killed_worker_is_replaced_and_requests_keep_succeeding(config: Path) -> None:
    with serving(config, "--workers", "2") as proxy:
        first, second = started_workers(proxy, 2)
        fresh_request(proxy)
        os.kill(first, signal.SIGKILL)
        [exited] = proxy.wait_for(WORKER_EXITED)
        assert int(exited.group(1)) == first
        assert "killed by signal 9" in exited.string
        replacement = started_workers(proxy, 3)[2]
        assert replacement not in (first, second)
        assert parent_pid(replacement) == proxy.pid
        assert wait_for(lambda: not process_alive(first), 5)
        tags = set()
        for index in range(60):
            response = fresh_request(proxy, f"/after{index}")
            tags.add(worker_tag(response))
        # the surviving worker and its replacement both take connections
        assert len(tags) == 2
        assert process_alive(second)
        assert proxy.stop() == 0


def test_worker_that_exits_on_its_own_is_replaced(config: Path) -> None:
    with serving(config, "--workers", "2") as proxy:
        first, _second = started_workers(proxy, 2)
        os.kill(first, signal.SIGTERM)  # a worker stopping gracefully by itself
        [exited] = proxy.wait_for(WORKER_EXITED)
        assert int(exited.group(1)) == first
        assert "exit code 0" in exited.string
        started_workers(proxy, 3)
        fresh_request(proxy)


# Runs ``quiver serve`` with the first worker sending itself SIGTERM the moment it is
# forked, before it has set up anything: the earliest a signal can reach it.
SIGTERM_AT_FORK = """
import os, signal, sys
from pathlib import Path
import quiver.proxy.supervisor as supervisor
from quiver.cli import main

first = Path(sys.argv[1])
serve = supervisor.run_worker

def run_worker(*args, **kwargs):
    if not first.exists():
        first.touch()
        os.kill(os.getpid(), signal.SIGTERM)
    serve(*args, **kwargs)

supervisor.run_worker = run_worker
sys.exit(main(sys.argv[2:]))
"""


def test_a_worker_stopped_while_it_starts_still_drains_and_exits_cleanly(
    config: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "first-worker-stopped"
    command = [sys.executable, "-c", SIGTERM_AT_FORK, str(marker)]
    args = ["serve", "-c", str(config), "--workers", "2"]
    with QuiverProcess(args, command=[*command, *args]) as proxy:
        proxy.wait_listening()
        [exited] = proxy.wait_for(WORKER_EXITED)
        assert "exit code 0" in exited.string, proxy.stderr
        drained = re.compile(rf"\[{exited.group(1)} worker \d\] [\w.]+: stopping: draining")
        assert drained.search(proxy.stderr), proxy.stderr
        started_workers(proxy, 3)
        fresh_request(proxy)


def test_sigterm_on_the_master_stops_every_worker(config: Path) -> None:
    with serving(config, "--workers", "2") as proxy:
        workers = started_workers(proxy, 2)
        fresh_request(proxy)
        assert proxy.stop(timeout=20) == 0
        assert not any(process_alive(pid) for pid in workers)
        assert proxy.stderr.count("stopping: draining connections") == 2
        with pytest.raises(ConnectionRefusedError):
            Client(proxy.port, timeout=2)
        assert "Traceback" not in proxy.stderr


def test_sigterm_while_workers_are_starting_stops_the_master(config: Path) -> None:
    # The signal lands while the master is forking; it must not be lost.
    for _ in range(5):
        with QuiverProcess(["serve", "-c", str(config), "--workers", "4"]) as proxy:
            proxy.wait_for(LISTENING)
            proxy.signal(signal.SIGTERM)
            try:
                code = proxy.wait(5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"SIGTERM during start-up was ignored; stderr:\n{proxy.stderr}")
            assert code == 0
            workers = [int(m.group(1)) for m in WORKER_STARTED.finditer(proxy.stderr)]
            assert wait_for(partial(none_alive, workers), 5)


def test_sigint_on_the_master_stops_every_worker(config: Path) -> None:
    with serving(config, "--workers", "2") as proxy:
        workers = started_workers(proxy, 2)
        proxy.signal(signal.SIGINT)
        assert proxy.wait(20) == 0
        assert not any(process_alive(pid) for pid in workers)


LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<pid>\d+)(?: worker (?P<index>\d+))?\] [\w.]+: "
)


def log_lines(stderr: str) -> list[re.Match[str]]:
    """Every stderr line as a parsed log line; fails on a line not in the log format."""
    matches = []
    for line in stderr.splitlines():
        match = LOG_LINE.match(line)
        assert match is not None, f"not in the log format: {line!r}"
        matches.append(match)
    return matches


def test_every_log_line_names_its_process_and_worker_index(config: Path) -> None:
    with serving(config, "--workers", "2") as proxy:
        first, second = started_workers(proxy, 2)
        os.kill(first, signal.SIGKILL)
        replacement = started_workers(proxy, 3)[2]
        # each worker logs its reload, the replacement once it is running
        proxy.signal(signal.SIGHUP)
        proxy.wait_for("config reloaded", count=2)
        assert proxy.stop() == 0
    lines = log_lines(proxy.stderr)
    master = [m for m in lines if int(m["pid"]) == proxy.pid]
    assert master and all(m["index"] is None for m in master)
    tagged = {(int(m["pid"]), m["index"]) for m in lines if int(m["pid"]) != proxy.pid}
    started = dict(re.findall(r"worker (\d+) started \(index (\d+)\)", proxy.stderr))
    assert sorted(started.values()) == ["0", "0", "1"]
    # the replacement takes over the index of the worker it replaces
    assert tagged == {(second, started[str(second)]), (replacement, started[str(first)])}


def test_a_single_process_logs_its_pid_without_a_worker_index(config: Path) -> None:
    with serving(config) as proxy:
        fresh_request(proxy)
        assert proxy.stop() == 0
    lines = log_lines(proxy.stderr)
    assert len(lines) >= 3  # config loaded, listening, stopping
    assert {(int(m["pid"]), m["index"]) for m in lines} == {(proxy.pid, None)}
