"""The optional RFC 9111 cache, against a real server that counts what reaches it."""

from __future__ import annotations

import email.utils

import pytest

from quiver.client import Client, ResponseCache
from tests.client.scripted import Answer, Waits, json_answer, scripted
from tests.support.upstream import Request

pytestmark = pytest.mark.timeout(20)


def cached_client(url: str, waits: Waits) -> Client:
    return Client(url, cache=ResponseCache(), wall_clock=waits.clock)


def versioned(request: Request) -> Answer:
    """An ETag'd resource fresh for 10 s; answers 304 to a matching If-None-Match."""
    if request.header("If-None-Match") == '"v1"':
        return 304, [("ETag", '"v1"'), ("Cache-Control", "max-age=20")], b""
    return json_answer({"v": 1}, headers=[("ETag", '"v1"'), ("Cache-Control", "max-age=10")])


def test_a_fresh_response_is_answered_from_the_cache() -> None:
    waits = Waits()
    with scripted(versioned) as server, cached_client(server.url, waits) as client:
        first, second = client.get("/doc"), client.get("/doc")
        other = client.get("/doc?page=2")
    assert (first.from_cache, second.from_cache, other.from_cache) == (False, True, False)
    assert second.json() == {"v": 1}
    assert [r.path for r in server.requests] == ["/doc", "/doc?page=2"]


def test_a_stale_response_is_revalidated_and_freshened_by_a_304() -> None:
    waits = Waits()
    with scripted(versioned) as server, cached_client(server.url, waits) as client:
        client.get("/doc")
        waits.now += 11
        revalidated = client.get("/doc")
        waits.now += 15  # fresh again for the 20 s the 304 gave
        again = client.get("/doc")
    assert (revalidated.status, revalidated.from_cache, revalidated.json()) == (200, True, {"v": 1})
    assert revalidated.headers["Cache-Control"] == "max-age=20"
    assert again.from_cache
    assert [r.header("If-None-Match") for r in server.requests] == [None, '"v1"']


def test_last_modified_is_revalidated_with_if_modified_since() -> None:
    waits = Waits()
    modified = email.utils.formatdate(0, usegmt=True)

    def respond(request: Request) -> Answer:
        if request.header("If-Modified-Since") == modified:
            return 304, [], b""
        return json_answer([1], headers=[("Last-Modified", modified)])

    with scripted(respond) as server, cached_client(server.url, waits) as client:
        assert client.get("/list").json() == [1]
        assert client.get("/list").json() == [1]  # no freshness: revalidated every time
    assert [r.header("If-Modified-Since") for r in server.requests] == [None, modified]


@pytest.mark.parametrize(
    ("response_headers", "request_headers"),
    [
        ([("Cache-Control", "no-store, max-age=60")], {}),
        ([("Cache-Control", "max-age=60"), ("Vary", "*")], {}),
        ([("Cache-Control", "max-age=60")], {"Cache-Control": "no-store"}),
        ([], {}),  # no freshness and no validator
    ],
)
def test_what_may_not_be_stored_reaches_the_server_every_time(
    response_headers: list[tuple[str, str]], request_headers: dict[str, str]
) -> None:
    waits = Waits()
    with (
        scripted(lambda request: json_answer({}, headers=response_headers)) as server,
        cached_client(server.url, waits) as client,
    ):
        for _ in range(2):
            assert not client.get("/x", headers=request_headers).from_cache
    assert len(server.requests) == 2


def test_a_stored_answer_serves_only_requests_with_the_fields_vary_names() -> None:
    waits = Waits()

    def respond(request: Request) -> Answer:
        language = request.header("Accept-Language") or "en"
        fields = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")]
        return json_answer({"lang": language}, headers=fields)

    with scripted(respond) as server, cached_client(server.url, waits) as client:
        assert client.get("/g", headers={"Accept-Language": "fr"}).json() == {"lang": "fr"}
        assert client.get("/g", headers={"Accept-Language": "fr"}).from_cache
        assert not client.get("/g", headers={"Accept-Language": "de"}).from_cache
    assert len(server.requests) == 2


def test_a_successful_unsafe_request_invalidates_the_stored_response() -> None:
    waits = Waits()
    fresh = [("Cache-Control", "max-age=60")]
    with (
        scripted(lambda request: json_answer({}, headers=fresh)) as server,
        cached_client(server.url, waits) as client,
    ):
        client.get("/item")
        client.put("/item", json={"name": "new"})
        assert not client.get("/item").from_cache
    assert [r.method for r in server.requests] == ["GET", "PUT", "GET"]


def test_a_request_asking_for_no_cache_revalidates_a_fresh_entry() -> None:
    waits = Waits()
    with scripted(versioned) as server, cached_client(server.url, waits) as client:
        client.get("/doc")
        client.get("/doc", headers={"Cache-Control": "no-cache"})
    assert [r.header("If-None-Match") for r in server.requests] == [None, '"v1"']
