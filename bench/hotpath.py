"""Time the proxy's Python work per request, without sockets.

Feeds one request into a client connection and the matching response into its
upstream connection through stand-in transports, many times over, so the cost
measured is ours alone (parsing callbacks, routing, header building), not the
kernel's.  Run: python bench/hotpath.py [--profile] [--key-auth | --rate-limit | --send-key]
[--access-log] [--call-log] [--metrics] [--tracing]
(--rate-limit: key-auth and rate-limit with the local store, per consumer)
(--access-log: a JSON access log to a temporary file, all fields; its writer thread's
work is counted too: the process waits for every line to be written before it ends;
HOTPATH_ACCESS_LOG_FIELDS=a,b,c selects fields)
(--call-log: the call spool of store mode to a temporary directory, counted the same way)
(--metrics: the request counters of ``metrics.requests``, on the writer thread too)
(--tracing: trace context for every request, a new trace each, 1% sampled;
HOTPATH_TRACING_SAMPLE=0.1 sets another share.  Spans are not exported here: the
output that does it is measured on its own)
(with --profile, HOTPATH_ROWS sets how many functions are listed; 25 by default)

For numbers that do not depend on what else the machine is doing, count
instructions:  bench/hotpath_instructions.sh
"""

from __future__ import annotations

import asyncio  # noqa: F401
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from quiver.config.access_log import AccessLog
from quiver.config.models import Config
from quiver.config.tracing import Tracing
from quiver.observe.access_log import AccessLogOutput
from quiver.observe.call_spool import CallSpool
from quiver.observe.metrics import MetricsOutput
from quiver.observe.outputs import RecordOutput
from quiver.observe.writer import RecordWriter
from quiver.proxy.client import ClientConnection
from quiver.proxy.server import ProxyState
from quiver.proxy.snapshot import compile_snapshot
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.tracecontext import Propagator
from quiver.proxy.upstream import UpstreamConnection
from quiver.target_types import default_catalog

REQUEST = b"GET /items/42?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"
KEY = "bench-key-0123456789"
WITH_KEY = REQUEST.replace(b"\r\n\r\n", b"\r\napikey: " + KEY.encode() + b"\r\n\r\n")
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: 56\r\nConnection: keep-alive\r\n\r\n"
    b'{"message":"hello from the backend","ok":true,"n":12345}'
)


class NullTransport:
    def __init__(self) -> None:
        self.sent = 0

    def write(self, data: bytes) -> None:
        self.sent += 1

    def writelines(self, data: list[bytes]) -> None:
        self.sent += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 5555) if name == "peername" else None

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def main() -> None:
    loop = uvloop.new_event_loop()
    rate_limit = "--rate-limit" in sys.argv  # key-auth and rate-limit on the route
    key_auth = rate_limit or "--key-auth" in sys.argv  # measure the route with key-auth on
    route: dict[str, object] = {"name": "all", "paths": ["/"], "target": "backend"}
    if key_auth:
        route["plugins"] = {"key-auth": {}}
    if rate_limit:
        limit = {"limit": 10**12, "window": 60, "by": "consumer"}
        route["plugins"] = {"key-auth": {}, "rate-limit": limit}
    config = Config.model_validate(
        {
            "targets": [{"name": "backend", "url": "http://127.0.0.1:9001"}],
            "routes": [route],
            "consumers": [{"name": "c", "credentials": {"key-auth": [{"key": KEY}]}}],
        }
    )
    # --send-key: the plain route gets the key-auth request too (as in bench/plugins.sh)
    request = WITH_KEY if key_auth or "--send-key" in sys.argv else REQUEST
    sweeper = Sweeper(loop, 1.0)
    snapshot = compile_snapshot(config, loop, sweeper, catalog=default_catalog())
    tracing = None
    if "--tracing" in sys.argv:
        sample = float(os.environ.get("HOTPATH_TRACING_SAMPLE", "0.01"))
        tracing = Propagator(Tracing(sample=sample))
    state = ProxyState(loop, snapshot, sweeper, tracing)
    outputs: list[RecordOutput] = []
    directory = tempfile.mkdtemp(prefix="quiver-hotpath-")
    if "--call-log" in sys.argv:  # spooled as store mode does (large files: no rotation)
        outputs.append(CallSpool(Path(directory) / "calls", max_size=2**40))
    if "--access-log" in sys.argv:
        # HOTPATH_ACCESS_LOG_FIELDS: a comma-separated selection instead of all fields
        chosen = os.environ.get("HOTPATH_ACCESS_LOG_FIELDS")
        settings = AccessLog.model_validate(
            {
                "to": os.path.join(directory, "access.log"),
                **({"fields": chosen.split(",")} if chosen else {}),
            }
        )
        outputs.append(AccessLogOutput(settings))
    if "--metrics" in sys.argv:
        outputs.append(MetricsOutput())
    if outputs:  # a queue no run fills: every request's record is written
        state.write_records(RecordWriter(outputs, queue=10**7))
        assert state.record_writer is not None
        state.record_writer.start()
    client = ClientConnection(state, b"http")
    client.connection_made(NullTransport())  # type: ignore[arg-type]
    node = snapshot.targets["backend"].nodes[0]
    assert node.pool is not None
    upstream = UpstreamConnection(node.pool)
    upstream.connection_made(NullTransport())  # type: ignore[arg-type]
    node.pool.idle.append(upstream)

    served = 0

    def one() -> None:
        nonlocal served
        client.data_received(request)
        upstream.data_received(RESPONSE)
        served += 1
        if served % 1024 == 0:  # what the loop would run meanwhile (the log step)
            turn()

    def turn() -> None:
        """One turn of the event loop: the callbacks requests scheduled (a log
        phase's, the access log's) run, as they do between reads when serving,
        instead of piling up."""
        loop.call_soon(loop.stop)
        loop.run_forever()

    for _ in range(1000):
        one()
    count = 200_000
    if "--count" in sys.argv:  # fixed work, for instruction counting under valgrind
        for _ in range(int(sys.argv[sys.argv.index("--count") + 1])):
            one()
        _finish(state)
        return
    if "--profile" in sys.argv:
        profiler = cProfile.Profile()

        def run() -> None:
            for _ in range(count):
                one()

        profiler.runcall(run)
        rows = int(os.environ.get("HOTPATH_ROWS", "25"))  # functions listed
        pstats.Stats(profiler).sort_stats("tottime").print_stats(rows)
        return
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(count // 5):
            one()
        best = min(best, time.process_time() - start)
    print(f"{best / (count // 5) * 1e6:.2f} µs of Python work per proxied request (best of 5)")
    _finish(state)


def _finish(state: ProxyState) -> None:
    """Write what the access log still holds (its cost is part of the run)."""
    writer = state.record_writer
    if writer is not None:
        state.log_ended()
        writer.stop(timeout=600)
        failed = sum(writer.failed.values())
        if writer.dropped or failed:
            print(f"records: {writer.dropped} dropped, {failed} failed", file=sys.stderr)


if __name__ == "__main__":
    main()
