"""Which requests are cached, and the key that identifies their answer.

A request is *deterministic* when its JSON body says ``temperature: 0``, or when
the client opts in with the opt-in header set to ``on`` (``off`` opts out).  Its
key is the SHA-256 of the front it was sent to (method, path and query), its
Accept header (a prompt API streams when asked there), the consumer when answers
are kept per consumer, and the body normalised: parsed,
the ignored fields dropped, written back with sorted keys and no whitespace.
So two requests that differ only in spacing, key order or ``user`` share an
answer, and a streamed request never shares one with a non-streamed request
(``stream`` is in the body).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson

from quiver.plugins.base import PluginRequest

Decision = Literal["cache", "bypass"]


def decide(body: Any, opt_in: bytes | None) -> Decision:
    """Whether a request's answer is cached: the client's header first, then its
    temperature."""
    if opt_in is not None:
        wanted = opt_in.strip().lower()
        if wanted == b"on":
            return "cache"
        if wanted == b"off":
            return "bypass"
    if isinstance(body, dict):
        temperature = body.get("temperature")
        if (
            isinstance(temperature, int | float)
            and not isinstance(temperature, bool)
            and temperature == 0
        ):
            return "cache"
    return "bypass"


def cache_key(
    request: PluginRequest, body: dict[str, Any], ignored: frozenset[str], per_consumer: bool
) -> str:
    """The key of a deterministic request's answer."""
    kept = {name: value for name, value in body.items() if name not in ignored}
    normalised = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256()
    digest.update(request.method + b" " + request.raw_path.partition(b"?")[0])
    digest.update(b"?" + request.query + b"\n")
    # (a prompt API streams when the client accepts server-sent events)
    digest.update((request.get(b"accept") or b"").lower() + b"\n")
    if per_consumer:
        consumer = request.consumer
        digest.update((consumer.name if consumer is not None else "").encode() + b"\n")
    digest.update(normalised)
    return digest.hexdigest()
