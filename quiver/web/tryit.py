"""One request sent to the gateway for the portal's "Try it", and its answer as the
page shows it.

The admin process sends it to the gateway it runs beside (quiver.admin.gateway), so
the gateway authenticates, counts, limits and logs it like any client's.  Only the
gateway's address is ever reached: the request's target is a path and a query, put
after the gateway's URL, never a URL of its own; redirects are not followed, and the
environment's proxies are not used.

The developer's API key goes in the header key-auth reads and nowhere else: it is
not logged, not kept, and what the answer repeats of it (an upstream echoing its
request) is masked before the page shows it.  Bodies are shown up to
:data:`MAX_BODY`; JSON is indented.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from http import HTTPStatus

import httpx

from quiver.admin.gateway import Gateway

MAX_BODY = 64 * 1024
#: what the answer shows in place of the key
MASK = "[your API key]"
USER_AGENT = "Quiver-Portal (Try it)"
_TEXT_TYPES = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


@dataclass(frozen=True)
class Answer:
    """The gateway's answer, ready to show (every text escaped by the template)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: str  # "" when there is none or it is not text
    size: int  # bytes of body read (at most MAX_BODY + 1)
    truncated: bool  # the body goes on beyond MAX_BODY
    kind: str  # "json", "text", "binary" or "empty"
    media: str  # the Content-Type's media type
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.status < 400


class TryFailed(Exception):
    """No answer came: the message says why, for the page."""


async def send(
    gateway: Gateway,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    secret: str = "",
) -> Answer:
    """``method target`` (a path and query) at the gateway; ``secret`` (the key) is
    masked in the answer.  TryFailed when no answer comes within the gateway's
    timeout."""
    if not target.startswith("/"):  # (after the gateway's URL, anything else could name a host)
        raise TryFailed("Try it sends only a path of the gateway.")
    url = gateway.url + target
    sent = [("User-Agent", USER_AGENT), *headers]
    started = time.monotonic()
    try:
        async with (
            httpx.AsyncClient(
                verify=gateway.verify,
                timeout=gateway.timeout,
                trust_env=False,  # (HTTP_PROXY must not take the key elsewhere)
                follow_redirects=False,
            ) as client,
            client.stream(method, url, headers=sent, content=body) as response,
        ):
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_BODY:
                    break
            raw_headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in response.headers.raw
            ]
            status = response.status_code
    except httpx.TimeoutException:
        raise TryFailed(f"The gateway did not answer within {gateway.timeout:g} seconds.") from None
    except httpx.ConnectError as exc:
        raise TryFailed(f"The gateway at {gateway.url} could not be reached: {exc}.") from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise TryFailed(f"The exchange with the gateway failed: {exc}.") from None
    elapsed = (time.monotonic() - started) * 1000
    return answer_of(status, raw_headers, data, elapsed, secret)


def answer_of(
    status: int, headers: list[tuple[str, str]], data: bytes, elapsed_ms: float, secret: str
) -> Answer:
    """The answer as shown: the body decoded (indented when JSON), cut at MAX_BODY,
    ``secret`` masked everywhere."""
    truncated = len(data) > MAX_BODY
    media, charset = _content_type(headers)
    kind, body = _shown(data[:MAX_BODY], media, charset, truncated)
    if secret:
        headers = [(name, value.replace(secret, MASK)) for name, value in headers]
        body = body.replace(secret, MASK)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return Answer(
        status, reason, headers, body, len(data), truncated, kind, media, round(elapsed_ms, 1)
    )


def _content_type(headers: list[tuple[str, str]]) -> tuple[str, str]:
    value = next((v for n, v in headers if n.lower() == "content-type"), "")
    media, _, parameters = value.partition(";")
    charset = "utf-8"
    for parameter in parameters.split(";"):
        name, _, given = parameter.strip().partition("=")
        if name.lower() == "charset" and given:
            charset = given.strip('"')
    return media.strip().lower(), charset


def _shown(data: bytes, media: str, charset: str, truncated: bool) -> tuple[str, str]:
    if not data:
        return "empty", ""
    textual = media.startswith("text/") or any(word in media for word in _TEXT_TYPES)
    try:
        text = data.decode(charset, errors="replace" if textual else "strict")
    except (LookupError, UnicodeDecodeError):
        return "binary", ""
    if "json" in media and not truncated:
        try:
            return "json", json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return "text", text
