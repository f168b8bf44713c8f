"""The ``tracing`` setting: W3C trace context on every request, spans for a sample.

A setting of the process, like ``access_log``: read when a worker starts.  Without
the section the gateway leaves ``traceparent`` and ``tracestate`` alone (they pass
upstream as any other field) and costs nothing per request.

Spans are made with opentelemetry-proto, which the ``otel`` extra installs: a
section without it is a config error, found by ``quiver check`` rather than by a
worker that fails to start.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Strict

#: what the tracing output imports of the otel extra
OTLP_MODULE = "opentelemetry.proto.collector.trace.v1.trace_service_pb2"


class Otlp(Strict):
    """Where spans go: an OpenTelemetry collector's OTLP/HTTP (protobuf) endpoint."""

    endpoint: str = Field(
        "http://127.0.0.1:4318/v1/traces",
        description="The URL spans are POSTed to (a collector's `/v1/traces`).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Fields sent with every export (`authorization: Bearer ${TOKEN}`, say).",
    )
    timeout: Duration = Field(10.0, description="How long one export may take.")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value


class Tracing(Strict):
    """W3C trace context propagated upstream; OpenTelemetry spans for a sample of the
    requests (docs/observability.md, "Tracing")."""

    sample: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Share of new traces (requests without a `traceparent`) whose spans "
        "are exported, 0 to 1.",
    )
    respect_parent: bool = Field(
        True,
        description="A request with a valid `traceparent` is sampled as its caller says "
        "(the flag); false: `sample` decides for every request.",
    )
    service_name: str = Field("quiver", description="The spans' `service.name`.")
    otlp: Otlp = Field(default_factory=Otlp, description="Where spans are exported.")
    queue: int = Field(
        2048,
        ge=1,
        description="Spans waiting for export, at most; beyond, spans are dropped (requests "
        "never wait for an export).",
    )

    @model_validator(mode="after")
    def _installed(self) -> Tracing:
        try:
            importlib.import_module(OTLP_MODULE)
        except ImportError as exc:
            raise ValueError(
                f"spans are exported with opentelemetry-proto, which is not installed ({exc}): "
                "pip install 'quiver-gateway[otel]'"
            ) from None
        return self
