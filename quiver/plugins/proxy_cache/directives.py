"""Cache-Control directives (RFC 9111 §5.2) and HTTP dates, parsed from bytes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

#: a delta-seconds argument that does not parse counts as this (§1.2.2: "infinity")
_TOO_BIG = 2**31


@dataclass(slots=True)
class Directives:
    """The Cache-Control directives of one message that a shared cache acts on.

    ``None`` for a directive with an argument means it is absent.
    """

    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    must_revalidate: bool = False  # must-revalidate or proxy-revalidate
    only_if_cached: bool = False
    max_age: int | None = None
    s_maxage: int | None = None
    max_stale: int | None = None  # "max-stale" without a value: any staleness
    min_fresh: int | None = None
    stale_if_error: int | None = None


NONE = Directives()


def parse(value: bytes | None) -> Directives:
    """The directives in a Cache-Control value (repeated fields joined by ", ").

    Names compare case-insensitively; arguments may be quoted; a malformed or
    duplicated delta-seconds keeps the most restrictive reading (§4.2.1: the
    first max-age wins; a negative or unreadable one counts as 0).
    """
    if not value:
        return NONE
    found = Directives()
    for part in value.split(b","):
        name, _, argument = part.partition(b"=")
        name = name.strip().lower()
        argument = argument.strip().strip(b'"')
        if name == b"no-store":
            found.no_store = True
        elif name == b"no-cache":
            # a no-cache listing fields revalidates only for them: treated as a whole
            found.no_cache = True
        elif name == b"private":
            found.private = True
        elif name == b"public":
            found.public = True
        elif name in (b"must-revalidate", b"proxy-revalidate"):
            found.must_revalidate = True
        elif name == b"only-if-cached":
            found.only_if_cached = True
        elif name == b"max-age" and found.max_age is None:
            found.max_age = _seconds(argument)
        elif name == b"s-maxage" and found.s_maxage is None:
            found.s_maxage = _seconds(argument)
        elif name == b"max-stale":
            found.max_stale = _seconds(argument) if argument else _TOO_BIG
        elif name == b"min-fresh":
            found.min_fresh = _seconds(argument)
        elif name == b"stale-if-error":
            found.stale_if_error = _seconds(argument)
    return found


def _seconds(argument: bytes) -> int:
    """A delta-seconds value; 0 when it is not one (the safe reading)."""
    if not argument.isdigit():
        return 0
    return min(int(argument), _TOO_BIG)


def http_date(value: bytes | None) -> float | None:
    """Seconds since the epoch for an HTTP-date (RFC 9110 §5.6.7), None if invalid."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.decode("latin-1"))
    except (ValueError, TypeError, IndexError):
        return None
    if moment.tzinfo is None:  # (the obsolete forms carry no zone: GMT by definition)
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
