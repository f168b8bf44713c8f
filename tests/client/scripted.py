"""In-test HTTP servers for the client SDK: real sockets, answers computed per request."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from quiver.client.events import ClientEvent
from tests.support.upstream import Conn, Request, Upstream

Answer = tuple[int, list[tuple[str, str]], bytes]


def json_answer(
    data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Answer:
    return (
        status,
        [("Content-Type", "application/json"), *(headers or [])],
        json.dumps(data).encode(),
    )


@contextmanager
def scripted(respond: Callable[[Request], Answer]) -> Iterator[Upstream]:
    """A keep-alive server answering each request with ``respond(request)``."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            status, headers, body = respond(request)
            conn.respond(status, body, headers)

    with Upstream(handler) as server:
        yield server


@contextmanager
def in_turn(*answers: Answer) -> Iterator[Upstream]:
    """A server giving ``answers`` one per request, in order, then the last one again."""
    queue = list(answers)

    def respond(request: Request) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    with scripted(respond) as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Waits:
    """A sleep that records what it was asked to wait and returns at once, and a
    clock that moves only by those sleeps: retries and pacing become exact."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def clock(self) -> float:
        return self.now


class Events(list[ClientEvent]):
    """A hook keeping every event."""

    def __call__(self, event: ClientEvent) -> None:
        self.append(event)

    def named(self, name: str) -> list[ClientEvent]:
        return [event for event in self if event.name == name]
