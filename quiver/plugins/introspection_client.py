"""Asking an OAuth 2.0 token introspection endpoint about a token (RFC 7662).

One short-lived connection per question: answers are cached and concurrent
questions about the same token are shared (see :mod:`quiver.plugins.introspection`),
so the endpoint sees few requests and a pool would buy little.  Every way the
endpoint can fail becomes a :class:`~quiver.errors.GatewayError` naming the
endpoint, never the token.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httptools
import orjson

from quiver.errors import BadGateway, GatewayTimeout

MAX_RESPONSE_SIZE = 1 << 20  # an introspection answer is a small JSON object


class IntrospectionClient:
    """POSTs ``token=...`` to ``url`` and returns the endpoint's JSON object."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None,
        client_secret: str | None,
        token_type_hint: str | None,
        timeout: float,
        ca_file: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if https else 80)
        bracketed = f"[{self.host}]" if ":" in self.host else self.host
        self.label = f"{bracketed}:{self.port}"
        self.timeout = timeout
        self.token_type_hint = token_type_hint
        self.ssl: ssl.SSLContext | None = None
        if https:
            self.ssl = ssl.create_default_context(cafile=ca_file)
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            self.ssl.set_alpn_protocols(["http/1.1"])
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = bracketed if parts.port is None else self.label
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {host_header}",
            "Content-Type: application/x-www-form-urlencoded",
            "Accept: application/json",
            "Connection: close",
            "User-Agent: quiver",
        ]
        if client_id is not None and client_secret is not None:
            # RFC 6749 §2.3.1: both are form-encoded before they are joined and encoded
            pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
            lines.append(f"Authorization: Basic {base64.b64encode(pair.encode()).decode()}")
        self._head = "\r\n".join(lines).encode() + b"\r\n"

    async def introspect(self, token: bytes) -> dict[str, Any]:
        """The endpoint's answer about ``token``: a JSON object with a boolean ``active``.

        Raises GatewayTimeout when the whole exchange takes longer than ``timeout``
        and BadGateway when the endpoint cannot be reached or answers anything else.
        """
        # RFC 7662 §2.1: the token, and optionally a hint of its type, form-encoded
        fields: dict[str, bytes | str] = {"token": token}
        if self.token_type_hint:
            fields["token_type_hint"] = self.token_type_hint
        body = urlencode(fields).encode()
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        try:
            async with asyncio.timeout(self.timeout):
                status, payload = await self._exchange(request)
        except TimeoutError as exc:
            raise GatewayTimeout(
                f"token introspection at {self.label} took longer than {self.timeout:g}s"
            ) from exc
        except ssl.SSLError as exc:
            reason = exc.reason or type(exc).__name__
            raise BadGateway(
                f"TLS to token introspection at {self.label} failed: {reason}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise BadGateway(f"token introspection at {self.label} refused the connection") from exc
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise BadGateway(f"token introspection at {self.label} failed: {reason}") from exc
        except httptools.HttpParserError as exc:
            raise BadGateway(f"token introspection at {self.label} sent malformed HTTP") from exc
        return self._claims(status, payload)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
        )
        try:
            writer.write(request)
            response = _Response()
            parser = httptools.HttpResponseParser(response)
            while not response.complete:
                data = await reader.read(65536)
                if not data:
                    if response.headers_done and not response.framed:
                        break  # the body ends when the connection does (RFC 9112 §6.3)
                    raise BadGateway(
                        f"token introspection at {self.label} closed the connection early"
                    )
                parser.feed_data(data)
                if len(response.body) > MAX_RESPONSE_SIZE:
                    raise BadGateway(f"token introspection at {self.label} answered too much")
            return parser.get_status_code(), bytes(response.body)
        finally:
            writer.close()

    def _claims(self, status: int, payload: bytes) -> dict[str, Any]:
        if status != 200:
            hint = " (check client_id and client_secret)" if status in (401, 403) else ""
            raise BadGateway(f"token introspection at {self.label} answered {status}{hint}")
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise BadGateway(f"token introspection at {self.label} did not answer JSON") from exc
        # RFC 7662 §2.2: "active" is required and boolean; "exp" a NumericDate; "scope"
        # a space-separated string.  Anything else is a broken endpoint, not a bad token.
        if not isinstance(claims, dict) or not isinstance(claims.get("active"), bool):
            raise BadGateway(f"token introspection at {self.label} answered without 'active'")
        exp = claims.get("exp")
        if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)):
            raise BadGateway(f"token introspection at {self.label} answered a non-numeric 'exp'")
        if not isinstance(claims.get("scope", ""), str):
            raise BadGateway(f"token introspection at {self.label} answered a non-string 'scope'")
        return claims


class _Response:
    """httptools callbacks gathering one response."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.headers_done = False
        self.framed = False  # Content-Length or Transfer-Encoding says where the body ends
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
