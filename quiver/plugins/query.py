"""Taking a credential out of a query string without touching the other parameters.

The query is split at "&" here, not parsed and serialized again: the parameters a
plugin leaves alone go upstream byte for byte as the client sent them (``%FF`` stays
``%FF``, a bare ``flag`` stays without "="). Names and values are compared and
returned as bytes after percent-decoding (``+`` is a space, as in form encoding), so
nothing a client sends can fail to decode: a value that is not UTF-8 is simply a value
that matches no credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_to_bytes


def query_names(names: Iterable[str]) -> frozenset[bytes]:
    """Configured parameter names in the form ``take_param`` compares them in."""
    return frozenset(name.encode() for name in names)


def take_param(
    query: bytes, names: frozenset[bytes], *, hide: bool, skip_empty: bool = False
) -> tuple[bytes | None, bytes | None]:
    """The decoded value of the first parameter named in ``names`` (with ``skip_empty``,
    the first one with a value), and the query to forward instead: without any
    parameter of those names when ``hide`` and one was found, else None (unchanged).
    """
    params = query.split(b"&")
    value = None
    for param in params:
        name, _, raw = param.partition(b"=")
        if (raw or not skip_empty) and _decoded(name) in names:
            value = _decoded(raw)
            break
    if value is None or not hide:
        return value, None
    kept = [param for param in params if _decoded(param.partition(b"=")[0]) not in names]
    return value, b"&".join(kept)


def _decoded(text: bytes) -> bytes:
    if b"%" not in text and b"+" not in text:
        return text
    return unquote_to_bytes(text.replace(b"+", b" "))
