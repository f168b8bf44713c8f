"""The fields that tell a client where it stands: ``RateLimit-Policy`` and ``RateLimit``
(draft-ietf-httpapi-ratelimit-headers, as structured fields), ``Retry-After``, and
optionally the older ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``.

A policy is named after its window (``"minute"``, ``"hour"``, ``"90s"``) with its
quota and window as parameters: ``RateLimit-Policy: "minute";q=100;w=60``.
``RateLimit`` carries the policy with the fewest units left, as the draft asks of a
server with several windows: ``RateLimit: "minute";r=42;t=18``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from quiver.plugins.base import PluginRequest
from quiver.plugins.counters import Usage, Window

Fields = tuple[tuple[bytes, bytes], ...]

_NAMED = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


def policy_name(window: Window, prefix: str = "") -> str:
    """The name a window's policy goes by."""
    seconds = window.seconds
    name = _NAMED.get(seconds) or (f"{seconds:g}s" if seconds < 86400 else f"{seconds / 86400:g}d")
    return prefix + name


class Reporter:
    """Renders the fields of one plugin's policies (built once per plugin)."""

    def __init__(self, names: Sequence[str], windows: Sequence[Window], *, legacy: bool) -> None:
        self.names = tuple(f'"{name}"'.encode() for name in names)
        self.policy = b", ".join(
            b"%s;q=%d;w=%d" % (name, window.limit, math.ceil(window.seconds))
            for name, window in zip(self.names, windows, strict=True)
        )
        self.legacy = legacy
        self.single = len(self.names) == 1 and not legacy
        self.first = self.names[0] + b";r="

    def add_to(self, request: PluginRequest, usage: Sequence[Usage]) -> None:
        """Add the fields to the response ``request`` gets."""
        if self.single:  # the common case, in two formatting steps
            _, remaining, reset = usage[0]
            request.add_response_field(b"RateLimit-Policy", self.policy)
            request.add_response_field(
                b"RateLimit", b"%s%d;t=%d" % (self.first, remaining, _seconds(reset))
            )
            return
        for name, value in self.fields(usage):
            request.add_response_field(name, value)

    def fields(self, usage: Sequence[Usage], retry_after: float | None = None) -> Fields:
        """RateLimit-Policy and RateLimit (and the legacy fields, and Retry-After for a
        refusal, when ``retry_after`` is given) for ``usage`` under each window."""
        lowest = min(range(len(usage)), key=lambda index: usage[index].remaining)
        current = usage[lowest]
        # a refusal's reset is the moment Retry-After names (the draft asks them to agree)
        reset = _seconds(current.reset if retry_after is None else retry_after)
        fields: list[tuple[bytes, bytes]] = [
            (b"RateLimit-Policy", self.policy),
            (b"RateLimit", b"%s;r=%d;t=%d" % (self.names[lowest], current.remaining, reset)),
        ]
        if self.legacy:
            fields += (
                (b"X-RateLimit-Limit", b"%d" % current.limit),
                (b"X-RateLimit-Remaining", b"%d" % current.remaining),
                (b"X-RateLimit-Reset", b"%d" % reset),
            )
        if retry_after is not None:
            fields.append((b"Retry-After", b"%d" % (reset if reset > 1 else 1)))
        return tuple(fields)


def _seconds(value: float) -> int:
    """Whole seconds, rounded up (a client waiting that long is never early)."""
    if value <= 0.0:
        return 0
    if value == math.inf:
        return 2**31 - 1
    return math.ceil(value - 1e-9)
