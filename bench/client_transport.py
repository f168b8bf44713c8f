"""Requests per second of a sequential GET loop, for choosing the SDK's transport.

Compares httpx.AsyncClient, httpx.Client and Quiver's own outbound client (the
data plane's pooled HTTP/1.1 engine on uvloop + httptools), then the SDK's own
clients over httpx, against one local keep-alive server answering a small JSON
body.  The server runs in a child
process so that it does not share the client's interpreter.

    python bench/client_transport.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time
from collections.abc import Callable

import httpx
import uvloop

from quiver.client import AsyncClient, Client
from quiver.proxy.outbound.client import OutboundClient
from quiver.proxy.sweeper import Sweeper

BODY = b'{"id": 1, "name": "widget"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class _Answer(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.WriteTransport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(RESPONSE * data.count(b"\r\n\r\n"))


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Answer, sock=sock)
        await server.serve_forever()

    uvloop.run(main())


async def _httpx_async(url: str, seconds: float) -> int:
    async with httpx.AsyncClient() as client:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            (await client.get(url)).json()
            count += 1
    return count


def _httpx_sync(url: str, seconds: float) -> int:
    with httpx.Client() as client:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            client.get(url).json()
            count += 1
    return count


async def _sdk_async(url: str, seconds: float) -> int:
    async with AsyncClient() as client:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            (await client.get(url)).json()
            count += 1
    return count


def _sdk_sync(url: str, seconds: float) -> int:
    with Client() as client:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            client.get(url).json()
            count += 1
    return count


async def _outbound(url: str, seconds: float) -> int:
    loop = asyncio.get_running_loop()
    sweeper = Sweeper(loop, interval=1.0)
    sweeper.start()
    client = OutboundClient(loop, sweeper)
    try:
        count, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            response = await client.request("GET", url)
            await response.read()
            count += 1
    finally:
        client.close()
        sweeper.stop()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    seconds = parser.parse_args().seconds
    sock = socket.create_server(("127.0.0.1", 0))
    server = multiprocessing.Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/items/1"
    try:
        runs: dict[str, Callable[[], int]] = {
            "httpx.AsyncClient (asyncio)": lambda: asyncio.run(_httpx_async(url, seconds)),
            "httpx.AsyncClient (uvloop)": lambda: uvloop.run(_httpx_async(url, seconds)),
            "httpx.Client": lambda: _httpx_sync(url, seconds),
            "quiver outbound (uvloop)": lambda: uvloop.run(_outbound(url, seconds)),
            "quiver.client.AsyncClient (uvloop)": lambda: uvloop.run(_sdk_async(url, seconds)),
            "quiver.client.Client": lambda: _sdk_sync(url, seconds),
        }
        for name, run in runs.items():
            print(f"{name:36} {run() / seconds:8.0f} requests/s")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
