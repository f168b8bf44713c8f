"""What the WebSocket bench reads while it runs: the memory and sockets of the
proxy's processes (from /proc), and the plain GETs sent through the proxy beside
the WebSockets, timed one by one (bench/websocket_bench.py)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websocket_load import HTTP_BODY


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) of one process in KiB."""
    rss = pss = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def sockets_open(pid: int) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
    return count


@dataclass
class Snapshot:
    rss_kb: dict[int, int]
    pss_kb: dict[int, int]
    sockets: dict[int, int]

    @classmethod
    def take(cls, pids: list[int]) -> Snapshot:
        mem = {pid: memory_kb(pid) for pid in pids}
        return cls(
            {p: m[0] for p, m in mem.items()},
            {p: m[1] for p, m in mem.items()},
            {p: sockets_open(p) for p in pids},
        )


def per_connection_kb(before: Snapshot, after: Snapshot, held: int) -> dict[str, float | None]:
    if not held or not before.rss_kb:
        return {"rss_kb": None, "pss_kb": None}
    rss = sum(after.rss_kb.values()) - sum(before.rss_kb.values())
    pss = sum(after.pss_kb.values()) - sum(before.pss_kb.values())
    return {"rss_kb": round(rss * 1.024 / held, 2), "pss_kb": round(pss * 1.024 / held, 2)}


def http_get(port: int, timeout: float = 5.0) -> float:
    """One ``GET /http`` on a fresh connection; milliseconds to the whole answer."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /http HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if data.endswith(HTTP_BODY) and b"\r\n\r\n" in data:
                break
    took = (time.perf_counter() - t0) * 1000
    if not data.startswith(b"HTTP/1.1 200") or not data.endswith(HTTP_BODY):
        raise OSError(f"answer {data[:80]!r}")
    return took


def real_time() -> bool:
    """Run the calling thread at real-time priority (SCHED_FIFO), so that the plain
    GETs and their node are not queued behind the load clients on core 0; False
    where that is not allowed (not root), and then the caution says so."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        return False
    return True


def http_probe(port: int, count: int, start: float, seconds: float, out: dict[str, Any]) -> None:
    """``count`` GETs one after the other, spread evenly over ``seconds`` from ``start``
    (time.monotonic()); runs in a thread beside the driver's waiting."""
    real_time()  # this thread only
    times: list[float] = []
    began: list[float] = []
    errors: list[str] = []
    for index in range(count):
        delay = start + seconds * index / count - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            began.append(time.monotonic())
            times.append(http_get(port))
        except OSError as exc:
            began.pop()
            errors.append(str(exc))
    out["times_ms"] = times
    out["errors"] = errors
    # when the slowest began (time.monotonic(), CLOCK_MONOTONIC: `perf record -k
    # CLOCK_MONOTONIC` stamps its events on the same clock)
    slowest = sorted(zip(times, began, strict=True), reverse=True)[:5]
    out["slowest"] = [{"began": round(t, 6), "ms": round(ms, 2)} for ms, t in slowest]
