"""One HTTP/1.1 GET over asyncio, enough to fetch a JWK Set without an HTTP client library."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

MAX_SIZE = 1024 * 1024


class FetchError(Exception):
    """The document could not be fetched; the message says why (caught in this package)."""


async def fetch(url: str, *, timeout: float, tls: ssl.SSLContext | None) -> bytes:
    """The body of a 200 response to ``GET url``; ``tls`` is required for https.

    Redirects are not followed, and the body may be at most ``MAX_SIZE`` bytes.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
        "Accept: application/jwk-set+json, application/json\r\n"
        "User-Agent: quiver\r\n"
        "Connection: close\r\n\r\n"
    )
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            host, parts.port or (443 if https else 80), ssl=tls if https else None
        )
        try:
            writer.write(head.encode("ascii"))
            return await _read(reader)
        finally:
            writer.close()


class _Response:
    def __init__(self) -> None:
        self.body = bytearray()
        self.framed = False  # Content-Length or chunked: the end is known without a close
        self.headers_done = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


async def _read(reader: asyncio.StreamReader) -> bytes:
    response = _Response()
    parser = httptools.HttpResponseParser(response)
    while not response.complete:
        data = await reader.read(65536)
        if not data:
            if response.headers_done and not response.framed:
                break  # the body ran until the close
            raise FetchError("the connection closed before the response was complete")
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise FetchError(f"malformed HTTP response: {exc}") from exc
        if len(response.body) > MAX_SIZE:
            raise FetchError(f"the response is over {MAX_SIZE} bytes")
    status = parser.get_status_code()
    if status != 200:
        raise FetchError(f"HTTP status {status}")
    return bytes(response.body)
