"""proxy-cache: Cache-Control and HTTP-date parsing (RFC 9111 §5.2, RFC 9110 §5.6.7)."""

from __future__ import annotations

import pytest

from quiver.plugins.proxy_cache.directives import Directives, http_date, parse


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, Directives()),
        (b"", Directives()),
        (b"max-age=60", Directives(max_age=60)),
        (b'MAX-AGE="60", Public', Directives(max_age=60, public=True)),
        (b"max-age=60, max-age=0", Directives(max_age=60)),  # the first one counts
        (b"max-age=-1", Directives(max_age=0)),  # unreadable: the safe reading
        (b"max-age=abc", Directives(max_age=0)),
        (b"max-age=99999999999", Directives(max_age=2**31)),
        (b"s-maxage=10, proxy-revalidate", Directives(s_maxage=10, must_revalidate=True)),
        (b'no-cache="Set-Cookie", private', Directives(no_cache=True, private=True)),
        (b"no-store , only-if-cached", Directives(no_store=True, only_if_cached=True)),
        (b"max-stale", Directives(max_stale=2**31)),
        (b"max-stale=5, min-fresh=3", Directives(max_stale=5, min_fresh=3)),
        (b"stale-if-error=30, community=x", Directives(stale_if_error=30)),
    ],
)
def test_cache_control_directives(value: bytes | None, expected: Directives) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),
        (b"Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),  # obsolete RFC 850 form
        (b"Sun Nov  6 08:49:37 1994", 784111777.0),  # obsolete asctime form
        (b"0", None),
        (b"yesterday", None),
        (None, None),
    ],
)
def test_http_dates(value: bytes | None, expected: float | None) -> None:
    assert http_date(value) == expected
