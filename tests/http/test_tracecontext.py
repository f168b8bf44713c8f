"""Reading and writing W3C Trace Context fields (https://www.w3.org/TR/trace-context/)."""

from __future__ import annotations

import pytest

from quiver.http.tracecontext import (
    MAX_TRACESTATE,
    bounded_tracestate,
    parse_traceparent,
    traceparent,
)

TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = b"00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("value", "flags"),
    [
        (b"00-" + TRACE + b"-" + SPAN + b"-01", 0x01),
        (b"00-" + TRACE + b"-" + SPAN + b"-00", 0x00),
        # flags version 00 does not define are kept (a later level may define them)
        (b"00-" + TRACE + b"-" + SPAN + b"-03", 0x03),
        # a later version: its first fields read as version 00's (§4.3)...
        (b"01-" + TRACE + b"-" + SPAN + b"-01", 0x01),
        # ... whatever it adds after a dash, and only its sampled flag counts
        (b"cc-" + TRACE + b"-" + SPAN + b"-03-what-the-future-holds", 0x01),
    ],
)
def test_a_valid_traceparent_names_the_callers_trace_and_span(value: bytes, flags: int) -> None:
    parent = parse_traceparent(value)
    assert parent is not None
    assert (parent.trace_id, parent.span_id, parent.flags) == (TRACE, SPAN, flags)
    assert parent.sampled is bool(flags & 1)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"00",
        b"00-" + TRACE + b"-" + SPAN,  # no flags
        b"00-" + TRACE.upper() + b"-" + SPAN + b"-01",  # uppercase hex (§3.2.2.3)
        b"00-" + TRACE + b"-" + SPAN.upper() + b"-01",
        b"00-" + TRACE + b"-" + SPAN + b"-0A",
        b"00-" + b"0" * 32 + b"-" + SPAN + b"-01",  # all-zero trace id
        b"00-" + TRACE + b"-" + b"0" * 16 + b"-01",  # all-zero parent id
        b"00-" + TRACE[:-1] + b"-" + SPAN + b"-01",  # short trace id
        b"00-" + TRACE + b"0-" + SPAN + b"-01",  # long trace id
        b"00-" + TRACE + b"-" + SPAN[:-1] + b"-01",
        b"00-" + TRACE + b"-" + SPAN + b"-01-extra",  # version 00 ends at its flags
        b"00-" + TRACE + b"-" + SPAN + b"-01 ",
        b" 00-" + TRACE + b"-" + SPAN + b"-01",
        b"ff-" + TRACE + b"-" + SPAN + b"-01",  # version ff is forbidden
        b"0g-" + TRACE + b"-" + SPAN + b"-01",
        b"cc-" + TRACE + b"-" + SPAN + b"-01x",  # a later version: a dash after the flags
        b"00_" + TRACE + b"_" + SPAN + b"_01",
        b"00-" + TRACE + b"-" + SPAN + b"-01," + b"00-" + TRACE + b"-" + SPAN + b"-01",
        b"00-" + TRACE.replace(b"4", b"z") + b"-" + SPAN + b"-01",
    ],
)
def test_an_invalid_traceparent_is_none(value: bytes) -> None:
    assert parse_traceparent(value) is None


def test_a_traceparent_is_written_as_version_00() -> None:
    assert traceparent(TRACE, SPAN, 1) == b"00-" + TRACE + b"-" + SPAN + b"-01"
    assert parse_traceparent(traceparent(TRACE, SPAN, 0)) is not None


def test_a_tracestate_within_the_bound_passes_as_it_came() -> None:
    value = b"rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"
    assert bounded_tracestate(value) is value


def test_a_long_tracestate_loses_its_large_entries_then_its_last_ones() -> None:
    large = b"big=" + b"x" * 200
    entries = [b"k%02d=%s" % (n, b"v" * 20) for n in range(30)]  # 24 bytes, 25 with a comma
    value = b",".join([entries[0], large, *entries[1:]])
    bounded = bounded_tracestate(value)
    assert len(bounded) <= MAX_TRACESTATE
    kept = bounded.split(b",")
    assert large not in kept
    assert kept == entries[: len(kept)]  # the first ones, in their order
    assert len(kept) == (MAX_TRACESTATE + 1) // 25  # as many as fit
