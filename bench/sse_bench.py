#!/usr/bin/env python3
"""SSE benchmark: what relaying server-sent events through Quiver adds to each event,
against the same events read straight from the node, in one run.

Run it through ``bench/sse.sh``, which owns the scratch directory; see
``bench/README.md`` for what every number means.

Layout on a 2-core machine::

    core 0: the event node (this script with --node: asyncio, one process) and the
            client (this script: asyncio, one process)
    core 1: Quiver, 1 worker: a route ``/events`` with key-auth and rate-limit

The node answers ``GET /events`` with a chunked ``text/event-stream`` of ``EVENTS``
events, one every ``INTERVAL_MS`` on a fixed schedule from the request on, each
carrying the node's CLOCK_MONOTONIC when it was written (one clock for every process
of the machine).  The client opens ``STREAMS`` streams straight to the node and as
many through Quiver at the same time, and notes when each event arrives:

- **time to first event**: from sending the request to the first event's arrival;
  the streams start spread evenly over one interval (``SPREAD=0``: all at once, a
  burst of connections and requests);
- **event latency**: from the node writing an event to the client reading it;
- **added**: Quiver's percentile minus the direct one (p50, p99, max).

Standard library only; processes and CPU meters come from ``rig``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
import rig
from rig import BenchError, CpuMeter, Processes, free_port, percentile, say

PROG = "sse"
KEY = "bench-sse-key-0001"
_EVENT = re.compile(rb"data: (\d+) (\d+)\n\n")
_COUNT = re.compile(rb"^GET /events\?n=(\d+) ")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    quiver: tuple[str, ...]
    streams: int  # concurrent streams of each kind (direct, through Quiver)
    events: int  # events per stream
    interval_ms: float  # between two events of a stream
    spread: bool  # streams start spread over one interval (else all at once)
    load_cpu: int
    proxy_cpu: int
    start_timeout: float

    @property
    def connections(self) -> int:
        """What the rig calls connections: here the streams of each kind (no wrk)."""
        return self.streams

    @classmethod
    def from_env(cls) -> Settings:
        s = cls(
            quiver=driver.quiver_command(),
            streams=driver.env_int(PROG, "STREAMS", 200),
            events=driver.env_int(PROG, "EVENTS", 100),
            interval_ms=driver.env_float(PROG, "INTERVAL_MS", 100.0),
            spread=driver.env_int(PROG, "SPREAD", 1) != 0,
            load_cpu=driver.env_int(PROG, "LOAD_CPU", 0),
            proxy_cpu=driver.env_int(PROG, "PROXY_CPU", 1),
            start_timeout=driver.env_float(PROG, "START_TIMEOUT", 60.0),
        )
        if s.streams < 1 or s.events < 1 or s.interval_ms <= 0:
            sys.exit("sse bench: STREAMS, EVENTS and INTERVAL_MS must be positive")
        return s


# --------------------------------------------------------------------------- the node


async def serve_events(port: int, events: int, interval: float) -> None:
    """The event node: every ``GET`` gets ``events`` events on a fixed schedule."""

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            count = int(m.group(1)) if (m := _COUNT.search(head)) else events
            begun = time.monotonic()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for index in range(count):
                delay = begun + index * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = b"data: %d %d\n\n" % (index, time.monotonic_ns())
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(stream, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- the client


@dataclass
class Stream:
    """What one stream's client saw: when it asked, and each event's latency (ns)."""

    via: str  # "direct" or "quiver"
    asked: int = 0
    first: int = 0  # arrival of the first event
    latencies: list[int] = field(default_factory=list)
    error: str = ""


async def read_stream(
    port: int, via: str, headers: bytes, expected: int, after: float = 0.0
) -> Stream:
    """One stream of ``expected`` events (the node is asked for that many), asked for
    ``after`` seconds from now."""
    if after:
        await asyncio.sleep(after)
    result = Stream(via)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        result.error = f"connect: {exc}"
        return result
    try:
        result.asked = time.monotonic_ns()
        request = b"GET /events?n=%d HTTP/1.1\r\nHost: bench\r\n" % expected
        writer.write(request + headers + b"\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            result.error = head.split(b"\r\n", 1)[0].decode("latin-1")
            return result
        buffer = b""
        while len(result.latencies) < expected:
            data = await reader.read(65536)
            now = time.monotonic_ns()
            if not data:
                result.error = f"closed after {len(result.latencies)} events"
                break
            buffer += data
            end = 0
            for match in _EVENT.finditer(buffer):
                if not result.first:
                    result.first = now
                result.latencies.append(now - int(match.group(2)))
                end = match.end()
            buffer = buffer[end:]
    except (OSError, asyncio.IncompleteReadError) as exc:
        result.error = repr(exc)
    finally:
        writer.close()
    return result


async def read_all(
    streams: int, events: int, node: int, quiver: int, spread: float = 0.0
) -> list[Stream]:
    """``streams`` of each kind, interleaved (both kinds start under the same load),
    their starts spread evenly over ``spread`` seconds."""
    auth = f"apikey: {KEY}\r\n".encode()
    tasks = []
    for index in range(streams):
        after = spread * index / streams
        tasks.append(read_stream(node, "direct", b"", events, after))
        tasks.append(read_stream(quiver, "quiver", auth, events, after))
    return await asyncio.gather(*tasks)


# --------------------------------------------------------------------------- the run


def quiver_config(port: int, node: int, streams: int) -> dict[str, Any]:
    """One route with key-auth and rate-limit; the pool keeps a connection for every
    stream, so that the measured streams find the ones the warm-up opened."""
    return {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "targets": [
            {
                "name": "events",
                "url": f"http://127.0.0.1:{node}",
                "pool": {"max_idle": max(64, streams)},
            }
        ],
        "consumers": [{"name": "bench", "credentials": {"key-auth": [{"key": KEY}]}}],
        "routes": [
            {
                "name": "events",
                "paths": ["/events"],
                "target": "events",
                "plugins": {
                    "key-auth": {},
                    "rate-limit": {"limit": 1_000_000, "window": 60, "by": "consumer"},
                },
            }
        ],
    }


def describe(streams: list[Stream]) -> dict[str, Any]:
    latencies = [v for st in streams for v in st.latencies]
    firsts = [st.first - st.asked for st in streams if st.first]
    return {
        "streams": len(streams),
        "events": len(latencies),
        "failed_streams": sum(1 for st in streams if st.error),
        "first_event_p50_us": round(percentile(firsts, 0.5) / 1000, 1),
        "first_event_p99_us": round(percentile(firsts, 0.99) / 1000, 1),
        "event_p50_us": round(percentile(latencies, 0.5) / 1000, 1),
        "event_p99_us": round(percentile(latencies, 0.99) / 1000, 1),
        "event_max_us": round(max(latencies, default=0) / 1000, 1),
        "event_mean_us": round(statistics.fmean(latencies) / 1000, 1) if latencies else 0.0,
    }


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--node":
        port, events, interval = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        asyncio.run(serve_events(port, events, interval / 1000))
        return 0
    args = driver.parse_args(__doc__, PROG)
    s = Settings.from_env()
    if driver.missing(PROG, s):
        return 2
    procs = Processes(args.workdir / "pids")
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver, h2load=False)
    idle = driver.busy_before_run(s)
    node_port, quiver_port = free_port(), free_port()
    seconds = s.events * s.interval_ms / 1000
    say(
        f"sse bench: {s.streams} streams direct + {s.streams} through Quiver, "
        f"{s.events} events each, one every {s.interval_ms:g} ms (~{seconds:.0f} s), "
        + ("starts spread over one interval" if s.spread else "all started at once")
    )
    errors: list[str] = []
    try:
        node_log = args.workdir / "node.log"
        argv = [sys.executable, __file__, "--node", str(node_port), str(s.events)]
        node = procs.spawn([*argv, str(s.interval_ms)], cpu=s.load_cpu, out=node_log)
        rig.wait_for_port(node_port, node, node_log, s.start_timeout)
        conf = args.workdir / "quiver.json"
        conf.write_text(json.dumps(quiver_config(quiver_port, node_port, s.streams), indent=2))
        quiver = rig.start_quiver(procs, s, "quiver", conf, quiver_port)
        os.sched_setaffinity(0, {s.load_cpu})  # the client shares the node's core
        # unmeasured: Quiver opens its pool to the node, the client its first sockets
        warm = asyncio.run(read_all(s.streams, 2, node_port, quiver_port))
        if failed := [st.error for st in warm if st.error]:
            raise BenchError(f"warm-up: {len(failed)} streams failed, e.g. {failed[0]}")
        meter = CpuMeter(quiver.proc.pid)
        meter.start()
        spread = s.interval_ms / 1000 if s.spread else 0.0
        streams = asyncio.run(read_all(s.streams, s.events, node_port, quiver_port, spread))
        quiver_cpu, _ = meter.stop()
    except BenchError as exc:
        say(f"\nsse bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()
    direct = describe([st for st in streams if st.via == "direct"])
    through = describe([st for st in streams if st.via == "quiver"])
    for st in streams:
        if st.error:
            errors.append(f"{st.via} stream: {st.error}")
    added = {
        key.replace("_us", "_added_us"): round(through[key] - direct[key], 1)
        for key in (
            "first_event_p50_us",
            "first_event_p99_us",
            "event_p50_us",
            "event_p99_us",
            "event_max_us",
        )
    }
    quiver_events = through["events"]
    summary = {
        "direct": direct,
        "quiver": through,
        "added": added,
        "quiver_cpu_s": round(quiver_cpu, 3),
        "quiver_cpu_us_per_event": round(quiver_cpu * 1e6 / quiver_events, 1)
        if quiver_events
        else None,
    }
    say("")
    say("| | streams | events | first event p50 / p99 | event p50 | event p99 | event max |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for label, m in (("direct", direct), ("through Quiver", through)):
        say(
            f"| {label} | {m['streams']} | {m['events']:,} | {m['first_event_p50_us']:,} / "
            f"{m['first_event_p99_us']:,} µs | {m['event_p50_us']:,} µs | "
            f"{m['event_p99_us']:,} µs | {m['event_max_us']:,} µs |"
        )
    say(
        f"| added by Quiver | | | {added['first_event_p50_added_us']:,} / "
        f"{added['first_event_p99_added_us']:,} µs | {added['event_p50_added_us']:,} µs | "
        f"{added['event_p99_added_us']:,} µs | {added['event_max_added_us']:,} µs |"
    )
    say(f"\nQuiver CPU: {quiver_cpu:.2f} s, {summary['quiver_cpu_us_per_event']} µs per event")
    result = {
        "started": started.isoformat(timespec="seconds"),
        "run": f"sse-{started.strftime('%Y%m%dT%H%M%SZ')}",
        "settings": driver.settings_record(s),
        "environment": env,
        "summary": summary,
        "busy_before_run": idle,
        "errors": errors[:20],
    }
    path = driver.write_results(args.results, PROG, started, result)
    return driver.closing_report(path, driver.idle_cautions(idle), errors[:20])


if __name__ == "__main__":
    sys.exit(main())
