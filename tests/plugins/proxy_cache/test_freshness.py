"""proxy-cache: what is stored and for how long (RFC 9111 §3, §4.2, §5.2), through
the running proxy; staleness comes from the node's Age and Date, never from sleeping."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from tests.plugins.proxy_cache.support import Origin, Reply, cached, fixed, get, status_of
from tests.support.proxy import RunningProxy, make_config
from tests.support.upstream import Request

pytestmark = pytest.mark.timeout(30)


def statuses_of(response_headers: dict[str, str], times: int = 2, **request: str) -> list[str]:
    """X-Cache-Status of ``times`` GETs of a response with ``response_headers``, and
    how many reached the node (last item)."""
    with cached({"/": fixed(**response_headers)}) as (origin, proxy):
        seen = [str(status_of(get(proxy, "/", **request))) for _ in range(times)]
        return [*seen, str(origin.count())]


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"cache_control": "max-age=60"}, ["MISS", "HIT", "1"]),
        ({"cache_control": "s-maxage=60"}, ["MISS", "HIT", "1"]),
        ({"cache_control": "public, max-age=60"}, ["MISS", "HIT", "1"]),
        # s-maxage wins over max-age for a shared cache
        ({"cache_control": "max-age=60, s-maxage=0", "etag": '"a"'}, ["MISS", "EXPIRED", "2"]),
        # (stale at once and nothing to revalidate it with: not kept at all)
        ({"cache_control": "max-age=60, s-maxage=0"}, ["MISS", "MISS", "2"]),
        ({"cache_control": "max-age=0, s-maxage=60"}, ["MISS", "HIT", "1"]),
        ({"cache_control": "no-store, max-age=60"}, ["MISS", "MISS", "2"]),
        ({"cache_control": "private, max-age=60"}, ["MISS", "MISS", "2"]),
        ({"cache_control": 'private="x", max-age=60'}, ["MISS", "MISS", "2"]),
        # no-cache: stored, but every use goes to the node first
        ({"cache_control": "no-cache, max-age=60"}, ["MISS", "EXPIRED", "2"]),
        # nothing says how long: not stored (heuristic freshness is off)
        ({}, ["MISS", "MISS", "2"]),
        ({"cache_control": "max-age=60", "set_cookie": "a=1"}, ["MISS", "MISS", "2"]),
        ({"cache_control": "max-age=60", "vary": "*"}, ["MISS", "MISS", "2"]),
        # Age from an earlier cache counts: 60 s old with max-age=30 is stale at once
        ({"cache_control": "max-age=30", "age": "60", "etag": '"a"'}, ["MISS", "EXPIRED", "2"]),
        ({"cache_control": "max-age=90", "age": "60"}, ["MISS", "HIT", "1"]),
    ],
)
def test_response_directives(headers: dict[str, str], expected: list[str]) -> None:
    assert statuses_of(headers) == expected


def test_expires_gives_freshness_when_there_is_no_max_age() -> None:
    now = formatdate(usegmt=True)
    later = formatdate(time.time() + 120, usegmt=True)
    assert statuses_of({"date": now, "expires": later}) == ["MISS", "HIT", "1"]
    # max-age wins over Expires
    assert statuses_of({"date": now, "expires": later, "cache_control": "max-age=0"}) == [
        "MISS",
        "MISS",
        "2",
    ]


def test_an_invalid_or_past_expires_is_already_stale() -> None:
    etag = {"etag": '"v1"'}  # (stored for revalidation, never answered as is)
    assert statuses_of({"expires": "0", **etag}) == ["MISS", "EXPIRED", "2"]
    assert statuses_of({"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}) == ["MISS", "MISS", "2"]


def test_heuristic_freshness_only_when_turned_on() -> None:
    modified = formatdate(time.time() - 10 * 86400, usegmt=True)
    script = {"/": fixed(last_modified=modified)}
    with cached(script) as (origin, proxy):
        assert [status_of(get(proxy)) for _ in range(2)] == ["MISS", "EXPIRED"]
    with cached(script, heuristic=0.1, heuristic_max="1h") as (origin, proxy):
        assert [status_of(get(proxy)) for _ in range(2)] == ["MISS", "HIT"]
        assert origin.count() == 1


def test_statuses_outside_the_list_or_without_explicit_freshness_are_not_stored() -> None:
    scripts = {
        "/gone": fixed(410, cache_control="max-age=60"),
        "/redirect": fixed(302, location="/x", cache_control="max-age=60"),
        "/error": fixed(500, cache_control="max-age=60"),
        "/created": fixed(201, cache_control="max-age=60"),
    }
    with cached(scripts, statuses=[200, 302, 410, 500]) as (_, proxy):
        for path in scripts:
            get(proxy, path)
            assert status_of(get(proxy, path)) == ("MISS" if path == "/created" else "HIT")
    with cached(
        {"/heuristic": fixed(410, last_modified="Mon, 01 Jan 2024 00:00:00 GMT")},
        heuristic=0.1,
        statuses=[302, 410],
    ) as (_origin, proxy):
        get(proxy, "/heuristic")
        assert status_of(get(proxy, "/heuristic")) == "HIT"


def test_request_no_store_neither_serves_nor_stores() -> None:
    with cached({"/": fixed(cache_control="max-age=60")}) as (origin, proxy):
        assert status_of(get(proxy, cache_control="no-store")) == "BYPASS"
        assert status_of(get(proxy)) == "MISS"  # the first was not stored
        assert status_of(get(proxy, cache_control="no-store")) == "BYPASS"
        assert origin.count() == 3
        assert status_of(get(proxy)) == "HIT"


def test_request_no_cache_and_max_age_go_to_the_node() -> None:
    with cached({"/": fixed(cache_control="max-age=60", age="10")}) as (origin, proxy):
        get(proxy)
        assert status_of(get(proxy, cache_control="no-cache")) == "EXPIRED"
        assert status_of(get(proxy, cache_control="max-age=5")) == "EXPIRED"
        assert status_of(get(proxy, cache_control="max-age=600")) == "HIT"
        assert status_of(get(proxy, cache_control="min-fresh=55")) == "EXPIRED"
        assert origin.count() == 4


def test_only_if_cached_answers_504_problem_when_nothing_is_stored() -> None:
    with cached({"/": fixed(cache_control="max-age=60")}) as (origin, proxy):
        response = get(proxy, cache_control="only-if-cached")
        assert response.status == 504
        assert response.header("Content-Type") == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:quiver:problem:not-cached"
        assert problem["request_id"] == response.header("X-Request-ID")
        assert origin.count() == 0
        get(proxy)
        assert get(proxy, cache_control="only-if-cached").body == b"hello"
        assert origin.count() == 1


def test_head_is_answered_from_the_get_entry_and_not_stored_itself() -> None:
    with cached({"/": fixed(cache_control="max-age=60")}) as (origin, proxy):
        head = get(proxy, method="HEAD")
        assert status_of(head) == "MISS"
        assert status_of(get(proxy)) == "MISS"  # the HEAD stored nothing
        head = get(proxy, method="HEAD")
        assert (head.status, status_of(head), head.body) == (200, "HIT", b"")
        assert head.header("Content-Length") == "5"
        assert origin.count() == 2


def test_age_counts_the_node_age_and_the_time_resident() -> None:
    with cached({"/": fixed(cache_control="max-age=600", age="100")}) as (_origin, proxy):
        assert get(proxy).header("Age") == "100"
        hit = get(proxy)
        assert status_of(hit) == "HIT"
        assert 100 <= int(hit.header("Age") or 0) <= 102


def test_authorization_requests_are_stored_only_when_the_response_allows() -> None:
    def statuses(cache_control: str) -> list[str | None]:
        with cached({"/": fixed(cache_control=cache_control)}) as (_origin, proxy):
            return [status_of(get(proxy, authorization="Bearer x")) for _ in range(2)]

    assert statuses("max-age=60") == ["MISS", "MISS"]
    assert statuses("public, max-age=60") == ["MISS", "HIT"]
    assert statuses("s-maxage=60") == ["MISS", "HIT"]
    assert statuses("must-revalidate, max-age=60") == ["MISS", "HIT"]


def test_vary_stores_one_variant_per_normalised_value() -> None:
    def by_language(request: Request) -> Reply:
        language = request.header("Accept-Language") or "none"
        headers = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")]
        return 200, headers, language.encode()

    with cached({"/": by_language}) as (origin, proxy):
        assert get(proxy, accept_language="en, fr").body == b"en, fr"
        assert get(proxy, accept_language="de").body == b"de"
        hit = get(proxy, accept_language="EN ,fr")  # the same list, normalised
        assert (status_of(hit), hit.body) == ("HIT", b"en, fr")
        assert status_of(get(proxy, accept_language="de")) == "HIT"
        assert get(proxy).body == b"none"  # absent is a variant of its own
        assert status_of(get(proxy)) == "HIT"
        assert origin.count() == 3


def test_every_response_of_the_route_carries_the_status_header() -> None:
    with cached({"/": fixed(cache_control="max-age=60")}) as (_origin, proxy):
        assert status_of(get(proxy, method="POST")) == "BYPASS"
        assert status_of(get(proxy, "/nothing")) == "MISS"  # the node's 404
    with cached({"/": fixed(cache_control="max-age=60")}, status_header="X-Cache") as (_, proxy):
        get(proxy)
        response = get(proxy)
        assert response.header("X-Cache") == "HIT"
        assert status_of(response) is None


def test_a_stored_redirect_is_mapped_back_like_the_node_response() -> None:
    origin = Origin({})
    origin.scripts["/login"] = fixed(
        301, location=f"{origin.url}/welcome", cache_control="max-age=60"
    )
    routes = [
        {
            "name": "api",
            "paths": ["/api"],
            "strip_path": True,
            "target": "b",
            "plugins": {"proxy-cache": {}},
        }
    ]
    try:
        with RunningProxy(make_config({"b": origin.url}, routes)) as proxy:
            first, second = get(proxy, "/api/login"), get(proxy, "/api/login")
    finally:
        origin.close()
    assert (first.status, status_of(first)) == (301, "MISS")
    assert (second.status, status_of(second)) == (301, "HIT")
    assert first.header("Location") == second.header("Location") == "/api/welcome"


def test_default_ttl_keeps_responses_without_freshness_of_their_own() -> None:
    with cached({"/": fixed(), "/page": fixed(404)}, default_ttl=60) as (origin, proxy):
        assert [status_of(get(proxy)) for _ in range(2)] == ["MISS", "HIT"]
        assert [status_of(get(proxy, "/page")) for _ in range(2)] == ["MISS", "HIT"]
        assert status_of(get(proxy, "/nothing")) == "MISS"  # (no script: 404 too)
        assert origin.count() == 3


def test_max_stale_accepts_a_stale_entry_unless_it_must_be_revalidated() -> None:
    stale = {"cache_control": "max-age=10", "age": "30", "etag": '"a"'}
    with cached({"/": fixed(**stale)}) as (_, proxy):
        get(proxy)
        assert status_of(get(proxy, cache_control="max-stale=60")) == "HIT"
        assert status_of(get(proxy, cache_control="max-stale=5")) == "EXPIRED"
        assert status_of(get(proxy, cache_control="max-stale")) == "HIT"
    strict = {**stale, "cache_control": "max-age=10, must-revalidate"}
    with cached({"/": fixed(**strict)}) as (_origin, proxy):
        get(proxy)
        assert status_of(get(proxy, cache_control="max-stale")) == "EXPIRED"
