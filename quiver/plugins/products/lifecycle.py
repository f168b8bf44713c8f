"""The header fields of a deprecated or retired API.

``Deprecation: @<epoch seconds>`` is RFC 9745 §2.1 (a Structured Field Date);
``Sunset`` is an HTTP-date, the IMF-fixdate of RFC 9110 §5.6.7 (RFC 8594 §3); the
``Link`` with ``rel="deprecation"`` is RFC 9745 §3.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime

from quiver.config.apis import Api

Fields = tuple[tuple[bytes, bytes], ...]


def deprecation_fields(api: Api) -> Fields:
    """Deprecation, Sunset and Link, those that ``api.deprecation`` sets."""
    deprecation = api.deprecation
    if deprecation is None:
        return ()
    fields = [(b"Deprecation", b"@%d" % int(deprecation.date.timestamp()))]
    fields += sunset_fields(api)
    return tuple(fields)


def sunset_fields(api: Api) -> Fields:
    """Sunset and Link: what a retired API's 410 still says."""
    deprecation = api.deprecation
    if deprecation is None:
        return ()
    fields = []
    if deprecation.sunset is not None:
        fields.append(
            (b"Sunset", format_datetime(deprecation.sunset.astimezone(UTC), usegmt=True).encode())
        )
    if deprecation.link is not None:
        fields.append((b"Link", b'<%s>; rel="deprecation"' % deprecation.link.encode()))
    return tuple(fields)
