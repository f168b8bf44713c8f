"""proxy-cache: conditional revalidation (RFC 9111 §4.3), stale-if-error, and the
client's own conditional requests."""

from __future__ import annotations

import pytest

from tests.plugins.proxy_cache.support import Reply, Script, cached, fixed, get, status_of
from tests.support.proxy import RunningProxy, make_config
from tests.support.upstream import Conn, Request, Upstream

pytestmark = pytest.mark.timeout(30)

ETAG = '"v1"'
MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def validating(**extra: str) -> tuple[list[Request], dict[str, Script]]:
    """A script answering 304 to a matching If-None-Match, else the full response
    (stale at once: max-age=0), with ``extra`` headers on both."""
    seen: list[Request] = []

    def script(request: Request) -> Reply:
        seen.append(request)
        headers = [("ETag", ETAG), ("Cache-Control", "max-age=0"), *extra.items()]
        if request.header("If-None-Match") == ETAG:
            return 304, headers, b""
        return 200, [*headers, ("Content-Type", "text/plain")], b"full body"

    return seen, {"/": script}


def test_a_stale_entry_is_revalidated_and_the_client_gets_the_stored_body() -> None:
    seen, scripts = validating()
    with cached(scripts) as (origin, proxy):
        assert status_of(get(proxy)) == "MISS"
        response = get(proxy)
        assert (response.status, status_of(response)) == (200, "REVALIDATED")
        assert response.body == b"full body"
        assert response.header("Content-Type") == "text/plain"
        assert seen[1].header("If-None-Match") == ETAG
        assert origin.count() == 2


def test_a_304_refreshes_the_stored_headers_and_freshness() -> None:
    replies = iter(
        [
            (200, [("ETag", ETAG), ("Cache-Control", "max-age=0"), ("X-V", "1")], b"body"),
            (304, [("ETag", ETAG), ("Cache-Control", "max-age=60"), ("X-V", "2")], b""),
        ]
    )
    with cached({"/": lambda request: next(replies)}) as (origin, proxy):
        get(proxy)
        revalidated = get(proxy)
        assert (status_of(revalidated), revalidated.header("X-V")) == ("REVALIDATED", "2")
        hit = get(proxy)  # fresh for 60 s now: the node is not asked
        assert (status_of(hit), hit.header("X-V"), hit.body) == ("HIT", "2", b"body")
        assert hit.header("Cache-Control") == "max-age=60"
        assert origin.count() == 2


def test_last_modified_is_revalidated_with_if_modified_since() -> None:
    seen: list[Request] = []

    def script(request: Request) -> Reply:
        seen.append(request)
        headers = [("Last-Modified", MODIFIED), ("Cache-Control", "no-cache")]
        if request.header("If-Modified-Since") == MODIFIED:
            return 304, headers, b""
        return 200, headers, b"dated"

    with cached({"/": script}) as (_origin, proxy):
        get(proxy)
        response = get(proxy)
        assert (status_of(response), response.body) == ("REVALIDATED", b"dated")
        assert seen[1].header("If-None-Match") is None


def test_a_changed_resource_replaces_the_entry() -> None:
    replies = iter(
        [
            (200, [("ETag", '"a"'), ("Cache-Control", "max-age=0")], b"old"),
            (200, [("ETag", '"b"'), ("Cache-Control", "max-age=60")], b"new"),
        ]
    )
    with cached({"/": lambda request: next(replies)}) as (origin, proxy):
        get(proxy)
        changed = get(proxy)
        assert (status_of(changed), changed.body) == ("EXPIRED", b"new")
        assert get(proxy).body == b"new"
        assert origin.count() == 2


def test_clients_own_conditional_request_gets_304_when_it_matches() -> None:
    with cached({"/": fixed(cache_control="max-age=60", etag=ETAG)}) as (origin, proxy):
        get(proxy)
        response = get(proxy, if_none_match=ETAG)
        assert (response.status, status_of(response), response.body) == (304, "HIT", b"")
        assert response.header("ETag") == ETAG
        assert get(proxy, if_none_match='"other"').status == 200
        assert get(proxy, if_none_match=f'W/"x", W/{ETAG}').status == 304
        assert origin.count() == 1
    _seen, scripts = validating()
    with cached(scripts) as (origin, proxy):
        get(proxy)
        response = get(proxy, if_none_match=ETAG)
        assert (response.status, status_of(response)) == (304, "REVALIDATED")
    with cached({"/": fixed(cache_control="max-age=60", last_modified=MODIFIED)}) as (_, proxy):
        get(proxy)
        assert get(proxy, if_modified_since=MODIFIED).status == 304
        assert get(proxy, if_modified_since="Sun, 31 Dec 2023 00:00:00 GMT").status == 200


def failing_after_first(headers: list[tuple[str, str]], status: int = 503) -> dict[str, Script]:
    replies = iter([(200, headers, b"good")])

    def script(request: Request) -> Reply:
        return next(replies, (status, [], b"node error"))

    return {"/": script}


@pytest.mark.parametrize(
    "cache_control, settings, expected",
    [
        ("max-age=0, stale-if-error=60", {}, (200, "STALE")),
        ("max-age=0", {"stale_if_error": 60}, (200, "STALE")),
        ("max-age=0", {}, (503, "EXPIRED")),
        ("max-age=0, must-revalidate", {"stale_if_error": 60}, (503, "EXPIRED")),
        ("max-age=0, proxy-revalidate", {"stale_if_error": 60}, (503, "EXPIRED")),
        ("s-maxage=0", {"stale_if_error": 60}, (503, "EXPIRED")),
        ("max-age=0, stale-if-error=0", {"stale_if_error": 60}, (503, "EXPIRED")),
    ],
)
def test_stale_if_error_serves_the_entry_when_the_node_fails(
    cache_control: str, settings: dict[str, object], expected: tuple[int, str]
) -> None:
    headers = [("Cache-Control", cache_control), ("ETag", ETAG)]
    with cached(failing_after_first(headers), **settings) as (_origin, proxy):
        get(proxy)
        response = get(proxy)
        assert (response.status, status_of(response)) == expected
        if expected[0] == 200:
            assert response.body == b"good"


def test_stale_if_error_covers_a_node_that_resets_the_connection() -> None:
    answered: list[bool] = []

    def handler(conn: Conn) -> None:
        if conn.read_request() is None:
            return
        if answered:
            conn.reset()  # every request after the first: no answer at all
            return
        answered.append(True)
        headers = [("Cache-Control", "max-age=0, stale-if-error=60"), ("ETag", ETAG)]
        conn.respond(200, b"hello", headers)
        conn.close()

    with Upstream(handler) as node:
        routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": {"proxy-cache": {}}}]
        with RunningProxy(make_config({"b": node.url}, routes)) as proxy:
            get(proxy)
            response = get(proxy)
            assert (response.status, status_of(response), response.body) == (200, "STALE", b"hello")
