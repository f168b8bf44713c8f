"""Answering a request inside the worker: an in-process target's ``handle``.

The target's code is not the proxy's, so it gets the plugins' fault boundary:
whatever it raises that is not an ``HTTPError``, and whatever it returns that is
not a well-formed :class:`~quiver.plugins.responder.Response`, is logged once
with the request id and answered 500 (or cuts the connection once the body has
begun).  It gets the target's read timeout too: a ``handle`` that does not answer
in time, or a streamed body that stalls that long between pieces, is answered 504
(or cut).  Framing and hop-by-hop fields it sets are the proxy's to state: they
are dropped (RFC 9110 §7.6.1), the proxy frames the body itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from quiver.errors import GatewayTimeout, HTTPError
from quiver.http.fields import FRAMING_AND_HOP_BY_HOP, TOKEN, UNSAFE_VALUE, reason_phrase
from quiver.plugins.responder import Response
from quiver.proxy.flow import FILTERED, NO_BODY, WRAP_CHUNKS
from quiver.proxy.phases import plugin_fault
from quiver.proxy.response_head import rewrite_head

if TYPE_CHECKING:
    from quiver.plugins.responder import TargetType
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.snapshot import RouteRuntime

_LAST_CHUNK = b"0\r\n\r\n"
# the shared rules of quiver.http.fields, for names and values given as bytes
_TOKEN = re.compile(TOKEN.pattern.encode())
_UNSAFE_VALUE = re.compile(UNSAFE_VALUE.pattern.encode())
#: field names in-process targets sent, known to be names: whether they are sent
#: (False: framing and hop-by-hop fields, the proxy's own), up to _NAMES_KEPT of them
_NAMES: dict[bytes, bool] = {}
_NAMES_KEPT = 512


class InvalidResponse(ValueError):
    """What an in-process target returned cannot be sent as an HTTP response."""


def render_head(response: object) -> bytes:
    """The head of ``response`` as a node would send it (Content-Length for bytes).

    Raises InvalidResponse for anything that is not a well-formed Response.
    """
    if not isinstance(response, Response):
        raise InvalidResponse(f"handle returned {type(response).__name__}, not a Response")
    status = response.status
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise InvalidResponse(f"status {status!r} is not an int from 200 to 599")
    body = response.body
    if not isinstance(body, bytes) and not hasattr(body, "__aiter__"):
        raise InvalidResponse("the body is neither bytes nor an async iterator of bytes")
    try:
        fields = list(response.headers)
    except Exception as exc:
        raise InvalidResponse("the headers are not a list of (name, value) pairs") from exc
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    for field in fields:
        if not (isinstance(field, tuple) and len(field) == 2):
            raise InvalidResponse("a header is not a (name, value) pair of bytes")
        name, value = field
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise InvalidResponse("a header name or value is not bytes")
        sent = _NAMES.get(name) if type(name) is bytes else None
        if sent is None:
            if not _TOKEN.match(name):
                raise InvalidResponse(f"{name!r} is not a field name")
            sent = name.lower() not in FRAMING_AND_HOP_BY_HOP
            if type(name) is bytes and len(_NAMES) < _NAMES_KEPT:
                _NAMES[name] = sent
        if _UNSAFE_VALUE.search(value):
            raise InvalidResponse(f"the value of {name!r} has a line break or NUL")
        if sent:
            lines += (name, b": ", value, b"\r\n")
    if isinstance(body, bytes) and status != 204 and status != 304:
        lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    return b"".join(lines)


class InProcessAnswers:
    """The in-process side of an exchange (mixed into ``Exchange``)."""

    #: an in-process response body being sent waits here while the client is slow
    drained: asyncio.Future[None] | None = None

    if TYPE_CHECKING:
        client: ClientConnection
        route: RouteRuntime | None
        rid: bytes
        method: bytes
        upgrade: bytes | None
        raw_path: bytes
        upstream_path: bytes
        response_fields: bytes
        body: bytes | None
        finished: bool
        response_started: bool
        keep_alive: bool
        version: bytes
        status: int
        mode: int
        out: list[bytes]
        connect_task: Any
        tap: Callable[[bytes, bool], None] | None

        @property
        def chain(self) -> Any: ...

        def fail(self, error: HTTPError) -> None: ...
        def flush(self) -> None: ...
        def _finish(self) -> None: ...
        def _body_ready(self, resume_at: int) -> bool: ...
        def _filter(self, chunk: bytes, last: bool) -> bool: ...
        def run_response_headers(self, raw: bytes) -> bytes: ...

    def _answer_in_process(self, responder: TargetType[Any]) -> None:
        """Run ``responder.handle`` once the whole body is in, and send its answer."""
        if not self._body_ready(len(self.chain.access)):
            return
        try:
            result = responder.handle(self)  # type: ignore[arg-type]
        except HTTPError:
            raise
        except Exception as exc:
            raise plugin_fault(responder.handle, "handle", self.rid, exc) from exc
        if inspect.isawaitable(result):
            loop = self.client.server.loop
            waiting = result if inspect.iscoroutine(result) else _awaited(result)
            task = loop.create_task(waiting)
            self.connect_task = task
            task.add_done_callback(_Waiting(self, responder, task, self._read_timeout()).done)
        else:
            self._deliver(responder, result)

    def _read_timeout(self) -> float:
        route = self.route
        assert route is not None
        return route.read_timeout or route.target.answer_timeout

    def _answered(self, responder: TargetType[Any], task: asyncio.Task[Any], expired: bool) -> None:
        """``responder.handle``'s awaited answer is in (or it failed, or its time ran
        out: ``expired``); sent unless the exchange gave up on it meanwhile."""
        if self.connect_task is not task:
            return  # (the client left: the task was cancelled and forgotten)
        self.connect_task = None
        if task.cancelled():
            if expired:
                self.fail(self._error_of(responder, TimeoutError()))
            return
        exc = task.exception()
        if exc is not None:
            if not isinstance(exc, Exception):
                raise exc
            self.fail(self._error_of(responder, exc))
            return
        if not self.finished:
            try:
                self._deliver(responder, task.result())
            except HTTPError as error:
                self.fail(error)

    def _error_of(self, responder: TargetType[Any], exc: Exception) -> HTTPError:
        """What the client is answered for what waiting on ``responder`` raised: its
        refusal as it is, the read timeout as a 504, anything else as its fault."""
        if isinstance(exc, HTTPError):
            return exc
        if isinstance(exc, TimeoutError):
            name = self.route.target.name if self.route is not None else "?"
            return GatewayTimeout(f"target {name!r} did not answer in time")
        return plugin_fault(responder.handle, "handle", self.rid, exc)

    def _deliver(self, responder: TargetType[Any], response: object) -> None:
        """Send an in-process target's response through the response phases."""
        try:
            raw = render_head(response)
        except Exception as exc:  # (InvalidResponse, or what reading it raised)
            raise plugin_fault(responder.handle, "handle", self.rid, exc) from exc
        assert isinstance(response, Response)
        status = response.status
        body = response.body
        self.status = status
        chain = self.chain
        if chain.response_headers:
            raw = self.run_response_headers(raw)
        keep_alive = self.keep_alive and not self.client.draining
        head, self.mode, self.keep_alive, _ = rewrite_head(
            raw,
            status,
            self,
            keep_alive,
            chain.filters_body,
            None,
        )
        self.response_started = True
        self.out.append(head)
        if isinstance(body, bytes):
            if self._send_piece(body, last=True):
                self._finish()
            return
        loop = self.client.server.loop
        if self.mode == NO_BODY:  # HEAD, 204, 304: the stream is not read at all
            loop.create_task(_close(body))
            self.flush()
            self._finish()
            return
        self.flush()  # the head goes now, whenever the first piece comes
        self.connect_task = loop.create_task(self._stream(responder, body))

    def _send_piece(self, chunk: bytes, *, last: bool) -> bool:
        """Queue a piece of an in-process body in the response's framing and send
        what is queued; False when a response_body plugin failed."""
        mode = self.mode
        if mode == FILTERED:
            if not self._filter(chunk, last):
                return False
            if last and self.version == b"1.1":
                self.out.append(_LAST_CHUNK)
        elif mode == WRAP_CHUNKS:
            if chunk:
                self.out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
            if last:
                self.out.append(_LAST_CHUNK)
        elif mode != NO_BODY and chunk:
            self.out.append(chunk)
        if self.tap is not None and mode != FILTERED:  # (FILTERED: `_filter` taps)
            self.tap(chunk, last)
        self.flush()
        return True

    async def _stream(self, responder: TargetType[Any], body: AsyncIterator[bytes]) -> None:
        error: HTTPError | None = None
        ended = False
        pieces: Any = body
        try:
            pieces = aiter(body)
            while True:
                async with asyncio.timeout(self._read_timeout()):
                    try:
                        chunk = await anext(pieces)
                    except StopAsyncIteration:
                        ended = True
                        break
                if self.finished:
                    return
                if not isinstance(chunk, bytes):
                    raise InvalidResponse(f"the body gave {type(chunk).__name__}, not bytes")
                if chunk and not self._send_piece(chunk, last=False):
                    return
                if self.client.write_paused:
                    self.drained = self.client.server.loop.create_future()
                    await self.drained
        except Exception as exc:
            error = self._error_of(responder, exc)
        finally:
            self.connect_task = None
            self.drained = None
            if not ended:
                await _close(pieces)
        if error is not None:
            self.fail(error)  # (the response has begun: the client is cut off)
        elif not self.finished and self._send_piece(b"", last=True):
            self._finish()


