"""A scripted node that counts what reaches it, and a proxy with the cache in front."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Request, Upstream

Reply = tuple[int, list[tuple[str, str]], bytes]
Script = Callable[[Request], Reply]


def fixed(status: int = 200, body: bytes = b"hello", /, **headers: str) -> Script:
    """Always the same response; ``cache_control="max-age=60"`` → Cache-Control."""
    fields = [(name.replace("_", "-").title(), value) for name, value in headers.items()]

    def script(request: Request) -> Reply:
        return status, list(fields), body

    return script


@dataclass
class Origin:
    """A node answering each path by its script (404 without one), counting requests."""

    scripts: dict[str, Script] = field(default_factory=dict)
    seen: list[Request] = field(default_factory=list)
    gate: threading.Event | None = None  # when set, answers wait for it

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.upstream = Upstream(self.handle)

    def handle(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            with self.lock:
                self.seen.append(request)
            if self.gate is not None:
                self.gate.wait(10)
            script = self.scripts.get(request.path.partition("?")[0])
            status, headers, body = script(request) if script else (404, [], b"no script")
            if request.method == "HEAD":
                headers = [*headers, ("Content-Length", str(len(body)))]
                body = b""
            conn.respond(status, body, headers, reason="X")

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.seen if path is None or r.path.partition("?")[0] == path)

    @property
    def url(self) -> str:
        return self.upstream.url

    def close(self) -> None:
        self.upstream.close()


@contextmanager
def cached(
    scripts: dict[str, Script] | None = None,
    extra: dict[str, Any] | None = None,
    /,
    **settings: Any,
) -> Iterator[tuple[Origin, RunningProxy]]:
    """A node with ``scripts`` and a proxy whose one route has proxy-cache(``settings``);
    ``extra`` adds top-level config (consumers, ...) and route plugins ("plugins")."""
    origin = Origin(dict(scripts or {}))
    extra = dict(extra or {})
    plugins = {"proxy-cache": settings, **extra.pop("plugins", {})}
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    try:
        with RunningProxy(make_config({"b": origin.url}, routes, **extra)) as proxy:
            yield origin, proxy
    finally:
        origin.close()


def get(proxy: RunningProxy, path: str = "/", method: str = "GET", **headers: str) -> Response:
    """One request on a new connection; ``if_none_match="x"`` → If-None-Match."""
    host = headers.pop("host", "test.local")
    fields = {name.replace("_", "-").title(): value for name, value in headers.items()}
    with Client(proxy.port) as client:
        return client.request(method, path, fields, host=host)


def status_of(response: Response) -> str | None:
    return response.header("X-Cache-Status")
