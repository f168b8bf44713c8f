"""How a record becomes a line: ``json`` (one object per line) or ``text``.

Formatting runs on the access log's writer thread, never on the event loop; it
still holds the GIL while it runs, so it is kept lean: the selected fields are
read in one ``attrgetter`` call, only the bytes and float fields are touched, and
the ISO 8601 time is rebuilt once a second.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from operator import attrgetter

import orjson

from quiver.observe.mcp_note import compact, mcp_document
from quiver.observe.record import ExchangeRecord

Formatter = Callable[[ExchangeRecord], bytes]

#: fields the text format writes first, bare, in this order (the rest as key=value)
_LEADING = ("time", "client_ip", "method", "path", "status")
_BYTES = frozenset(("request_id", "client_ip", "method", "path", "user_agent"))
_MILLISECONDS = frozenset(("latency_ms", "upstream_ms", "gateway_ms"))


class IsoTime:
    """ISO 8601 in UTC with milliseconds (``b"2026-12-06T07:40:17.123Z"``); the part
    up to the second is kept from the last call."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = b""

    def __call__(self, epoch: float) -> bytes:
        second = int(epoch)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"%s.%03dZ" % (self.prefix, int((epoch - second) * 1000))


def formatter(kind: str, fields: Sequence[str]) -> Formatter:
    """The function that renders a record as one line (newline included)."""
    names = tuple(fields)
    values = _values(names)
    if kind == "json":
        return _json(names, values)
    return _text(names, values)


def _values(names: tuple[str, ...]) -> Callable[[ExchangeRecord], list[object]]:
    """The selected fields of a record, as written: bytes decoded, milliseconds to
    the microsecond, the time in ISO 8601."""
    read = attrgetter(*names) if len(names) > 1 else (lambda r: (getattr(r, names[0]),))
    texts = tuple(i for i, name in enumerate(names) if name in _BYTES)
    numbers = tuple(i for i, name in enumerate(names) if name in _MILLISECONDS)
    at = names.index("time") if "time" in names else -1
    iso = IsoTime()

    def values(record: ExchangeRecord) -> list[object]:
        row = list(read(record))
        for i in texts:
            value = row[i]
            if value is not None:
                row[i] = value.decode("utf-8", "replace")
        for i in numbers:
            value = row[i]
            if value is not None:
                row[i] = round(value, 3)
        if at >= 0:
            row[at] = iso(row[at]).decode()
        return row

    return values


#: how each field is written in a JSON line: the template's slot and the expression
#: that fills it (``r`` is the record), all bytes: bytes off the wire are written as
#: they are when they need no escape.  Request ids (tokens), addresses and methods
#: never do; names from the config (routes, targets, consumers, plugins) and node
#: labels neither (NAME_PATTERN), and their encodings are kept (``name``).
_JSON: dict[str, tuple[bytes, str]] = {
    "time": (b'"%s"', "iso(r.time)"),
    "request_id": (b'"%s"', "r.request_id"),
    "client_ip": (b'"%s"', "r.client_ip"),
    "method": (b'"%s"', "r.method"),
    "path": (b"%s", "text(r.path)"),
    "status": (b"%d", "r.status"),
    "route": (b"%s", "names.get(r.route) or name(r.route)"),
    "target": (b"%s", "names.get(r.target) or name(r.target)"),
    "node": (b"%s", "names.get(r.node) or name(r.node)"),
    "consumer": (b"%s", "names.get(r.consumer) or name(r.consumer)"),
    "bytes_in": (b"%d", "r.bytes_in"),
    "bytes_out": (b"%d", "r.bytes_out"),
    "latency_ms": (b"%d.%03d", "*divmod(int(r.latency_ms * 1000), 1000)"),
    "upstream_ms": (b"%s", "ms(r.upstream_ms)"),
    "gateway_ms": (b"%d.%03d", "*divmod(int(r.gateway_ms * 1000), 1000)"),
    "retries": (b"%d", "r.retries"),
    "cache": (b"%s", "names.get(r.cache) or text(r.cache)"),
    "answered_by": (b"%s", "names.get(r.answered_by) or name(r.answered_by)"),
    "user_agent": (b"%s", "text(r.user_agent)"),
    "mcp": (b"%s", "mcp(r.mcp)"),
    "websocket": (b"%s", "document(r.websocket)"),
    "plan": (b"%s", "names.get(r.plan) or name(r.plan)"),
}


