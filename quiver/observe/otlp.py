"""OTLP spans as the generated classes of opentelemetry-proto (the ``otel`` extra).

An OTLP/HTTP trace export is an ``ExportTraceServiceRequest``
(``collector/trace/v1``): resource spans holding a resource, and scope spans
holding an instrumentation scope and the spans (``trace/v1/trace.proto``).  Each
write of the tracing output makes one such request from a copy of the process's
:class:`Envelope` and adds its spans to it in place: with protobuf's C backend
(upb), copying spans made apart into a request costs about as much again as
making them.  The exporter sends the serialized requests of several writes as one
body: serialized messages put end to end parse as one message whose repeated
fields hold the entries of each (https://protobuf.dev/programming-guides/encoding/#last-one-wins),
here one ``resource_spans`` entry per write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SERVER = Span.SPAN_KIND_SERVER
CLIENT = Span.SPAN_KIND_CLIENT
STATUS_ERROR = Status.STATUS_CODE_ERROR

Spans: TypeAlias = RepeatedCompositeFieldContainer[Span]
Attributes: TypeAlias = RepeatedCompositeFieldContainer[KeyValue]


class Envelope:
    """What surrounds the spans of every export from one process: the Resource (its
    attributes: ``service.name``, ...) and the InstrumentationScope; made once."""

    def __init__(self, resource: Iterable[tuple[str, str]], scope: str, version: str) -> None:
        self._empty = ExportTraceServiceRequest()
        resource_spans = self._empty.resource_spans.add()
        attributes = resource_spans.resource.attributes
        for name, value in resource:
            attributes.add(key=name).value.string_value = value
        resource_spans.scope_spans.add(scope=InstrumentationScope(name=scope, version=version))

    def request(self) -> tuple[ExportTraceServiceRequest, Spans]:
        """A request with no span yet, and where its spans go."""
        request = ExportTraceServiceRequest()
        request.CopyFrom(self._empty)
        return request, request.resource_spans[0].scope_spans[0].spans


def text(attributes: Attributes, key: str, value: bytes) -> None:
    """A string attribute from bytes as received (OTLP strings are UTF-8: other
    bytes become U+FFFD, or the collector would refuse the whole export)."""
    attributes.add(key=key).value.string_value = value.decode(errors="replace")


def number(attributes: Attributes, key: str, value: int) -> None:
    """An integer attribute."""
    attributes.add(key=key).value.int_value = value
