"""The built-in demo target: a small JSON echo API served next to the proxy.

With no config file ``quiver serve`` routes every path to it, so a newcomer sees
a request travel through the gateway with nothing else installed:
``curl http://127.0.0.1:8080/hello`` answers with what the target received.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools
import orjson

from quiver.config.models import Config

DEMO_TARGET = "demo"


def demo_config(demo_address: str, listen: str = "127.0.0.1:8080") -> Config:
    """The embedded default config: everything goes to the demo target."""
    return Config.model_validate(
        {
            "listen": listen,
            "targets": [{"name": DEMO_TARGET, "url": f"http://{demo_address}"}],
            "routes": [{"name": "demo", "paths": ["/"], "target": DEMO_TARGET}],
        }
    )


class DemoProtocol(asyncio.Protocol):
    """Answers every request with a JSON echo of its method, path, headers and body size."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body_size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)

    def on_message_complete(self) -> None:
        path, _, query = self.url.decode("latin-1").partition("?")
        body = orjson.dumps(
            {
                "service": "quiver demo target",
                "method": self.parser.get_method().decode(),
                "path": path,
                "query": query,
                "headers": self.headers,
                "body_bytes": self.body_size,
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )
        keep_alive = self.parser.should_keep_alive()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
            % (len(body), b"" if keep_alive else b"Connection: close\r\n")
        )
        assert self.transport is not None
        self.transport.write(head + body)
        if not keep_alive:
            self.transport.close()
