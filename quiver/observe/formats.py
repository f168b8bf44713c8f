"""How a record becomes a line: ``json`` (one object per line) or ``text``.

Formatting runs on the access log's writer thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson

from quiver.observe.record import ExchangeRecord

Formatter = Callable[[ExchangeRecord], bytes]

#: fields the text format writes first, bare, in this order (the rest as key=value)
_LEADING = ("time", "client_ip", "method", "path", "status")


def iso_time(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-12-06T07:40:17.123Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def formatter(kind: str, fields: Sequence[str]) -> Formatter:
    """The function that renders a record as one line (newline included)."""
    names = tuple(fields)
    if kind == "json":
        return _json(names)
    return _text(names)


def _json(names: tuple[str, ...]) -> Formatter:
    def line(record: ExchangeRecord) -> bytes:
        document = {name: record.value(name) for name in names}
        if "time" in document:
            document["time"] = iso_time(record.time)
        return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)

    return line


def _text(names: tuple[str, ...]) -> Formatter:
    leading = [name for name in _LEADING if name in names]
    rest = [name for name in names if name not in _LEADING]

    def line(record: ExchangeRecord) -> bytes:
        parts = []
        for name in leading:
            value = record.value(name)
            parts.append(iso_time(value) if name == "time" else _shown(value))
        for name in rest:
            parts.append(f"{name}={_shown(record.value(name))}")
        return (" ".join(parts) + "\n").encode("utf-8", "replace")

    return line


def _shown(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    if not text or any(c in text for c in ' "\n\r\t') or not text.isprintable():
        return orjson.dumps(text).decode()  # quoted, with what would break the line escaped
    return text
