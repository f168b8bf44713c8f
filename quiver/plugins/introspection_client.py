"""Asking an OAuth 2.0 token introspection endpoint about a token (RFC 7662).

The question goes out through the worker's outbound client (pooled keep-alive
connections, verified TLS); answers are cached and concurrent questions about
the same token are shared (see :mod:`quiver.plugins.introspection`), so the
endpoint sees few requests.  Every way the endpoint can fail becomes a
:class:`~quiver.errors.GatewayError` whose detail names no address (clients read
it); the endpoint and what went wrong go to the log, as a warning each time the
cause changes, and never the token.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import orjson

from quiver.errors import BadGateway, GatewayError, GatewayTimeout
from quiver.plugins.outbound import Outbound

log = logging.getLogger("quiver.plugins.oauth2-introspection")

MAX_RESPONSE_SIZE = 1 << 20  # an introspection answer is a small JSON object
# what clients read: the endpoint is the gateway's business, not theirs
_SLOW = "the token introspection endpoint did not answer in time"
_FAILED = "the token introspection endpoint could not be asked"
_UNUSABLE = "the token introspection endpoint gave an answer that cannot be used"


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
        outbound: Outbound | None,
        ca_file: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.label = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.url = url
        self.timeout = timeout
        self.outbound = outbound
        self.ca_file = ca_file
        self.token_type_hint = token_type_hint
        self.failing: str | None = None  # the cause of the last failure, as logged
        self.headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if client_id is not None and client_secret is not None:
            # RFC 6749 §2.3.1: both are form-encoded before they are joined and encoded
            pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
            self.headers["Authorization"] = f"Basic {base64.b64encode(pair.encode()).decode()}"

    async def introspect(self, token: bytes) -> dict[str, Any]:
        """The endpoint's answer about ``token``: a JSON object with a boolean ``active``.

        Raises GatewayTimeout when the whole exchange takes longer than ``timeout``
        and BadGateway when the endpoint cannot be reached or answers anything else.
        """
        try:
            claims = await self._ask(token)
        except GatewayError as exc:
            self._report(exc.internal or exc.detail)
            raise
        self.failing = None
        return claims

    async def _ask(self, token: bytes) -> dict[str, Any]:
        if self.outbound is None:
            raise BadGateway(_FAILED, internal=self._about("there is no HTTP client here"))
        # RFC 7662 §2.1: the token, and optionally a hint of its type, form-encoded
        fields: dict[str, bytes | str] = {"token": token}
        if self.token_type_hint:
            fields["token_type_hint"] = self.token_type_hint
        try:
            # a question changes nothing at the endpoint: it may be sent again when a
            # pooled connection turns out closed
            async with await self.outbound.request(
                "POST",
                self.url,
                headers=self.headers,
                body=urlencode(fields).encode(),
                timeout=self.timeout,
                ca_file=self.ca_file,
                idempotent=True,
            ) as response:
                payload = await response.read(limit=MAX_RESPONSE_SIZE)
        except GatewayTimeout as exc:
            reason = f"took longer than {self.timeout:g}s"
            raise GatewayTimeout(_SLOW, internal=self._about(reason)) from exc
        except GatewayError as exc:
            reason = f"failed: {exc.internal or exc.detail}"
            raise BadGateway(_FAILED, internal=self._about(reason)) from exc
        return self._claims(response.status, payload)

    def _claims(self, status: int, payload: bytes) -> dict[str, Any]:
        if status != 200:
            hint = " (check client_id and client_secret)" if status in (401, 403) else ""
            raise self._unusable(f"answered {status}{hint}")
        try:
            claims = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise self._unusable("did not answer JSON") from exc
        # RFC 7662 §2.2: "active" is required and boolean; "exp" a NumericDate; "scope"
        # a space-separated string.  Anything else is a broken endpoint, not a bad token.
        if not isinstance(claims, dict) or not isinstance(claims.get("active"), bool):
            raise self._unusable("answered without 'active'")
        exp = claims.get("exp")
        if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)):
            raise self._unusable("answered a non-numeric 'exp'")
        if not isinstance(claims.get("scope", ""), str):
            raise self._unusable("answered a non-string 'scope'")
        return claims

    def _about(self, reason: str) -> str:
        return f"token introspection at {self.label} {reason}"

    def _unusable(self, reason: str) -> BadGateway:
        return BadGateway(_UNUSABLE, internal=self._about(reason))

    def _report(self, cause: str) -> None:
        """Log a failure once, until the endpoint answers or fails in another way (a
        down endpoint would otherwise log once per request)."""
        if cause != self.failing:
            self.failing = cause
            log.warning("%s", cause)
