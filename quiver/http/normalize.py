"""Request path normalization, RFC 3986 §6.2.2.

The proxy normalizes a request path once, before routing, so that ``/a/./b``,
``/a/%62`` and ``/a/b`` reach the same route and no ``..`` trick escapes a
prefix.  Route patterns go through the same function at compile time, so both
sides of a comparison are in one canonical form.
"""

from __future__ import annotations

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX_DIGITS = b"0123456789abcdefABCDEF"

# Control characters, space and DEL: llhttp refuses them in a request target, and
# so do we when a path comes from elsewhere.  Bytes >= 0x80 pass as they are.
_INVALID = bytes(range(0x21)) + b"\x7f"


def _escape_table() -> dict[bytes, bytes]:
    """Every two-hex-digit escape body mapped to its canonical form (§6.2.2.2)."""
    table: dict[bytes, bytes] = {}
    for high in _HEX_DIGITS:
        for low in _HEX_DIGITS:
            key = bytes((high, low))
            byte = int(key, 16)
            table[key] = bytes((byte,)) if byte in _UNRESERVED else b"%" + key.upper()
    return table


_ESCAPES = _escape_table()


def normalize_path(raw: bytes) -> bytes | None:
    """The canonical form of a request path, or None when it is not a valid path.

    Percent-escapes of unreserved characters are decoded, the hex digits of the
    others are uppercased (``%2f`` becomes ``%2F`` and stays a literal byte of a
    segment, not a separator), then dot-segments are removed (§5.2.4), which also
    catches ``%2e%2e`` once decoded.  Nothing else changes: ``//`` is kept.

    >>> normalize_path(b"/a/%7euser/./../b%2fc")
    b'/a/b%2Fc'
    """
    if raw[:1] != b"/" or len(raw.translate(None, _INVALID)) != len(raw):
        return None
    path = raw
    if 37 in raw:  # b"%"
        parts = raw.split(b"%")
        out = [parts[0]]
        for part in parts[1:]:
            canonical = _ESCAPES.get(part[:2])
            if canonical is None:
                return None
            out.append(canonical)
            out.append(part[2:])
        path = b"".join(out)
    if path.find(b"/.") >= 0:
        path = remove_dot_segments(path)
    return path


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 for an absolute path: ``.`` and ``..`` segments resolved.

    A ``..`` never climbs above the root, and a path ending in a dot-segment keeps
    its trailing slash (``/a/b/..`` is ``/a/``), as the RFC's algorithm does.
    """
    segments = path[1:].split(b"/")
    last = len(segments) - 1
    out: list[bytes] = []
    for index, segment in enumerate(segments):
        if segment == b".":
            if index == last:
                out.append(b"")
        elif segment == b"..":
            if out:
                out.pop()
            if index == last:
                out.append(b"")
        else:
            out.append(segment)
    return b"/" + b"/".join(out)


def canonical_pattern(text: str) -> bytes:
    """A configured path (or path template) in the form normalize_path gives requests.

    Non-ASCII characters are percent-encoded as UTF-8, since conforming clients
    send them that way (RFC 3986 §2.5).  ValueError when the path cannot match
    any valid request.
    """
    path = normalize_path(percent_encode_non_ascii(text))
    if path is None:
        raise ValueError(f"{text!r} is not a valid path (bad %-escape, space or control char)")
    return path


def percent_encode_non_ascii(text: str) -> bytes:
    """``text`` as ASCII bytes, each non-ASCII character as %XX escapes of its UTF-8."""
    if text.isascii():
        return text.encode("ascii")
    return "".join(
        char if char.isascii() else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in text
    ).encode("ascii")
