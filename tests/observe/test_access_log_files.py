"""A real `quiver serve --workers 2` writing one access log file: whole lines from
both workers, size rotation shared through a lock, SIGUSR1 reopening after the
file was moved away (logrotate without copytruncate)."""

from __future__ import annotations

import contextlib
import re
import signal
from pathlib import Path

import pytest

from quiver.proxy.status import read_status
from tests.observe.support import lines_of
from tests.support.nodes import wait_until
from tests.support.process import catch_all_config, run_quiver, serving, write_config
from tests.support.proxy import Client
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(60)


def all_lines(directory: Path) -> list[dict[str, object]]:
    """Every whole JSON line of every access log file in ``directory`` (a file moved
    by a rotation meanwhile is missed: callers look again)."""
    lines = []
    for path in sorted(directory.glob("access.log*")):
        if not path.name.endswith(".lock"):
            with contextlib.suppress(FileNotFoundError):
                lines += lines_of(path)  # (a line half written as we read counts next time)
    return lines


def send(port: int, count: int, prefix: str) -> set[str]:
    """``count`` requests, each on its own connection (so both workers get some)."""
    ids = set()
    for i in range(count):
        with Client(port) as client:
            response = client.request("GET", f"/{prefix}/{i}")
            assert response.status == 200
            ids.add(str(response.header("x-request-id")))
    return ids


def test_two_workers_share_a_rotated_file_and_reopen_it_on_sigusr1(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "access.log"
    run_dir = tmp_path / "run"
    with Upstream(echo) as node:
        text = catch_all_config(node.url, workers=2) + (
            f"access_log:\n  to: {path}\n  rotate: {{size: 4k, keep: 50}}\n"
        )
        config = write_config(tmp_path, text)
        with serving(config, "--run-dir", str(run_dir)) as proc:
            sent: set[str] = set()

            def written() -> bool:
                return {line["request_id"] for line in all_lines(logs)} >= sent

            for round_ in "abc":  # (each round's lines are written before the next is sent)
                sent |= send(proc.port, 30, round_)  # (over 4k: one rotation at least)
                wait_until(written, "lines")
            lines = all_lines(logs)
            assert len(lines) == 90  # each once, whole, whichever worker wrote it
            rotated = sorted(p for p in logs.glob("access.log.*") if p.suffix != ".lock")
            assert len(rotated) >= 3
            for older in rotated:
                assert 4096 <= older.stat().st_size < 4096 + 16384  # (a batch may overshoot)

            moved = logs / "moved.log"
            path.rename(moved)
            kept = len(lines_of(moved))
            proc.signal(signal.SIGUSR1)  # to the master: it passes it on

            def reopened() -> bool:
                workers = read_status(run_dir)
                return len(workers) == 2 and all(
                    w.get("access_log", {}).get("reopened", 0) >= 1 for w in workers
                )

            wait_until(reopened, "both workers reopened the file", timeout=10)
            after = send(proc.port, 20, "b")
            # (in access.log, or rotated on since: the moved file is not among them)
            wait_until(lambda: {line["request_id"] for line in all_lines(logs)} >= after, "new")
            assert len(lines_of(moved)) == kept  # nothing more went to the moved file
            workers = read_status(run_dir)
            assert all(w["access_log"]["dropped"] == 0 for w in workers)
            shown = run_quiver("status", "--run-dir", str(run_dir))
            assert shown.returncode == 0, shown.stderr
            assert re.search(r"2 worker\(s\), access log: \d+ written, 0 dropped", shown.stdout)


def test_the_command_line_turns_the_access_log_on(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    with Upstream(echo) as node:
        config = write_config(tmp_path, catch_all_config(node.url))
        with serving(config, "--access-log", str(path)) as proc:
            [request_id] = send(proc.port, 1, "cli")
            wait_until(lambda: len(lines_of(path)) == 1, "a line")
    [line] = lines_of(path)
    assert (line["request_id"], line["path"], line["status"]) == (request_id, "/cli/0", 200)
