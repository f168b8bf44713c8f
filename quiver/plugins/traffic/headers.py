"""The fields that tell a client where it stands: ``RateLimit-Policy`` and ``RateLimit``
(draft-ietf-httpapi-ratelimit-headers, as structured fields), ``Retry-After``, and
optionally the older ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``.

A policy is named after its window (``"minute"``, ``"hour"``, ``"90s"``) with its
quota and window as parameters: ``RateLimit-Policy: "minute";q=100;w=60``.
``RateLimit`` carries the policy with the fewest units left, as the draft asks of a
server with several windows: ``RateLimit: "minute";r=42;t=18``.

Several traffic-control plugins on one route (``rate-limit`` and ``quota``) each add
their items to the same two fields, which are Lists: ``RateLimit-Policy`` names
every policy, ``RateLimit`` holds one item per plugin, its tightest policy
(:func:`put_fields`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from quiver.plugins.base import PluginRequest
from quiver.plugins.counters import Usage, Window
from quiver.plugins.response import ResponseHead

Fields = tuple[tuple[bytes, bytes], ...]

#: ``request.ctx`` key: the response's RateLimit fields are the gateway's already
OWN = "ratelimit-fields"
_LISTS = (b"RateLimit-Policy", b"RateLimit")
_LEGACY = (b"X-RateLimit-Limit", b"X-RateLimit-Remaining", b"X-RateLimit-Reset")

_NAMED = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}


def policy_name(window: Window, prefix: str = "") -> str:
    """The name a window's policy goes by."""
    seconds = window.seconds
    name = _NAMED.get(seconds) or (f"{seconds:g}s" if seconds < 86400 else f"{seconds / 86400:g}d")
    return prefix + name


def policy_field(names: Sequence[str], windows: Sequence[Window]) -> bytes:
    """The RateLimit-Policy value for ``windows`` (built once per plugin)."""
    return b", ".join(
        b'"%s";q=%d;w=%d' % (name.encode(), window.limit, math.ceil(window.seconds))
        for name, window in zip(names, windows, strict=True)
    )


def status_fields(
    names: Sequence[str],
    policy: bytes,
    usage: Sequence[Usage],
    *,
    legacy: bool,
    retry_after: float | None = None,
) -> Fields:
    """RateLimit-Policy and RateLimit (and the legacy fields, and Retry-After when the
    request was refused) for a decision with ``usage`` under each named window."""
    lowest = min(range(len(usage)), key=lambda index: usage[index].remaining)
    current = usage[lowest]
    # a refusal's reset is the moment Retry-After names (the draft asks them to agree)
    reset = _seconds(current.reset if retry_after is None else retry_after)
    fields: list[tuple[bytes, bytes]] = [
        (b"RateLimit-Policy", policy),
        (b"RateLimit", b'"%s";r=%d;t=%d' % (names[lowest].encode(), current.remaining, reset)),
    ]
    if legacy:
        fields += (
            (b"X-RateLimit-Limit", b"%d" % current.limit),
            (b"X-RateLimit-Remaining", b"%d" % current.remaining),
            (b"X-RateLimit-Reset", b"%d" % reset),
        )
    if retry_after is not None:
        fields.append((b"Retry-After", b"%d" % max(reset, 1)))
    return tuple(fields)


def _seconds(value: float) -> int:
    """Whole seconds, rounded up (a client waiting that long is never early)."""
    if not math.isfinite(value):
        return 2**31 - 1
    return max(math.ceil(value - 1e-9), 0)


def put_fields(request: PluginRequest, response: ResponseHead, fields: Fields) -> None:
    """Put a plugin's status ``fields`` on ``response``.  The first plugin's replace
    any the node sent; the next ones' join them: their items are added to
    RateLimit-Policy and RateLimit, and the legacy fields are those of the plugin
    with the fewest units left."""
    ctx = request.ctx
    if not ctx.get(OWN):
        ctx[OWN] = True
        for name, value in fields:
            response.set(name, value)
        return
    values = dict(fields)
    for name in _LISTS:
        item = values.get(name)
        if item is not None:
            present = response.get(name)
            response.set(name, present + b", " + item if present else item)
    remaining = values.get(b"X-RateLimit-Remaining")
    if remaining is not None:
        shown = response.get(b"X-RateLimit-Remaining")
        if shown is None or not shown.isdigit() or int(remaining) < int(shown):
            for name in _LEGACY:
                response.set(name, values[name])
