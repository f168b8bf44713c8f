"""CPU per page of each way the SDK could fetch, for choosing its transport.

``quiver sync``'s pages are ~216 KB of JSON (1,000 records); the fetch is paid per
page, so what counts is the client's CPU time (``time.process_time``) per GET of
one such page over a keep-alive connection. The server (a bare asyncio Protocol
answering the same bytes) runs in a child process on the other core; the
client's body is read in full, never parsed (parsing is the same for all).

    python bench/client_pages.py [--pages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import orjson
import uvloop

from quiver.client import AsyncClient, Client
from quiver.client.http11 import AsyncLeanTransport
from quiver.proxy.outbound.client import OutboundClient
from quiver.proxy.sweeper import Sweeper

WARMUP = 20


def page() -> bytes:
    records = [
        {
            "id": n,
            "name": f"item {n}",
            "price": n * 1.25,
            "active": n % 2 == 0,
            "updated_at": f"2024-01-{1 + n % 28:02d}T12:00:00Z",
            "owner": {"id": n % 97, "email": f"owner{n % 97}@example.com", "tier": "gold"},
            "tags": [{"name": "a", "weight": n}, {"name": "b", "weight": n + 1}],
        }
        for n in range(1000)
    ]
    return orjson.dumps({"data": records, "total_pages": 1000})


def _serve(sock: socket.socket, body: bytes) -> None:
    os.sched_setaffinity(0, {1})
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    response = answer % len(body) + body

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.WriteTransport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            self.transport.write(response * data.count(b"\r\n\r\n"))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, sock=sock)
        await server.serve_forever()

    uvloop.run(main())


Fetch = Callable[[], Awaitable[bytes]]


async def _cpu_per_page(fetch: Fetch, pages: int) -> float:
    for _ in range(WARMUP):
        await fetch()
    began = time.process_time()
    for _ in range(pages):
        await fetch()
    return (time.process_time() - began) / pages * 1000


async def _httpx(url: str, pages: int, lean: bool = False) -> float:
    transport = AsyncLeanTransport(httpx.AsyncHTTPTransport) if lean else None
    async with httpx.AsyncClient(transport=transport) as client:

        async def fetch() -> bytes:
            return (await client.get(url)).content

        return await _cpu_per_page(fetch, pages)


async def _lean_alone(url: str, pages: int) -> float:
    transport = AsyncLeanTransport(httpx.AsyncHTTPTransport)
    request = httpx.Request("GET", url)

    async def fetch() -> bytes:
        response = await transport.handle_async_request(request)
        return await response.aread()

    try:
        return await _cpu_per_page(fetch, pages)
    finally:
        await transport.aclose()


async def _aiohttp(url: str, pages: int) -> float:
    async with aiohttp.ClientSession() as session:

        async def fetch() -> bytes:
            async with session.get(url) as response:
                return await response.read()

        return await _cpu_per_page(fetch, pages)


async def _outbound(url: str, pages: int) -> float:
    loop = asyncio.get_running_loop()
    sweeper = Sweeper(loop, interval=1.0)
    sweeper.start()
    client = OutboundClient(loop, sweeper)

    async def fetch() -> bytes:
        response = await client.request("GET", url)
        return await response.read()

    try:
        return await _cpu_per_page(fetch, pages)
    finally:
        client.close()
        sweeper.stop()


async def _sdk(url: str, pages: int, transport: str) -> float:
    async with AsyncClient(transport=transport) as client:  # type: ignore[arg-type]

        async def fetch() -> bytes:
            return (await client.get(url)).content

        return await _cpu_per_page(fetch, pages)


def _sdk_sync(url: str, pages: int, transport: str) -> float:
    with Client(transport=transport) as client:  # type: ignore[arg-type]
        for _ in range(WARMUP):
            client.get(url)
        began = time.process_time()
        for _ in range(pages):
            client.get(url)
        return (time.process_time() - began) / pages * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    pages = parser.parse_args().pages
    body = page()
    sock = socket.create_server(("127.0.0.1", 0))
    server = multiprocessing.Process(target=_serve, args=(sock, body), daemon=True)
    server.start()
    os.sched_setaffinity(0, {0})
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/items?page=1"
    runs: dict[str, Callable[[], float]] = {
        "httpx.AsyncClient (asyncio)": lambda: asyncio.run(_httpx(url, pages)),
        "httpx.AsyncClient (uvloop)": lambda: uvloop.run(_httpx(url, pages)),
        "aiohttp.ClientSession (uvloop)": lambda: uvloop.run(_aiohttp(url, pages)),
        "lean transport alone (uvloop)": lambda: uvloop.run(_lean_alone(url, pages)),
        "httpx.AsyncClient + lean (uvloop)": lambda: uvloop.run(_httpx(url, pages, lean=True)),
        "quiver outbound engine (uvloop)": lambda: uvloop.run(_outbound(url, pages)),
        "quiver.client.AsyncClient httpx": lambda: uvloop.run(_sdk(url, pages, "httpx")),
        "quiver.client.AsyncClient http11": lambda: uvloop.run(_sdk(url, pages, "http11")),
        "quiver.client.Client httpx": lambda: _sdk_sync(url, pages, "httpx"),
        "quiver.client.Client http11": lambda: _sdk_sync(url, pages, "http11"),
    }
    print(f"{len(body):,} bytes a page, {pages} pages each")
    try:
        for name, run in runs.items():
            print(f"{name:36} {run():6.3f} ms CPU/page")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
