"""The event-stream decoder of the MCP client: chunks cut anywhere, limits."""

from __future__ import annotations

import pytest

from quiver.mcp.events import Event, EventDecoder, EventTooLarge

STREAM = (
    b": ping\r\n\r\n"
    b"event: endpoint\r\ndata: /messages/?session_id=1\r\n\r\n"
    b'id: 7\ndata: {"a":\n'
    b"data: 1}\n\n"
    b"event: message\rdata:no space\r\r"
    b"retry: 10\n\n"
)
EVENTS = [
    Event("endpoint", "/messages/?session_id=1", None),
    Event("message", '{"a":\n1}', "7"),
    Event("message", "no space", "7"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, len(STREAM)])
def test_events_whatever_the_chunks(size: int) -> None:
    decoder = EventDecoder(1024)
    events = []
    for start in range(0, len(STREAM), size):
        events += decoder.feed(STREAM[start : start + size])
    assert events == EVENTS


def test_an_event_past_the_limit_is_refused() -> None:
    decoder = EventDecoder(16)
    assert decoder.feed(b"data: 0123456789\n\n") == [Event("message", "0123456789", None)]
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: 0123456789\ndata: 0123456789\n")
    with pytest.raises(EventTooLarge):
        EventDecoder(16).feed(b"data: " + b"x" * 32)
