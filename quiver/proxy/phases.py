"""Running a request's plugin phases, behind one fault boundary.

Plugins are code the proxy does not control.  Whatever a phase raises that is not
an ``HTTPError`` (a refusal the plugin meant) is a fault: it is logged once, with
the plugin's name, the phase and the request id, and becomes a ``PluginError``, a
500 problem document when nothing was sent yet, or a cut connection once the
response has begun.  A fault is never taken for a malformed request or a bad
node: it does not count against the node's health, and no phase runs twice
because of it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from quiver.errors import ContentTooLarge, HTTPError, PluginError
from quiver.plugins.chain import Chain
from quiver.plugins.response import ResponseHead

if TYPE_CHECKING:
    from quiver.http.tracecontext import TraceContext
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.snapshot import RouteRuntime

log = logging.getLogger("quiver.plugins")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def plugin_fault(
    phase: Callable[..., Any], phase_name: str, rid: bytes, exc: Exception
) -> PluginError:
    """Log a plugin's fault once and turn it into the error the client gets."""
    plugin = getattr(phase, "__self__", None)
    name = getattr(plugin, "name", None) or getattr(phase, "__qualname__", repr(phase))
    log.error(
        "plugin %r failed in its %s phase (request %s)",
        name,
        phase_name,
        rid.decode("latin-1"),
        exc_info=exc,
    )
    return PluginError(f"plugin {name!r} failed")


class PhaseRunner:
    """The access, response and log phases of an exchange (mixed into ``Exchange``)."""

    chain = Chain(())  # the plugins this request runs: its route's, or its consumer's
    resume_at = -1  # the access phase waiting for the whole body
    body: bytes | None = None  # the whole body, once read for plugins or an in-process target
    #: response_headers phases have run for this request (they never run twice)
    headers_shaped = False
    #: the log phases are scheduled (they run once per exchange, however it ended)
    logged = False
    #: the phase that refused or answered the request (for the exchange's record)
    answered_by: Callable[..., Any] | None = None

    if TYPE_CHECKING:
        client: ClientConnection
        rid: bytes
        route: RouteRuntime | None
        finished: bool
        request_done: bool
        content_length: int | None
        expect_continue: bool
        version: bytes
        body_received: int
        held: list[bytes] | None
        hold_limit: int | None
        connect_task: Any
        out: list[bytes]
        tap: Callable[[bytes, bool], None] | None
        trace: TraceContext | None  # sampled by tracing (its record is made, for its spans)

        def fail(self, error: HTTPError) -> None: ...
        def _release_body(self) -> None: ...
        def _respond(self) -> None: ...

    def _continue(self) -> None:
        """Invite the body of a client that waits to be asked (once the plugins that
        can refuse on the head alone have let the request through)."""
        if self.expect_continue and self.version == b"1.1" and not self.body_received:
            # (RFC 9110 §10.1.1: an HTTP/1.0 client's expectation is ignored)
            self.expect_continue = False
            self.client.write(CONTINUE)

    def _body_ready(self, resume_at: int) -> bool:
        """Whether the whole request body is in ``body`` (what was held becomes it);
        if not, the access phases go on from ``resume_at`` once it is.  A body
        declared larger than may be held is refused now, before 100 Continue."""
        if self.body is not None:
            return True
        if self.request_done:  # it came whole while an earlier phase was waiting
            self._take_held()
            return True
        limit = self.hold_limit
        if limit is not None and (self.content_length or 0) > limit:
            size = self.content_length
            raise ContentTooLarge(f"request body of {size} bytes exceeds {limit}")
        self.resume_at = resume_at
        self._continue()
        return False

    def _take_held(self) -> None:
        """The body is whole: the chunks held so far become ``body``."""
        self.body = b"".join(self.held or ())
        self.held = None

    def _access(self, index: int) -> None:
        """Run the access phases from ``index`` on, then answer the request."""
        chain = self.chain
        phases = chain.access
        while index < len(phases):
            if index >= chain.body_at and not self._body_ready(index):
                return
            phase = phases[index]
            try:
                waiting = phase(self)
            except HTTPError:
                self.answered_by = phase
                raise
            except Exception as exc:
                raise plugin_fault(phase, "access", self.rid, exc) from exc
            if self.chain is chain:
                index += 1
            else:  # a consumer with plugins of its own: its chain takes over
                index = self._next_access(chain, index)
                chain = self.chain
                phases = chain.access
            if waiting is not None:  # the plugin has to wait: go on in a task
                loop = self.client.server.loop
                self.connect_task = loop.create_task(self._access_async(waiting, phase, index))
                return
        self._respond()

    def _next_access(self, chain: Chain, index: int) -> int:
        """The next access phase after ``chain.access[index]`` ran (it may have
        identified a consumer whose own chain takes over)."""
        if self.chain is chain:
            return index + 1
        return self.chain.index_after(chain.keys[index])

    async def _access_async(
        self, waiting: Awaitable[None], phase: Callable[..., Any], index: int
    ) -> None:
        chain = self.chain
        try:
            try:
                await waiting
            except HTTPError:
                self.answered_by = phase
                raise
            except Exception as exc:
                raise plugin_fault(phase, "access", self.rid, exc) from exc
            self.connect_task = None
            if chain is not self.chain:  # the awaited phase identified a consumer
                index = self._next_access(chain, index - 1)
            if not self.finished:
                self._access(index)
        except HTTPError as exc:
            self.connect_task = None
            self.fail(exc)

    def run_response_headers(self, raw: bytes) -> bytes:
        """Let the plugins see and change a response head (once per request)."""
        self.headers_shaped = True
        head = ResponseHead(raw)
        for phase in self.chain.response_headers:
            try:
                phase(self, head)
            except HTTPError:
                raise
            except Exception as exc:
                raise plugin_fault(phase, "response_headers", self.rid, exc) from exc
        return head.render()

    def _filter(self, chunk: bytes, last: bool) -> bool:
        """Pass a piece of the response body through the response_body phases and
        queue what comes out as a chunk; False when a plugin failed (the client is
        then cut off: its response has begun)."""
        for phase in self.chain.response_body:
            try:
                chunk = phase(self, chunk, last)
            except HTTPError as exc:
                self.fail(exc)
                return False
            except Exception as exc:
                self.fail(plugin_fault(phase, "response_body", self.rid, exc))
                return False
        if chunk:
            if self.version == b"1.1":
                self.out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
            else:
                self.out.append(chunk)
        if self.tap is not None and (chunk or last):
            self.tap(chunk, last)
        return True

    def _log_later(self) -> None:
        """Schedule the log phases, once: every exchange whose plugins began gets one
        run, whether it was answered, refused, cut off, upgraded or abandoned."""
        state = self.client.server
        if not self.logged and (self.chain.log or state.recording or self.trace is not None):
            self.logged = True
            if not state.log_scheduled:
                state.log_scheduled = True
                state.loop.call_soon(state.log_turn)
            state.ended.append(self)

    def run_log(self) -> None:
        """The log phases, once the exchange is over (off the hot path)."""
        for phase in self.chain.log:
            try:
                phase(self)
            except Exception as exc:  # a log plugin must never hurt the proxy
                plugin_fault(phase, "log", self.rid, exc)
