"""proxy-cache: what makes two requests share an entry, and what unsafe methods
invalidate (RFC 9111 §4.4)."""

from __future__ import annotations

import pytest

from tests.plugins.proxy_cache.support import Reply, cached, fixed, get, status_of
from tests.support.upstream import Request

pytestmark = pytest.mark.timeout(30)

FRESH = {"cache_control": "max-age=60"}


def echo_path(request: Request) -> Reply:
    return 200, [("Cache-Control", "max-age=60")], request.path.encode()


def test_query_parameters_are_in_the_key_in_any_order() -> None:
    with cached({"/items": echo_path}) as (origin, proxy):
        assert get(proxy, "/items?a=1&b=2").body == b"/items?a=1&b=2"
        assert status_of(get(proxy, "/items?b=2&a=1")) == "HIT"
        assert status_of(get(proxy, "/items?a=2&b=2")) == "MISS"
        assert status_of(get(proxy, "/items")) == "MISS"
        # repeated names keep their order: they may mean a list
        assert status_of(get(proxy, "/items?t=1&t=2")) == "MISS"
        assert status_of(get(proxy, "/items?t=2&t=1")) == "MISS"
        assert origin.count() == 5


def test_only_the_chosen_query_parameters_count() -> None:
    with cached({"/items": echo_path}, key_query=["page"]) as (_, proxy):
        get(proxy, "/items?page=1&utm=a")
        assert status_of(get(proxy, "/items?utm=b&page=1")) == "HIT"
        assert status_of(get(proxy, "/items?page=2")) == "MISS"
    with cached({"/items": echo_path}, key_query=[]) as (_origin, proxy):
        get(proxy, "/items?page=1")
        assert status_of(get(proxy, "/items?page=2")) == "HIT"


def test_host_is_in_the_key_unless_turned_off() -> None:
    with cached({"/": fixed(**FRESH)}) as (_, proxy):
        get(proxy, host="a.example")
        assert status_of(get(proxy, host="b.example")) == "MISS"
        assert status_of(get(proxy, host="A.example")) == "HIT"
    with cached({"/": fixed(**FRESH)}, key_host=False) as (_origin, proxy):
        get(proxy, host="a.example")
        assert status_of(get(proxy, host="b.example")) == "HIT"


def test_chosen_request_headers_are_in_the_key() -> None:
    with cached({"/": fixed(**FRESH)}, key_headers=["X-Tenant"]) as (_origin, proxy):
        get(proxy, x_tenant="a")
        assert status_of(get(proxy, x_tenant="b")) == "MISS"
        assert status_of(get(proxy, x_tenant="a")) == "HIT"
        assert status_of(get(proxy)) == "MISS"


def test_per_consumer_entries() -> None:
    consumers = [
        {"name": "alice", "credentials": {"key-auth": [{"key": "alice-key-000000"}]}},
        {"name": "bob", "credentials": {"key-auth": [{"key": "bob-key-00000000"}]}},
    ]
    extra = {"consumers": consumers, "plugins": {"key-auth": {}}}
    # (an API key is no Authorization header: such responses are stored)
    with cached({"/": fixed(**FRESH)}, extra, key_consumer=True) as (origin, proxy):
        get(proxy, apikey="alice-key-000000")
        assert status_of(get(proxy, apikey="bob-key-00000000")) == "MISS"
        assert status_of(get(proxy, apikey="alice-key-000000")) == "HIT"
        assert get(proxy).status == 401  # key-auth runs first: no consumer, no answer
        assert origin.count() == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_successful_unsafe_request_invalidates_its_url(method: str) -> None:
    with cached({"/items": fixed(**FRESH)}) as (_origin, proxy):
        get(proxy, "/items?page=1")
        get(proxy, "/items")
        assert status_of(get(proxy, "/items", method)) == "BYPASS"
        assert status_of(get(proxy, "/items?page=1")) == "MISS"
        assert status_of(get(proxy, "/items")) == "MISS"


def test_an_unsafe_request_that_fails_invalidates_nothing() -> None:
    scripts = {"/items": fixed(**FRESH), "/broken": fixed(500)}
    with cached(scripts) as (origin, proxy):
        get(proxy, "/items")

        def refuse(request: Request) -> Reply:
            if request.method == "POST":
                return 400, [], b"no"
            return 200, [("Cache-Control", "max-age=60")], b"hello"

        origin.scripts["/items"] = refuse
        get(proxy, "/items", "POST")
        assert status_of(get(proxy, "/items")) == "HIT"


def test_location_and_content_location_on_the_same_host_are_invalidated() -> None:
    def created(request: Request) -> Reply:
        if request.method == "POST":
            return 201, [("Location", "/items/7"), ("Content-Location", "http://other/x")], b""
        return 200, [("Cache-Control", "max-age=60")], b"item"

    with cached({"/items": created, "/items/7": created, "/x": created}) as (_origin, proxy):
        get(proxy, "/items/7")
        get(proxy, "/x", host="other")
        get(proxy, "/items", "POST")
        assert status_of(get(proxy, "/items/7")) == "MISS"
        assert status_of(get(proxy, "/x", host="other")) == "HIT"  # another host: kept
