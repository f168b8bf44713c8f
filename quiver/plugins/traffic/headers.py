"""The fields that tell a client where it stands: ``RateLimit-Policy`` and ``RateLimit``
(draft-ietf-httpapi-ratelimit-headers, as structured fields), ``Retry-After``, and
optionally the older ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``.

A policy is named after its window (``"minute"``, ``"hour"``, ``"90s"``) with its
quota and window as parameters: ``RateLimit-Policy: "minute";q=100;w=60``.
``RateLimit`` carries the policy with the fewest units left, as the draft asks of a
server with several windows: ``RateLimit: "minute";r=42;t=18``.  ``t`` is when one
more unit fits once the ``r`` left are used (``algorithms.Step``): with ``r=0``, the
Retry-After a refusal would get, so a client that waits ``t`` is let through.

Both fields are Lists, so when several traffic-control plugins apply to a request
(``rate-limit`` and ``quota``), each adds its own field lines and a client reads
them as one list: every policy, and one ``RateLimit`` item per plugin.  Fields the
node sent are kept beside them (its own limits apply too).  The legacy fields are
single values: they describe the plugin with the fewest units left.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from quiver.plugins.base import PluginRequest
from quiver.plugins.counters import Usage, Window

Fields = tuple[tuple[bytes, bytes], ...]

_NAMED = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
_LEGACY_SHOWN = "x-ratelimit-remaining"  # request.ctx: what the legacy fields say so far


def policy_name(window: Window, prefix: str = "") -> str:
    """The name a window's policy goes by."""
    seconds = window.seconds
    name = _NAMED.get(seconds) or (f"{seconds:g}s" if seconds < 86400 else f"{seconds / 86400:g}d")
    return prefix + name


def policy_item(name: str, limit: int, seconds: float) -> bytes:
    """One item of RateLimit-Policy: ``"name";q=limit;w=seconds``."""
    return b'"%s";q=%d;w=%d' % (name.encode(), limit, math.ceil(seconds))


class Reporter:
    """Renders the fields of one plugin's policies (built once per plugin)."""

    def __init__(self, names: Sequence[str], windows: Sequence[Window], *, legacy: bool) -> None:
        self.names = tuple(f'"{name}"'.encode() for name in names)
        self.policy = b", ".join(
            policy_item(name, window.limit, window.seconds)
            for name, window in zip(names, windows, strict=True)
        )
        self.legacy = legacy
        self.single = len(self.names) == 1 and not legacy
        self.first = self.names[0] + b";r="
        #: both fields of a single policy, up to the units left
        self.both = b"RateLimit-Policy: %s\r\nRateLimit: %s" % (self.policy, self.first)

    def add_to(
        self, request: PluginRequest, usage: Sequence[Usage], policy: bytes | None = None
    ) -> None:
        """Add the fields to the response ``request`` gets (``policy``: this moment's
        RateLimit-Policy value, when it is not always the same)."""
        if self.single and policy is None:  # the common case
            _, remaining, reset = usage[0]
            request.add_response_fields(self.usual(remaining, reset))
            return
        for name, value in self._fields(request, usage, None, policy):
            request.add_response_field(name, value)

    def usual(self, remaining: int, reset: float) -> bytes:
        """Both fields of a single policy whose value does not change, rendered
        (``reset``: the seconds until the window resets, see ``algorithms.Step``)."""
        return self.both + b"%d;t=%d\r\n" % (remaining, _seconds(reset))

    def refusal(
        self,
        request: PluginRequest,
        usage: Sequence[Usage],
        retry_after: float,
        policy: bytes | None = None,
    ) -> Fields:
        """The fields of a 429: the same ones, and Retry-After."""
        return self._fields(request, usage, retry_after, policy)

    def _fields(
        self,
        request: PluginRequest,
        usage: Sequence[Usage],
        retry_after: float | None,
        policy: bytes | None,
    ) -> Fields:
        # the fewest left; of those, the latest reset (waiting it, none holds the client up)
        lowest = min(
            range(len(usage)), key=lambda index: (usage[index].remaining, -usage[index].reset)
        )
        current = usage[lowest]
        # a refusal's reset is the moment Retry-After names (the draft asks them to agree)
        reset = _seconds(current.reset if retry_after is None else retry_after)
        fields: list[tuple[bytes, bytes]] = [
            (b"RateLimit-Policy", policy or self.policy),
            (b"RateLimit", b"%s;r=%d;t=%d" % (self.names[lowest], current.remaining, reset)),
        ]
        if self.legacy:
            self._legacy(request, current.limit, current.remaining, reset)
        if retry_after is not None:
            fields.append((b"Retry-After", b"%d" % (reset if reset > 1 else 1)))
        return tuple(fields)

    @staticmethod
    def _legacy(request: PluginRequest, limit: int, remaining: int, reset: int) -> None:
        """Show these legacy values unless a plugin showed fewer units left already."""
        shown = request.ctx.get(_LEGACY_SHOWN)
        if shown is not None and shown <= remaining:
            return
        request.ctx[_LEGACY_SHOWN] = remaining
        replace = shown is not None
        request.add_response_field(b"X-RateLimit-Limit", b"%d" % limit, replace=replace)
        request.add_response_field(b"X-RateLimit-Remaining", b"%d" % remaining, replace=replace)
        request.add_response_field(b"X-RateLimit-Reset", b"%d" % reset, replace=replace)


def _seconds(value: float) -> int:
    """Whole seconds, rounded up (a client waiting that long is never early)."""
    if value <= 0.0:
        return 0
    if value == math.inf:
        return 2**31 - 1
    return math.ceil(value - 1e-9)
