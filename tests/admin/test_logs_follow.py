"""``quiver logs`` against the admin API's call log: ``--follow`` prints every call
stored since the last poll exactly once, however many came, in the order stored."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from quiver.calls import CallLog, Ingester
from quiver.calls.records import parse
from quiver.store import Store
from quiver.store.tokens import create_token
from tests.admin.conftest import MakeClient
from tests.calls.synthetic import records
from tests.support.process import QUIVER, _environment


def _store_calls(store: Store, items: list[dict[str, Any]]) -> None:
    ingester = Ingester(store.engine, Path("/nonexistent"), CallLog(max_rows=100_000))
    ingester.insert([parse(json.dumps(item).encode()) for item in items])


def _calls(start_ms: int, count: int, prefix: str, seed: int) -> list[dict[str, Any]]:
    made = records(count, start_ms, 1000, seed=seed)
    for index, item in enumerate(made):
        item["path"] = f"/{prefix}/{index}"
    return made


@contextmanager
def _logs(store: Store, base_url: str, *args: str) -> Iterator[queue.Queue[str]]:
    """``quiver logs ARGS`` running; its lines as they come."""
    _, token = create_token(store, "logs", "viewer", None)
    command = [*QUIVER, "logs", "--admin", base_url, *args]
    env = _environment({"QUIVER_ADMIN_TOKEN": token})
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        out = process.stdout
        assert out is not None

        def read() -> None:
            for line in out:
                lines.put(line.rstrip("\n"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            yield lines
        finally:
            process.terminate()
            reader.join(10)


def _paths(lines: queue.Queue[str], count: int) -> list[str]:
    """The paths of the next ``count`` calls printed (fewer if they do not come)."""
    paths: list[str] = []
    deadline = time.monotonic() + 20
    while len(paths) < count and time.monotonic() < deadline:
        try:
            paths.append(lines.get(timeout=1).split()[3])
        except queue.Empty:
            continue
    return paths


def test_follow_prints_a_burst_and_a_late_call_each_once(store: Store, base_url: str) -> None:
    now = int(time.time() * 1000)
    _store_calls(store, _calls(now - 60_000, 3, "before", 1))
    with _logs(store, base_url, "-n", "1", "--follow", "--interval", "0.2") as lines:
        assert lines.get(timeout=20).split()[0] == "time"  # the header
        assert len(_paths(lines, 1)) == 1  # the newest call before
        burst = _calls(now, 20, "burst", 2)
        _store_calls(store, burst)  # more than -n between two polls
        printed = _paths(lines, 20)
        assert sorted(printed) == sorted(item["path"] for item in burst)
        late = _calls(now - 30_000, 1, "late", 3)  # stored now, made before the burst
        _store_calls(store, late)
        assert _paths(lines, 1) == ["/late/0"]
        marker = _calls(now + 5000, 1, "marker", 4)
        _store_calls(store, marker)
        assert _paths(lines, 1) == ["/marker/0"]  # nothing printed twice meanwhile


def test_n_zero_prints_no_call(store: Store, base_url: str) -> None:
    _store_calls(store, _calls(int(time.time() * 1000), 3, "some", 1))
    _, token = create_token(store, "logs", "viewer", None)
    done = subprocess.run(
        [*QUIVER, "logs", "--admin", base_url, "-n", "0"],
        env=_environment({"QUIVER_ADMIN_TOKEN": token}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["time"]


def test_calls_after_a_tail_come_in_stored_order_a_page_at_a_time(
    store: Store, admin: httpx.Client, make_client: MakeClient
) -> None:
    now = int(time.time() * 1000)
    _store_calls(store, _calls(now, 2, "first", 1))
    tail = admin.get("/calls", params={"limit": 1}).json()["tail"]
    assert admin.get("/calls", params={"after": tail}).json()["data"] == []
    _store_calls(store, _calls(now + 1000, 5, "second", 2))
    _store_calls(store, _calls(now - 5000, 1, "third", 3))  # an earlier time, stored later
    seen: list[str] = []
    for _ in range(3):
        page = admin.get("/calls", params={"after": tail, "limit": 2}).json()
        seen += [call["path"] for call in page["data"]]
        tail = page["tail"]
    assert seen == [*(f"/second/{i}" for i in range(5)), "/third/0"]
    assert admin.get("/calls", params={"after": tail}).json()["data"] == []
    refused = admin.get("/calls", params={"after": "nonsense"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
