"""Checking a streamed answer against ``completion_deny`` rules as it goes by.

The events of a ``text/event-stream`` answer are split as they come
(:class:`~quiver.plugins.sse.EventSplitter`) and read for the pieces of text they
add (:mod:`.stream_texts`).  Each text (a choice, a content block, an output part)
is searched as it grows, but only over its last ``lookback`` characters and the new
piece: a match that ends in the new piece and is no longer than ``lookback`` is
found there, so the work per piece stays bounded however long the answer grows.

Events are held back until ``window`` characters of their own text follow them (an
event without text, once nothing is held before it), and released in order: a match
no longer than the window is found before any of it has reached the client.  A text
that ends (its ``finish_reason``, ``content_block_stop``, ``output_text.done``) and
the stream's end are checked once more, now counting a match that reaches the end
of the text, and release what they held.  On a match, what is held is dropped and
the stream ends with the API's own error event naming the rule; nothing else of it
is sent.  What is held never grows past ``limits.max_buffered_body`` bytes: past
it, the oldest events go out before enough text follows them (a text that stalls
while other events keep coming).
"""

from __future__ import annotations

from collections import deque

from quiver.plugins.ai_guard.rules import Rules
from quiver.plugins.ai_guard.stream_texts import NO_TEXT, Front, Key, read_event, refusal_event
from quiver.plugins.ai_guard.texts import withheld_message
from quiver.plugins.sse import EventSplitter

#: characters kept before the searched span, for lookbehinds (``\b``, whole words)
CONTEXT = 16
#: the least a text is searched back from a new piece, even with a smaller window
MIN_LOOKBACK = 64


class _Text:
    """One text of the stream: how long it is so far, and its last characters."""

    __slots__ = ("done", "length", "tail")

    def __init__(self) -> None:
        self.length = 0
        self.tail = ""
        self.done = False  # ended and checked: its events need not wait


#: one event held back: its bytes, and for each text it adds to, the text and the
#: text's length after its piece
_Held = tuple[bytes, tuple[tuple[_Text, int], ...]]


class StreamGuard:
    """The check of one streamed answer; ``feed`` takes the body's pieces and
    returns what may go to the client now."""

    __slots__ = (
        "held",
        "held_bytes",
        "lookback",
        "max_held",
        "refused",
        "rules",
        "sequence",
        "splitter",
        "texts",
        "window",
    )

    def __init__(self, rules: Rules, window: int, max_held: int) -> None:
        self.rules = rules
        self.window = window
        self.lookback = max(window, MIN_LOOKBACK)
        #: most bytes held at once: past it the oldest events go out (a stream whose
        #: text stalls while other events keep coming must not fill the memory)
        self.max_held = max_held
        self.splitter = EventSplitter()
        self.texts: dict[Key, _Text] = {}
        self.held: deque[_Held] = deque()
        self.held_bytes = 0
        self.sequence: int | None = None  # the last sequence_number seen (Responses)
        self.refused = False

    def feed(self, chunk: bytes, last: bool) -> bytes:
        if self.refused:
            return b""
        out: list[bytes] = []
        for event in self.splitter.feed(chunk):
            refusal = self._take(event.raw, event.data)
            if refusal is not None:
                return self._refuse(out, refusal)
            self._release(out)
        if last:
            for key, text in self.texts.items():
                if not text.done:
                    rule = self._search(text, "", final=True)
                    if rule is not None:
                        return self._refuse(out, self._refusal(key[0], rule))
            out.extend(raw for raw, _ in self.held)
            self.held.clear()
            self.held_bytes = 0
            out.append(self.splitter.rest())
        return b"".join(out)

    def _take(self, raw: bytes, data: str | None) -> bytes | None:
        """Read one event and hold it; the refusal to send instead, on a match."""
        found = NO_TEXT if data is None else read_event(data)
        if found.sequence is not None:
            self.sequence = found.sequence
        marks: list[tuple[_Text, int]] = []
        for key, piece in found.deltas:
            text = self.texts.get(key)
            if text is None:
                text = self.texts[key] = _Text()
            rule = self._search(text, piece, final=False)
            if rule is not None:
                return self._refusal(key[0], rule)
            marks.append((text, text.length))
        for key in found.ends:
            text = self.texts.get(key)
            if text is not None and not text.done:
                rule = self._search(text, "", final=True)
                if rule is not None:
                    return self._refusal(key[0], rule)
                text.done = True
        self.held.append((raw, tuple(marks)))
        self.held_bytes += len(raw)
        return None

    def _release(self, out: list[bytes]) -> None:
        """Move the held events that enough text follows (in order) to ``out``."""
        held, window = self.held, self.window
        while held and (
            self.held_bytes > self.max_held
            or all(t.done or t.length - end >= window for t, end in held[0][1])
        ):
            raw = held.popleft()[0]
            self.held_bytes -= len(raw)
            out.append(raw)

    def _search(self, text: _Text, piece: str, final: bool) -> str | None:
        joined = text.tail + piece
        start = max(0, len(text.tail) - self.lookback)
        text.length += len(piece)
        text.tail = joined[-(self.lookback + CONTEXT) :]
        return self.rules.first_match_from(joined, start, final)

    def _refusal(self, front: Front, rule: str) -> bytes:
        return refusal_event(front, withheld_message(rule), rule, self.sequence)

    def _refuse(self, out: list[bytes], refusal: bytes) -> bytes:
        self.refused = True
        self.held.clear()
        self.held_bytes = 0
        self.texts.clear()
        out.append(refusal)
        return b"".join(out)
