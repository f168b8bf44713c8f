"""How a record becomes a line: ``json`` (one object per line) or ``text``.

Formatting runs on the access log's writer thread, never on the event loop; it
still holds the GIL while it runs, so it is kept lean: the selected fields are
read in one ``attrgetter`` call, only the bytes and float fields are touched, and
the ISO 8601 time is rebuilt once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from operator import attrgetter

import orjson

from quiver.observe.record import ExchangeRecord

Formatter = Callable[[ExchangeRecord], bytes]

#: fields the text format writes first, bare, in this order (the rest as key=value)
_LEADING = ("time", "client_ip", "method", "path", "status")
_BYTES = frozenset(("request_id", "client_ip", "method", "path", "user_agent"))
_MILLISECONDS = frozenset(("latency_ms", "upstream_ms", "gateway_ms"))


class IsoTime:
    """ISO 8601 in UTC with milliseconds (``2026-12-06T07:40:17.123Z``); the part up
    to the second is kept from the last call."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self, epoch: float) -> str:
        second = int(epoch)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return "%s.%03dZ" % (self.prefix, int((epoch - second) * 1000))  # noqa: UP031


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
            row[at] = iso(row[at])
        return row

    return values


#: how each field is written in a JSON line: the template's slot and the expression
#: that fills it (``r`` is the record).  Names from the config (routes, targets,
#: consumers, plugins) and node labels are made of characters JSON needs no escape
#: for (NAME_PATTERN), and so are request ids (tokens), addresses and methods; the
#: path, the user agent and what a plugin reported go through ``text``.
_JSON: dict[str, tuple[str, str]] = {
    "time": ('"%s"', "iso(r.time)"),
    "request_id": ('"%s"', "r.request_id.decode('latin-1')"),
    "client_ip": ('"%s"', "r.client_ip.decode('latin-1')"),
    "method": ('"%s"', "r.method.decode('latin-1')"),
    "path": ("%s", "text(r.path)"),
    "status": ("%d", "r.status"),
    "route": ("%s", "'\"%s\"' % r.route if r.route is not None else 'null'"),
    "target": ("%s", "'\"%s\"' % r.target if r.target is not None else 'null'"),
    "node": ("%s", "'\"%s\"' % r.node if r.node is not None else 'null'"),
    "consumer": ("%s", "'\"%s\"' % r.consumer if r.consumer is not None else 'null'"),
    "bytes_in": ("%d", "r.bytes_in"),
    "bytes_out": ("%d", "r.bytes_out"),
    "latency_ms": ("%.3f", "r.latency_ms"),
    "upstream_ms": ("%s", "'%.3f' % r.upstream_ms if r.upstream_ms is not None else 'null'"),
    "gateway_ms": ("%.3f", "r.gateway_ms"),
    "retries": ("%d", "r.retries"),
    "cache": ("%s", "text(r.cache) if r.cache is not None else 'null'"),
    "answered_by": ("%s", "'\"%s\"' % r.answered_by if r.answered_by is not None else 'null'"),
    "user_agent": ("%s", "text(r.user_agent) if r.user_agent is not None else 'null'"),
}


def _json(names: tuple[str, ...], values: Callable[[ExchangeRecord], list[object]]) -> Formatter:
    """One ``%`` of a template made for the selected fields: no dict, no call per
    field but for the time and the strings that may need escaping.  The function is
    generated from the fixed snippets above (the names are checked against them)."""
    template = "{" + ",".join(f'"{name}":{_JSON[name][0]}' for name in names) + "}\n"
    arguments = ", ".join(f"({_JSON[name][1]})" for name in names)
    source = f"def line(r):\n    return (template % ({arguments},)).encode()\n"
    scope: dict[str, object] = {"template": template, "iso": IsoTime(), "text": _json_text}
    exec(compile(source, "<access log json format>", "exec"), scope)
    return scope["line"]  # type: ignore[return-value]


def _json_text(value: bytes | str) -> str:
    """A JSON string of ``value`` (bytes as UTF-8, invalid bytes replaced)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return orjson.dumps(text).decode()


def _text(names: tuple[str, ...], values: Callable[[ExchangeRecord], list[object]]) -> Formatter:
    leading = [names.index(name) for name in _LEADING if name in names]
    rest = [(i, name) for i, name in enumerate(names) if name not in _LEADING]

    def line(record: ExchangeRecord) -> bytes:
        row = values(record)
        parts = [_shown(row[i]) for i in leading]
        parts += [f"{name}={_shown(row[i])}" for i, name in rest]
        return (" ".join(parts) + "\n").encode("utf-8", "replace")

    return line


def _shown(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c in text for c in ' "\n\r\t') or not text.isprintable():
        return orjson.dumps(text).decode()  # quoted, with what would break the line escaped
    return text
