"""Where ``POST /responses`` keeps the responses it stores (``store: true``), so that
a ``previous_response_id`` can continue the conversation on any worker.

The store follows ``ai.counters``: with ``backend: local`` a response is a small JSON
file under the node's run directory (``<run_dir>/ai-responses/``), which every
worker of the node reads; with ``backend: redis`` it is a Redis key (with a time to
live), which every node sharing that Redis reads.  Reads and writes of files happen
in a thread and Redis calls are awaited, so a request never blocks the event loop on
them; a response is kept ``RESPONSES_TTL`` seconds.

A record holds the chat messages of the whole conversation up to and including
that response (``history``), the response object as the client got it, and the
deployment that answered (``model``, ``deployment``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any, Protocol

import orjson

from quiver.plugins.counters.redis_url import connect, parse
from quiver.plugins.stores import Stores

#: how long a stored response can be continued or read back (30 days, as OpenAI keeps them)
RESPONSES_TTL = 30 * 86400
_DIRECTORY = "ai-responses"
_ID = re.compile(r"^resp_[A-Za-z0-9_-]{1,200}$")


class ResponseStore(Protocol):
    async def get(self, response_id: str) -> dict[str, Any] | None: ...
    async def put(self, response_id: str, record: dict[str, Any]) -> None: ...
    async def delete(self, response_id: str) -> bool: ...


def valid_id(response_id: str) -> bool:
    """Whether ``response_id`` can name a stored response (it names a file or a key)."""
    return _ID.match(response_id) is not None


class MemoryResponses:
    """Responses in this worker's memory (no run directory: tests, one process)."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, response_id: str) -> dict[str, Any] | None:
        found = self.records.get(response_id)
        if found is None or found[0] < time.time():
            return None
        return found[1]

    async def put(self, response_id: str, record: dict[str, Any]) -> None:
        self.records[response_id] = (time.time() + RESPONSES_TTL, record)

    async def delete(self, response_id: str) -> bool:
        return self.records.pop(response_id, None) is not None


class FileResponses:
    """Responses as files in the node's run directory, shared by its workers."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, response_id: str) -> Path:
        return self.directory / f"{response_id}.json"

    async def get(self, response_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read, self._path(response_id))

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            if path.stat().st_mtime + RESPONSES_TTL < time.time():
                path.unlink(missing_ok=True)
                return None
            record: dict[str, Any] = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return record

    async def put(self, response_id: str, record: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, self._path(response_id), orjson.dumps(record))

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(path)  # (a reader sees the whole record or none)

    async def delete(self, response_id: str) -> bool:
        path = self._path(response_id)

        def remove() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True

        return await asyncio.to_thread(remove)


class RedisResponses:
    """Responses as Redis keys, shared by every node using that Redis."""

    def __init__(self, url: str, prefix: str, timeout: float) -> None:
        self.client, self._others = connect(parse(url), max(timeout, 1.0))
        self.prefix = prefix + "resp:"

    async def get(self, response_id: str) -> dict[str, Any] | None:
        data = await self.client.get(self.prefix + response_id)
        if data is None:
            return None
        record: dict[str, Any] = orjson.loads(data)
        return record

    async def put(self, response_id: str, record: dict[str, Any]) -> None:
        await self.client.set(self.prefix + response_id, orjson.dumps(record), ex=RESPONSES_TTL)

    async def delete(self, response_id: str) -> bool:
        return bool(await self.client.delete(self.prefix + response_id))

    async def aclose(self) -> None:
        for client in (self.client, *self._others):
            with contextlib.suppress(Exception):
                await client.aclose()


def response_store(
    stores: Stores, backend: str, url: str | None, prefix: str, timeout: float
) -> ResponseStore:
    """The store of the worker for these counters settings (kept across reloads)."""
    if backend == "redis" and url is not None:
        return stores.keep(
            ("ai-responses", url, prefix), lambda: RedisResponses(url, prefix, timeout)
        )
    if stores.run_dir is not None:
        directory = stores.run_dir / _DIRECTORY
        return stores.keep(("ai-responses", directory), lambda: FileResponses(directory))
    return stores.keep(("ai-responses", None), MemoryResponses)
