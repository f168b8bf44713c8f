"""``quiver logs`` against a running gateway whose admin sidecar ingests the spools."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from typing import Any

import httpx

from tests.calls.synthetic import records, write_spools
from tests.declarative.conftest import TOKEN, Gateway
from tests.support.process import QUIVER, _environment


def _ingested(gateway: Gateway, count: int) -> list[dict[str, Any]]:
    """Poll the admin API until the sidecar has ingested ``count`` calls."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + 30
    while True:
        page = httpx.get(f"{gateway.admin}/calls", params={"limit": 1000}, headers=headers)
        data: list[dict[str, Any]] = page.json()["data"]
        if len(data) >= count or time.monotonic() > deadline:
            return data
        time.sleep(0.2)  # (polling the sidecar's ingest, not a synchronisation)


def test_logs_prints_the_ingested_calls_newest_last(gateway: Gateway) -> None:
    now = int(time.time() * 1000)
    items = records(200, now - 300_000, 300_000)
    write_spools(gateway.cwd / "run" / "calls", items, per_file=50, pid=999_999)
    assert len(_ingested(gateway, 200)) == 200
    code, out, err = gateway.quiver("logs", "--route", "orders", "--status", "5xx", "-n", "5")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "time", "status", "method", "path", "route", "consumer", "latency", "detail"
    ]  # fmt: skip
    expected = sorted(
        (i for i in items if i["route"] == "orders" and i["status"] >= 500),
        key=lambda i: i["time"],
    )[-5:]
    assert [line.split()[3] for line in lines[1:]] == [i["path"] for i in expected]
    assert all(line.split()[1] in ("500", "503") for line in lines[1:])
    code, out, _ = gateway.quiver("logs", "--request-id", items[0]["request_id"])
    assert len(out.splitlines()) == 2 and items[0]["path"] in out


def test_logs_follow_prints_calls_as_they_arrive(gateway: Gateway) -> None:
    now = int(time.time() * 1000)
    write_spools(gateway.cwd / "run" / "calls", records(10, now - 60_000, 60_000), 10, pid=999_998)
    _ingested(gateway, 10)
    command = [*QUIVER, "logs", "--follow", "--interval", "0.2", "--admin", gateway.admin]
    with subprocess.Popen(
        command,
        env=_environment({"QUIVER_ADMIN_TOKEN": TOKEN}),
        stdout=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stdout is not None
        later = records(3, now + 1000, 1000, seed=99)
        for item in later:
            item["path"] = "/arrived-later"
        write_spools(gateway.cwd / "run" / "calls", later, 3, pid=999_997)
        lines: queue.Queue[str] = queue.Queue()
        out = follower.stdout

        def read() -> None:
            for line in out:
                lines.put(line)

        reader = threading.Thread(target=read)
        reader.start()
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 3 and time.monotonic() < deadline:
            try:
                seen += "/arrived-later" in lines.get(timeout=1)
            except queue.Empty:
                continue
        follower.terminate()
        reader.join()
    assert seen == 3
