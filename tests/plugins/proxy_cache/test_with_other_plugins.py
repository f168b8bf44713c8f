"""proxy-cache next to other plugins: what they add to responses, HIT or not."""

from __future__ import annotations

import pytest

from tests.plugins.proxy_cache.support import cached, fixed, get, status_of

pytestmark = pytest.mark.timeout(30)


def test_rate_limit_fields_are_the_current_ones_on_a_hit() -> None:
    limits = {"plugins": {"rate-limit": {"limit": 10, "window": "1m", "by": "ip"}}}
    with cached({"/": fixed(cache_control="max-age=60")}, limits) as (origin, proxy):
        miss, hit = get(proxy), get(proxy)
        assert (status_of(miss), status_of(hit)) == ("MISS", "HIT")
        assert miss.header("RateLimit") != hit.header("RateLimit")  # counted anew
        assert [name for name, _ in hit.headers].count("RateLimit") == 1
        assert "r=8" in (hit.header("RateLimit") or "")
        assert origin.count() == 1


def test_cors_vary_keeps_an_entry_per_origin() -> None:
    cors = {"plugins": {"cors": {"origins": ["*"]}}}
    with cached({"/": fixed(cache_control="max-age=60")}, cors) as (origin, proxy):
        first = get(proxy, origin="https://a.example")
        assert first.header("Vary") == "Origin"
        assert status_of(get(proxy, origin="https://b.example")) == "MISS"
        hit = get(proxy, origin="https://a.example")
        assert (status_of(hit), hit.header("Access-Control-Allow-Origin")) == ("HIT", "*")
        assert status_of(get(proxy)) == "MISS"  # no Origin: a variant of its own
        assert origin.count() == 3