def _json(names: tuple[str, ...], values: Callable[[ExchangeRecord], list[object]]) -> Formatter:
    """One ``%`` of a bytes template made for the selected fields: no dict, no decoding,
    no call per field but for the time and what may need escaping.  The function is
    generated from the fixed snippets above (``names`` are checked against them)."""
    template = b"{" + b",".join(b'"%s":%s' % (n.encode(), _JSON[n][0]) for n in names) + b"}\n"
    arguments = ", ".join(_JSON[name][1] for name in names)
    source = f"def line(r):\n    return template % ({arguments},)\n"
    encoded: dict[object, bytes] = {None: b"null"}

    def name(value: str) -> bytes:
        """A config name as a JSON string, kept for the next line (a bounded set)."""
        if len(encoded) > 10000:
            encoded.clear()
            encoded[None] = b"null"
        quoted = encoded[value] = _json_text(value)
        return quoted

    scope: dict[str, object] = {
        "template": template,
        "iso": IsoTime(),
        "text": _json_text,
        "names": encoded,
        "name": name,
        "ms": _milliseconds,
        "mcp": _mcp_json,
        "document": _document_json,
    }
    exec(compile(source, "<access log json format>", "exec"), scope)
    return scope["line"]  # type: ignore[return-value]


def _milliseconds(value: float | None) -> bytes:
    if value is None:
        return b"null"
    return b"%d.%03d" % divmod(int(value * 1000), 1000)


def _mcp_json(note: dict[str, object] | None) -> bytes:
    if note is None:
        return b"null"
    return orjson.dumps(mcp_document(note))


def _document_json(note: dict[str, object] | None) -> bytes:
    if note is None:
        return b"null"
    return orjson.dumps(note)


#: what a JSON string cannot carry as it is: quotes, backslashes, control and non-ASCII bytes
_NEEDS_ESCAPE = re.compile(rb'[\x00-\x1f"\\\x7f-\xff]')


def _json_text(value: bytes | str | None) -> bytes:
    """``value`` as a JSON string (bytes as UTF-8, invalid bytes replaced); null for None."""
    if value is None:
        return b"null"
    raw = value.encode() if isinstance(value, str) else value
    if _NEEDS_ESCAPE.search(raw) is None:
        return b'"' + raw + b'"'
    return orjson.dumps(raw.decode("utf-8", "replace"))


def _text(names: tuple[str, ...], values: Callable[[ExchangeRecord], list[object]]) -> Formatter:
    leading = [names.index(name) for name in _LEADING if name in names]
    rest = [(i, name) for i, name in enumerate(names) if name not in _LEADING]
    at_mcp = names.index("mcp") if "mcp" in names else -1
    at_websocket = names.index("websocket") if "websocket" in names else -1

    def line(record: ExchangeRecord) -> bytes:
        row = values(record)
        if at_mcp >= 0 and record.mcp is not None:
            row[at_mcp] = compact(record.mcp)
        if at_websocket >= 0 and record.websocket is not None:
            row[at_websocket] = _compact_note(record.websocket)
        parts = [_shown(row[i]) for i in leading]
        parts += [f"{name}={_shown(row[i])}" for i, name in rest]
        return (" ".join(parts) + "\n").encode("utf-8", "replace")

    return line


def _compact_note(note: dict[str, object]) -> str:
    """``messages_in=3,messages_out=3,...``: a note in one token of a text line."""
    return ",".join(f"{key}={'-' if value is None else value}" for key, value in note.items())


def _shown(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c in text for c in ' "\n\r\t') or not text.isprintable():
        return orjson.dumps(text).decode()  # quoted, with what would break the line escaped
    return text
