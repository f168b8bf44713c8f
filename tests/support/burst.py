"""Many requests at once, each on its own connection, for tests of exact limits."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence


async def _one(port: int, request: bytes, timeout: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)  # the rest, until the proxy closes
        return int(status_line.split(b" ", 2)[1])
    finally:
        writer.close()


async def _burst(ports: Sequence[int], requests: Sequence[bytes], timeout: float) -> Counter[int]:
    statuses = await asyncio.gather(
        *(
            _one(ports[index % len(ports)], request, timeout)
            for index, request in enumerate(requests)
        )
    )
    return Counter(statuses)


def burst(
    ports: int | Sequence[int],
    path: str,
    count: int,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Counter[int]:
    """Send ``count`` GET requests for ``path`` at once, each on a new connection
    (spread over ``ports`` in turn); how many got each status."""
    lines = [f"GET {path} HTTP/1.1", "Host: test", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    port_list = [ports] if isinstance(ports, int) else list(ports)
    return asyncio.run(_burst(port_list, [request] * count, timeout))
