"""The HTTP+SSE transport of MCP (revision 2024-11-05), as its client.

The client opens a GET stream; the server's first event, ``endpoint``, names the
URL to POST messages to (relative to the stream's URL, same origin).  Every POST
is acknowledged (202) and its answer arrives later as a ``message`` event on the
stream.  So one :class:`SseChannel` owns a GET stream, a background task reading
it, and the requests waiting for their answers by id.  When the stream ends or
fails, the waiting requests fail with BadGateway and the channel is dead: the
server forgot the session with it, so the next request opens a new channel (a
fresh endpoint) and initializes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from quiver.errors import BadGateway, GatewayError, GatewayTimeout, HTTPError
from quiver.mcp import jsonrpc
from quiver.mcp.events import Event, EventDecoder, EventTooLarge
from quiver.plugins.outbound import Outbound, OutboundResponse

log = logging.getLogger(__name__)


class ChannelGone(Exception):
    """The server no longer knows the channel's session (its stream ended, or a POST
    to its endpoint answered 404): a new channel may be opened."""


class SseChannel:
    """One GET stream of the HTTP+SSE transport and the endpoint it named."""

    def __init__(
        self,
        outbound: Outbound,
        response: OutboundResponse,
        events: AsyncIterator[Event],
        endpoint: str,
        *,
        headers: Mapping[str, str],
        who: str,
        timeout: float,
        max_body: int,
    ) -> None:
        self.outbound = outbound
        self.endpoint = endpoint
        self.headers = headers
        self.who = who
        self.timeout = timeout
        self.max_body = max_body
        self.dead = False
        self._response = response
        self._events = events
        self._waiting: dict[jsonrpc.RequestId, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        outbound: Outbound,
        url: str,
        *,
        headers: Mapping[str, str],
        who: str,
        timeout: float,
        max_body: int,
    ) -> SseChannel:
        """GET the stream and wait (at most ``timeout``) for its ``endpoint`` event."""
        stream_headers = {**headers, "Accept": "text/event-stream"}
        try:
            async with asyncio.timeout(timeout):
                response = await outbound.request("GET", url, headers=stream_headers)
                try:
                    kind = (response.header("content-type") or "").partition(";")[0].strip()
                    if response.status != 200 or kind.lower() != "text/event-stream":
                        raise BadGateway(f"{who} answered the event stream with {response.status}")
                    events = _events(response, max_body, who)
                    endpoint = await _endpoint(events, url, who)
                except BaseException:
                    response.close()
                    raise
        except TimeoutError:
            raise GatewayTimeout(
                f"{who} did not open its event stream within {timeout:g}s"
            ) from None
        return cls(
            outbound,
            response,
            events,
            endpoint,
            headers=headers,
            who=who,
            timeout=timeout,
            max_body=max_body,
        )

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """POST a request and wait for its answer on the stream (its result)."""
        if self.dead:
            raise ChannelGone
        request_id = message["id"]
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiter
        try:
            async with asyncio.timeout(self.timeout):
                await self._post(message, idempotent=message["method"] != "tools/call")
                answer = await waiter
        except TimeoutError:
            raise GatewayTimeout(f"{self.who} did not answer within {self.timeout:g}s") from None
        finally:
            self._waiting.pop(request_id, None)
        return jsonrpc.result_of(answer, request_id, self.who)

    async def notify(self, message: dict[str, Any]) -> None:
        if self.dead:
            raise ChannelGone
        try:
            async with asyncio.timeout(self.timeout):
                await self._post(message, idempotent=True)
        except TimeoutError:
            raise GatewayTimeout(f"{self.who} did not answer within {self.timeout:g}s") from None

    def close(self) -> None:
        self.dead = True
        self._reader.cancel()
        self._response.close()

    async def _post(self, message: dict[str, Any], *, idempotent: bool) -> None:
        headers = {**self.headers, "Content-Type": "application/json"}
        body = jsonrpc.encode(message)
        try:
            response = await self.outbound.request(
                "POST", self.endpoint, headers=headers, body=body, idempotent=idempotent
            )
            async with response:
                await response.read(limit=self.max_body)
        except GatewayError as exc:
            raise named(exc, self.who) from exc
        if response.status == 404:
            raise ChannelGone
        if response.status not in (200, 202, 204):
            raise BadGateway(f"{self.who} answered a message with {response.status}")

    async def _read(self) -> None:
        why = "closed its event stream"
        try:
            async for event in self._events:
                if event.name != "message" or not event.data:
                    continue
                message = jsonrpc.decode(event.data, self.who)
                if not jsonrpc.is_response(message):
                    continue  # the gateway offers no client capabilities to be asked of
                answered = message.get("id")
                if not isinstance(answered, int):
                    continue  # not an id the gateway gives
                waiter = self._waiting.get(answered)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
        except HTTPError as exc:
            why = f"broke its event stream ({exc.detail})"
        except asyncio.CancelledError:
            why = "was disconnected by the gateway"
            raise
        finally:
            self.dead = True
            self._response.close()
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(BadGateway(f"{self.who} {why}"))
            log.debug("%s: event stream over: %s", self.who, why)


def named(error: GatewayError, who: str) -> GatewayError:
    """``error`` of the outbound client (which names no server) saying which server
    it was about, of the same class."""
    if error.detail.startswith(who):
        return error
    return type(error)(f"{who}: {error.detail}", internal=error.internal)


async def _events(response: OutboundResponse, max_body: int, who: str) -> AsyncIterator[Event]:
    decoder = EventDecoder(max_body)
    async for chunk in response.stream():
        try:
            events = decoder.feed(chunk)
        except EventTooLarge:
            raise BadGateway(f"{who} sent an event larger than {max_body} bytes") from None
        for event in events:
            yield event


async def _endpoint(events: AsyncIterator[Event], url: str, who: str) -> str:
    """The POST URL of the first ``endpoint`` event, resolved against ``url``; it must
    be of the same origin, so the gateway's credentials go nowhere else."""
    async for event in events:
        if event.name != "endpoint":
            continue
        endpoint = urljoin(url, event.data.strip())
        there, here = urlsplit(endpoint), urlsplit(url)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            raise BadGateway(f"{who} named a message endpoint of another origin")
        return endpoint
    raise BadGateway(f"{who} closed its event stream before naming its endpoint")
