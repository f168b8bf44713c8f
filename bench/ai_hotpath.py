"""Count the Python work of one non-streamed chat completion through an AI route.

The route of ``bench/ai.sh`` (key-auth with a bearer key, one ``openai`` provider),
without sockets: the chat request is fed into a client connection, the event loop is
turned until the provider's request was written to a stand-in pooled connection,
the provider's answer is fed into that connection, and the loop is turned until
the client's response was written.  What is measured is ours alone, not the
kernel's.  Run: python bench/ai_hotpath.py [--profile] [--count N]

For numbers that do not depend on what else the machine is doing, count
instructions:  bench/ai_hotpath_instructions.sh
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
import time

import uvloop

from quiver.config.loader import validate
from quiver.proxy.client import ClientConnection
from quiver.proxy.outbound import OutboundClient
from quiver.proxy.server import ProxyState
from quiver.proxy.snapshot import Snapshot, compile_snapshot
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.upstream import UpstreamConnection
from quiver.target_types import default_catalog

KEY = "bench-key-0123456789"
BODY = (
    b'{"model":"gpt-bench","messages":[{"role":"system","content":"You are a terse '
    b'assistant."},{"role":"user","content":"Say hello to the benchmark in one sentence."}]}'
)
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY
)
COMPLETION = (
    b'{"id":"chatcmpl-bench0001","object":"chat.completion","created":1765000000,'
    b'"model":"gpt-bench","system_fingerprint":"fp_bench","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello, benchmark: this is a fixed answer.",'
    b'"refusal":null},"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":24,"completion_tokens":18,"total_tokens":42}}'
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 12:00:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n"
    % len(COMPLETION)
    + COMPLETION
)
CONFIG = {
    "ai": {
        "providers": [
            {
                "name": "fake",
                "type": "openai",
                "base_url": "http://127.0.0.1:9001/v1",
                "api_key": "sk-upstream",
            }
        ],
        "models": [
            {"name": "gpt-bench", "deployments": [{"provider": "fake", "model": "gpt-bench"}]}
        ],
    },
    "consumers": [{"name": "bench", "credentials": {"key-auth": [{"key": KEY}]}}],
    "routes": [{"name": "ai", "paths": ["/v1"], "ai": {}, "plugins": {"key-auth": {}}}],
}


class NullTransport:
    def __init__(self) -> None:
        self.sent = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.sent += 1
        self.last = data

    def writelines(self, data: list[bytes]) -> None:
        self.sent += 1
        self.last = b"".join(data)

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 5555) if name == "peername" else None

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def main() -> None:
    loop = uvloop.new_event_loop()
    config = validate(CONFIG, default_catalog())
    sweeper = Sweeper(loop, 1.0)
    snapshots: list[Snapshot] = []  # (the outbound client reads the live one's targets)
    outbound = OutboundClient(loop, sweeper, targets=lambda: snapshots[0].targets)
    snapshot = compile_snapshot(config, loop, sweeper, catalog=default_catalog(), outbound=outbound)
    snapshots.append(snapshot)
    state = ProxyState(loop, snapshot, sweeper, None)
    client_transport = NullTransport()
    client = ClientConnection(state, b"http")
    client.connection_made(client_transport)  # type: ignore[arg-type]
    node = snapshot.targets["ai-provider-fake"].nodes[0]
    assert node.pool is not None
    upstream_transport = NullTransport()
    upstream = UpstreamConnection(node.pool)
    upstream.connection_made(upstream_transport)  # type: ignore[arg-type]
    node.pool.idle.append(upstream)

    async def one() -> None:
        sent = client_transport.sent
        asked = upstream_transport.sent
        client.data_received(REQUEST)
        while upstream_transport.sent == asked:
            await asyncio.sleep(0)  # (one turn of the loop)
        upstream.data_received(RESPONSE)
        while client_transport.sent == sent:
            await asyncio.sleep(0)

    async def run(count: int) -> None:
        for _ in range(count):
            await one()

    loop.run_until_complete(run(500))
    last = client_transport.last
    if not last.startswith(b"HTTP/1.1 200") or not last.endswith(COMPLETION):
        raise SystemExit(f"unexpected answer: {last[:600]!r}")
    if "--show" in sys.argv:
        print(upstream_transport.last.decode())
        print(last.decode())
    if "--count" in sys.argv:  # fixed work, for instruction counting under valgrind
        loop.run_until_complete(run(int(sys.argv[sys.argv.index("--count") + 1])))
        return
    count = 50_000
    if "--profile" in sys.argv:
        profiler = cProfile.Profile()
        profiler.runcall(loop.run_until_complete, run(count))
        rows = int(os.environ.get("HOTPATH_ROWS", "30"))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(rows)
        return
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        loop.run_until_complete(run(count // 5))
        best = min(best, time.process_time() - start)
    print(f"{best / (count // 5) * 1e6:.2f} µs of Python work per completion (best of 5)")


if __name__ == "__main__":
    main()
