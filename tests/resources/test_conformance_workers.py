"""Conformance under concurrency, with the resources served by two worker processes:
a lost update is refused however the writers interleave, a unique value is taken once,
and one representation has one strong entity-tag whichever worker answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.resources.test_conformance_crud import (
    MERGE_PATCH,
    SPEC_RESOURCES,
    assert_problem,
    create,
    quiver_serving,
    send,
    unique,
)

pytestmark = pytest.mark.timeout(120)

WRITERS = 12


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    resources = "workers: 2\n" + SPEC_RESOURCES
    with quiver_serving(tmp_path_factory.mktemp("workers"), resources) as client:
        yield client


def at_once(client: httpx.Client, request: Callable[[httpx.Client], httpx.Response]) -> list[int]:
    """``request`` sent by WRITERS clients together, each on a connection of its own
    (so that both workers take some); their statuses."""
    barrier = threading.Barrier(WRITERS)
    responses: list[httpx.Response] = []

    def run() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30.0) as own:
            barrier.wait(10)
            responses.append(request(own))

    threads = [threading.Thread(target=run) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(responses) == WRITERS
    for response in responses:
        if response.status_code >= 400:
            assert_problem(response, response.status_code)
    return [response.status_code for response in responses]


def test_of_writers_holding_one_tag_exactly_one_wins(api: httpx.Client) -> None:
    item = create(api, "/items", {"name": unique(), "price": 1})
    url = f"/items/{item['id']}"
    tag = send(api, "GET", url).headers["etag"]
    statuses = at_once(
        api,
        lambda own: send(
            own, "PATCH", url, {"price": 2}, content_type=MERGE_PATCH, headers={"If-Match": tag}
        ),
    )
    assert len([s for s in statuses if s in (200, 204)]) == 1, statuses
    assert statuses.count(412) == WRITERS - 1, statuses


def test_a_unique_value_is_taken_once_under_concurrent_creates(api: httpx.Client) -> None:
    name = unique()
    body: dict[str, Any] = {"name": name, "price": 1}
    statuses = at_once(api, lambda own: send(own, "POST", "/items", body))
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == WRITERS - 1, statuses
    assert len(send(api, "GET", f"/items?name={name}").json()) == 1


def test_one_representation_has_one_tag_whichever_worker_answers(api: httpx.Client) -> None:
    # RFC 9110 §8.8.3.2: a strong tag names one representation's exact bytes
    item = create(api, "/items", {"name": unique(), "price": 1})
    answers = set()
    for _ in range(WRITERS):
        with httpx.Client(base_url=str(api.base_url), timeout=15.0) as own:
            response = send(own, "GET", f"/items/{item['id']}")
            answers.add((response.headers["etag"], response.content))
    assert len(answers) == 1, answers


def test_a_content_coding_is_a_representation_of_its_own(api: httpx.Client) -> None:
    # RFC 9110 §8.8.3: a strong tag changes with the content coding of the bytes sent
    bulk = [{"name": unique(), "price": n} for n in range(60)]
    assert send(api, "POST", "/items", bulk).status_code == 201
    identity = api.get("/items?limit=60", headers={"Accept-Encoding": "identity"})
    gzipped = api.get("/items?limit=60", headers={"Accept-Encoding": "gzip"})
    if gzipped.headers.get("content-encoding") != identity.headers.get("content-encoding"):
        assert gzipped.headers["etag"] != identity.headers["etag"]
    assert gzipped.json() == identity.json()