class _Waiting:
    """The read timeout of an awaited ``handle``: a timer that cancels its task, then
    the task's end handed back to the exchange (cheaper than a coroutine around the
    awaitable under ``asyncio.timeout``, which looks the running loop up: a getpid
    system call)."""

    __slots__ = ("exchange", "expired", "responder", "timer")

    def __init__(
        self,
        exchange: InProcessAnswers,
        responder: TargetType[Any],
        task: asyncio.Task[Any],
        timeout: float,
    ) -> None:
        self.exchange = exchange
        self.responder = responder
        self.expired = False
        self.timer = task.get_loop().call_later(timeout, self._expire, task)

    def _expire(self, task: asyncio.Task[Any]) -> None:
        self.expired = True
        task.cancel()

    def done(self, task: asyncio.Task[Any]) -> None:
        self.timer.cancel()
        self.exchange._answered(self.responder, task, self.expired)


async def _awaited(waiting: Awaitable[Response]) -> Response:
    """An awaitable that is not a coroutine, as one (a task runs coroutines)."""
    return await waiting


async def _close(pieces: object) -> None:
    """Close an async generator left before its end (its ``finally`` blocks run)."""
    closing = getattr(pieces, "aclose", None)
    if closing is not None:
        with contextlib.suppress(Exception):  # (its fault, after the answer: nothing to tell)
            await closing()
