"""Conformance of resources as gateway routes: the specification says every gateway
plugin applies to them ("resources are routes"), so a global key-auth and rate limit
guard the resources as they guard any other route.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.resources.test_conformance_crud import (
    MERGE_PATCH,
    SPEC_RESOURCES,
    assert_problem,
    quiver_serving,
    send,
)

pytestmark = pytest.mark.timeout(120)

GUARDED = (
    SPEC_RESOURCES
    + """\
plugins:
  key-auth: {}
  rate-limit: {limit: 25, window: 1h, by: [consumer]}
consumers:
  - name: alice
    credentials: {key-auth: [{key: alice-key-0123456789}]}
  - name: bob
    credentials: {key-auth: [{key: bob-key-0123456789}]}
"""
)
ALICE = {"apikey": "alice-key-0123456789"}
BOB = {"apikey": "bob-key-0123456789"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with quiver_serving(tmp_path_factory.mktemp("plugins"), GUARDED) as client:
        yield client


def test_a_request_without_a_key_is_refused_before_the_resource(api: httpx.Client) -> None:
    response = send(api, "POST", "/items", {"name": "no-key", "price": 1})
    assert_problem(response, 401)
    assert response.headers.get("www-authenticate")
    listed = send(api, "GET", "/items?name=no-key", headers=ALICE)
    assert listed.status_code == 200
    assert listed.json() == []


def test_a_consumer_with_a_key_reaches_every_operation(api: httpx.Client) -> None:
    created = send(api, "POST", "/items", {"name": "keyed", "price": 1}, headers=ALICE)
    assert created.status_code == 201
    url = f"/items/{created.json()['id']}"
    patched = send(api, "PATCH", url, {"price": 2}, content_type=MERGE_PATCH, headers=ALICE)
    assert patched.status_code in (200, 204)
    assert send(api, "DELETE", url, headers=ALICE).status_code == 204


def test_the_key_in_the_query_is_the_gateway_s_not_an_unknown_filter(api: httpx.Client) -> None:
    # key-auth reads "apikey" from the query too; it belongs to the gateway, so the
    # resource's refusal of unknown parameters does not apply to it
    response = send(api, "GET", "/items?apikey=alice-key-0123456789&limit=1")
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


def test_the_rate_limit_counts_resource_requests(api: httpx.Client) -> None:
    statuses = [send(api, "GET", "/items?limit=1", headers=BOB).status_code for _ in range(30)]
    assert statuses[:25] == [200] * 25
    refused = send(api, "GET", "/items?limit=1", headers=BOB)
    assert_problem(refused, 429)
    assert refused.headers.get("retry-after")
    assert send(api, "GET", "/items?limit=1", headers=ALICE).status_code == 200
