"""Response header fields, and what a server says in them about when to come back.

``server_delay`` reads, in this order:

- ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date;
- the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers): the structured
  ``RateLimit: "policy";r=0;t=30`` that Quiver sends, and the earlier drafts'
  ``RateLimit-Remaining: 0`` with ``RateLimit-Reset: 30``.  A policy whose remaining
  quota ``r`` is 0 asks for its ``t`` seconds.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Iterator, Mapping


class Headers(Mapping[str, str]):
    """Case-insensitive, immutable; a field sent more than once reads as its values
    joined by ``", "`` (RFC 9110 §5.3), and ``get_list`` gives them apart."""

    __slots__ = ("_fields", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = tuple(items)
        fields: dict[str, list[str]] = {}
        for name, value in self._items:
            fields.setdefault(name.lower(), []).append(value)
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._fields[name.lower()])

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def get_list(self, name: str) -> list[str]:
        return list(self._fields.get(name.lower(), ()))

    def items_raw(self) -> tuple[tuple[str, str], ...]:
        """Every field as sent, in order, with its original case."""
        return self._items

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds ``Retry-After`` asks for (0 for a date in the past), or None."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_ITEM_PARAM = re.compile(r";\s*([a-z]+)\s*=\s*(\d+)")


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until an exhausted RateLimit quota is restored; None when none is."""
    waits = []
    for member in _members(headers.get("ratelimit", "")):
        params = dict(_ITEM_PARAM.findall(member))
        if params.get("r") == "0":
            waits.append(float(params.get("t", "0")))
    remaining = headers.get("ratelimit-remaining", "").strip()
    reset = headers.get("ratelimit-reset", "").strip()
    if remaining == "0" and reset.isdigit():
        waits.append(float(reset))
    return max(waits) if waits else None


def _members(field: str) -> list[str]:
    """The list members of a structured field (RFC 9651 §3.1), commas in strings kept."""
    members: list[str] = []
    current: list[str] = []
    quoted = False
    for char in field:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            members.append("".join(current))
            current = []
        else:
            current.append(char)
    members.append("".join(current))
    return [m.strip() for m in members if m.strip()]


def server_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """What the server asks to wait before the next request: Retry-After, else an
    exhausted RateLimit quota's reset; None when it says nothing."""
    delay = retry_after(headers, now)
    return delay if delay is not None else rate_limit_wait(headers)
