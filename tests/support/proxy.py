"""Running the proxy inside the test process and talking to it over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple

import httptools
import uvloop

from quiver.config.models import Config
from quiver.observe.writer import RecordWriter
from quiver.plugins.catalog import Catalog
from quiver.plugins.stores import Stores
from quiver.proxy.server import BoundAddress, ProxyServer, listen_socket
from tests.support.catalog import built_in, load_config_text
from tests.support.fields import field_value
from tests.support.upstream import Handler, Upstream

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def make_config(
    targets: dict[str, str | dict[str, Any]],
    routes: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Config:
    """A Config listening on a free port; ``routes`` default to one catch-all route.

    A target is given by its URL, or by a mapping of its other settings, e.g.
    ``{"backend": {"url": upstream.url, "timeouts": {"read": 0.3}}}``.
    """
    data: dict[str, Any] = {"listen": "127.0.0.1:0"}
    data["targets"] = [
        {"name": name, "url": spec} if isinstance(spec, str) else {"name": name, **spec}
        for name, spec in targets.items()
    ]
    if routes is None:
        first = next(iter(targets))
        routes = [{"name": "all", "paths": ["/"], "target": first}]
    data["routes"] = routes
    data.update(extra)
    return Config.model_validate(data)


class RunningProxy:
    """A ProxyServer on its own uvloop thread, for the duration of a test."""

    def __init__(
        self,
        config: Config | str,
        catalog: Catalog | None = None,
        stores: Stores | None = None,
        record_writer: RecordWriter | None = None,
    ) -> None:
        """``catalog`` (the built-in one by default) validates a config given as text
        and builds its plugins and in-process targets; ``stores`` hold the plugins'
        counters (in this process's memory by default); ``record_writer`` takes the
        exchanges' records (by default the config's access log, if any)."""
        catalog = catalog if catalog is not None else built_in()
        if isinstance(config, str):
            config = load_config_text(config, catalog=catalog)
        self.config = config
        self.loop = uvloop.new_event_loop()
        self.server: ProxyServer | None = None
        self.addresses: list[BoundAddress] = []
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.server = ProxyServer(config, self.loop, catalog, stores, record_writer)
                sockets = [
                    (spec, listen_socket(spec.address, reuse_port=False)) for spec in config.listen
                ]
                self.addresses = self.loop.run_until_complete(self.server.start(sockets))
            except BaseException as exc:  # handed to the test thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.server.stop(0))
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    @property
    def port(self) -> int:
        return self.addresses[0].port

    @property
    def url(self) -> str:
        return self.addresses[0].url

    def call(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run ``fn(*args)`` on the proxy's loop and return its result."""
        done = threading.Event()
        result: list[T] = []

        def wrapper() -> None:
            result.append(fn(*args))
            done.set()

        self.loop.call_soon_threadsafe(wrapper)
        done.wait(10)
        return result[0]

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self) -> RunningProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def serve(handler: Handler, **extra: Any) -> Iterator[tuple[Upstream, RunningProxy]]:
    """A node running ``handler`` and a proxy in front of it (``extra`` as for ``make_config``)."""
    with (
        Upstream(handler) as node,
        RunningProxy(make_config({"backend": node.url}, **extra)) as proxy,
    ):
        yield node, proxy


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    version: str = "1.1"
    complete: bool = False

    def header(self, name: str) -> str | None:
        return field_value(self.headers, name)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class _ResponseReader:
    head_request: bool = False
    done: list[Response] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.current: Response | None = None

    def on_message_begin(self) -> None:
        self.current = Response(0, "", [])

    def on_status(self, reason: bytes) -> None:
        assert self.current is not None
        self.current.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self.current is not None
        self.current.status = self.parser.get_status_code()
        self.current.version = self.parser.get_http_version()
        if self.head_request or self.current.status in (100, 101):
            self.current.complete = True
            self.done.append(self.current)
            self.current = None
            self.parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        assert self.current is not None
        self.current.body += body

    def on_message_complete(self) -> None:
        if self.current is not None:
            self.current.complete = True
            self.done.append(self.current)
            self.current = None


class Client:
    """A raw HTTP/1.1 client connection: send any bytes, read responses one by one."""

    def __init__(
        self,
        port: int,
        *,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=server_hostname or "localhost")
        self.sock = sock
        self.buffer = b""
        self.closed = False
        # responses that arrived in the same read as an earlier one (pipelining)
        self._pending: list[Response] = []
        self._reader: _ResponseReader | None = None

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        host: str = "test.local",
    ) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        all_headers = dict(headers or {})
        if body and "Content-Length" not in all_headers and "Transfer-Encoding" not in all_headers:
            all_headers["Content-Length"] = str(len(body))
        lines += [f"{k}: {v}" for k, v in all_headers.items()]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return self.read_response(head=method == "HEAD")

    def read_response(self, *, head: bool = False) -> Response:
        if self._pending:
            return self._pending.pop(0)
        reader = self._reader
        if reader is None or reader.current is None:
            # a fresh parser unless a pipelined response is already half read
            reader = self._reader = _ResponseReader(head_request=head)
        data = self.buffer
        self.buffer = b""
        while True:
            if data:
                with contextlib.suppress(httptools.HttpParserUpgrade):
                    reader.parser.feed_data(data)
                if reader.done:
                    first, *self._pending = reader.done
                    reader.done = []
                    if reader.current is None:
                        self._reader = None
                    return first
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""  # cut off: treated like a close, the response stays incomplete
            if not data:
                self.closed = True
                self._reader = None
                if reader.current is not None and reader.current.status:
                    return reader.current  # close-delimited body, or cut short
                raise ConnectionError("connection closed before a complete response")

    def read_until_close(self) -> bytes:
        """Every byte until the peer closes; the socket timeout bounds the wait."""
        chunks = [self.buffer]
        self.buffer = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
        self.closed = True
        return b"".join(chunks)

    def is_closed_by_peer(self) -> bool:
        """True once the peer closed (reads EOF or reset), without waiting for data."""
        try:
            data = self.sock.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            return True
        if data:
            self.buffer += data
            return False
        return True

    def wait_closed(self, timeout: float = 5.0) -> bytes:
        """Bytes received until the peer closes; raises TimeoutError if it stays open."""
        previous = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.read_until_close()
        except TimeoutError as exc:
            raise TimeoutError(f"the peer kept the connection open for {timeout}s") from exc
        finally:
            self.sock.settimeout(previous)

    def stays_open(self, seconds: float) -> bool:
        """True when nothing arrives and the peer does not close within ``seconds``."""
        previous = self.sock.gettimeout()
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return False
        finally:
            self.sock.settimeout(previous)
        self.buffer += data
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exchange(port: int, data: bytes, *, head: bool = False, timeout: float = 10.0) -> Response:
    """Send raw bytes on a new connection and read one response."""
    with Client(port, timeout=timeout) as client:
        client.send(data)
        return client.read_response(head=head)
