"""The official MCP SDK as the tests' client: connect, then run a coroutine with it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

T = TypeVar("T")

#: the SDK's ways of speaking to a server: probing with server/discover (falling
#: back to initialize), the 2026-07-28 revision directly, and the initialize
#: handshake of 2025-11-25
MODES = ("auto", "2026-07-28", "legacy")


def with_client(
    url: str,
    work: Callable[[Client], Awaitable[T]],
    *,
    mode: str = "auto",
    headers: dict[str, str] | None = None,
) -> T:
    """``work(client)`` on a client of the MCP endpoint at ``url``."""

    async def run() -> T:
        async with httpx2.AsyncClient(headers=headers or {}, timeout=20) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode=mode) as client:
                return await work(client)

    return asyncio.run(run())


def tool_names(url: str, **options: Any) -> list[str]:
    """The names of the tools the endpoint lists."""

    async def names(client: Client) -> list[str]:
        return [tool.name for tool in (await client.list_tools()).tools]

    return with_client(url, names, **options)
