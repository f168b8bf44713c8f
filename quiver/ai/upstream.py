"""Calling a provider: one :class:`Deployment` per (model, deployment) of the config.

Calls go through the worker's outbound client to the provider's target
(``target://ai-provider-NAME/...``), so they ride the proxy's keep-alive pools,
health checks and breakers.  What can be computed once per config is (the URLs,
the header fields with the provider's key); a failed call becomes the
:mod:`quiver.ai.errors` type that tells the router whether another deployment may
take it, with the provider's own message kept.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from quiver.ai.errors import (
    ContextWindowExceeded,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from quiver.ai.providers import KINDS, ProviderKind, auth_headers, path_of
from quiver.ai.sigv4 import sign
from quiver.config.ai import PROVIDER_TARGET_PREFIX, AIDeployment, AIProvider
from quiver.errors import GatewayTimeout, HTTPError
from quiver.plugins.outbound import Fields, Outbound, OutboundResponse

#: the most of an error response read to tell what went wrong
_ERROR_BODY_LIMIT = 1 << 16
#: how much one new latency moves a deployment's average (exponential moving average)
_LATENCY_WEIGHT = 0.2
#: phrases by which providers tell a prompt is too long for the model
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many input tokens",
    "exceeds the maximum number of tokens",
)


class Deployment:
    """One deployment of a model: where its calls go and how it has fared lately."""

    __slots__ = (
        "base",
        "chat_url",
        "config",
        "cooldown_until",
        "count_tokens_url",
        "embeddings_url",
        "headers",
        "in_flight",
        "index",
        "kind",
        "latency",
        "model",
        "provider",
        "stream_url",
        "weight",
    )

    def __init__(self, config: AIDeployment, provider: AIProvider, index: int = 0) -> None:
        self.config = config
        #: its place among the model's deployments (the accounting counts by it)
        self.index = index
        self.provider = provider
        self.kind: ProviderKind = KINDS[provider.type]
        self.model = config.model
        self.weight = config.weight
        self.base = f"target://{PROVIDER_TARGET_PREFIX}{provider.name}"
        kind = self.kind
        self.chat_url = self.base + path_of(kind.chat, config.model, provider)
        self.stream_url = self.base + path_of(kind.stream, config.model, provider)
        self.embeddings_url = (
            self.base + path_of(kind.embeddings, config.model, provider)
            if kind.embeddings is not None
            else None
        )
        self.count_tokens_url = (
            self.base + kind.count_tokens if kind.count_tokens is not None else None
        )
        #: checked and encoded once, by the outbound client's first call
        self.headers = Fields(auth_headers(kind, provider))
        #: calls in flight from this worker (least-busy routing)
        self.in_flight = 0
        #: average seconds to the response head (latency routing); 0 before any call
        self.latency = 0.0
        #: the loop time before which the deployment is left out (after failures)
        self.cooldown_until = 0.0

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"

    def observe(self, seconds: float) -> None:
        latency = self.latency
        self.latency = seconds if not latency else latency + _LATENCY_WEIGHT * (seconds - latency)

    async def post(
        self,
        outbound: Outbound,
        url: str,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> OutboundResponse:
        """POST ``body`` to ``url`` (one of the deployment's); the response once its head
        is in and its status is 2xx, else the provider's failure as an AIError."""
        fields: Mapping[str, str] = self.headers if headers is None else {**self.headers, **headers}
        if self.kind.auth == "sigv4":
            fields = self._signed(url, fields, body)
        started = time.perf_counter()
        try:
            response = await outbound.request(
                "POST", url, headers=fields, body=body, timeout=timeout, idempotent=True
            )
        except GatewayTimeout as exc:
            raise ProviderTimeout(
                f"{self.provider.name} did not answer in time", provider=self.provider.name
            ) from exc
        except HTTPError as exc:
            raise ProviderUnavailable(
                f"{self.provider.name} could not be reached: {exc.detail}",
                provider=self.provider.name,
            ) from exc
        self.observe(time.perf_counter() - started)
        status = response.status
        if 200 <= status < 300:
            return response
        try:
            raw = await response.read(limit=_ERROR_BODY_LIMIT)
        except HTTPError:
            raw = b""
        raise provider_error(self.provider.name, status, raw, response.header("retry-after"))

    def _signed(self, url: str, fields: Mapping[str, str], body: bytes) -> dict[str, str]:
        """``fields`` with an AWS Signature Version 4 of this call (Bedrock)."""
        provider = self.provider
        path = url[len(self.base) :]
        real = provider.url + path  # (the URL the target's node is reached at)
        fields = {**fields, "Host": urlsplit(real).netloc}
        signature = sign(
            "POST",
            real,
            fields,
            body,
            region=provider.region or "",
            service="bedrock",
            access_key=provider.aws_access_key_id or "",
            secret_key=provider.aws_secret_access_key or "",
            session_token=provider.aws_session_token,
            now=datetime.datetime.now(datetime.UTC),
        )
        del fields["Host"]  # (the outbound client writes the node's own)
        return {**fields, **signature}


def provider_error(
    provider: str, status: int, body: bytes, retry_after: str | None = None
) -> ProviderError:
    """The error a provider's non-2xx answer stands for, with its own message."""
    message = _message_of(body) or f"HTTP {status}"
    text = f"{provider}: {message}"
    lowered = message.lower()
    wait = _seconds(retry_after)
    if status == 429:
        return ProviderRateLimited(text, provider=provider, retry_after=wait)
    if status >= 500 or status in (408, 409):
        kind = ProviderUnavailable if status != 504 else ProviderTimeout
        return kind(text, provider=provider, retry_after=wait)
    if status in (401, 403):
        return ProviderAuthFailed(
            f"{provider} refused Quiver's credentials for it ({message})", provider=provider
        )
    if status in (400, 413, 422) and any(marker in lowered for marker in _CONTEXT_MARKERS):
        return ContextWindowExceeded(text, provider=provider)
    error = ProviderRejected(text, provider=provider, status=status)
    error.code = _code_of(body) or error.code
    return error


def _message_of(body: bytes) -> str:
    """The message of an error document in any provider's shape (OpenAI, Anthropic,
    Gemini: ``error.message``; Bedrock: ``message``), else the start of the body."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(document, list) and document:  # (Gemini's streams answer a list)
        document = document[0]
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        for key in ("message", "Message", "detail"):
            if isinstance(document.get(key), str):
                return str(document[key])
    return body[:200].decode("utf-8", "replace").strip()


def _code_of(body: bytes) -> str | None:
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _seconds(value: str | None) -> float | None:
    """A Retry-After of delay-seconds (RFC 9110 section 10.2.3); dates are not used."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
