"""Conformance of the field keywords the specification's example does not show, on a
resource of their own: integer, boolean and object fields, minimum/maximum, pattern,
formats beyond email, an integer default and a configured limit; merge and JSON patches
reaching into an object field (RFC 7396 and RFC 6902 examples).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.resources.test_conformance_crud import (
    JSON_PATCH,
    MERGE_PATCH,
    SPEC_RESOURCES,
    assert_problem,
    create,
    pointers,
    quiver_serving,
    send,
)
from tests.resources.test_conformance_http import VARIANTS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with quiver_serving(tmp_path_factory.mktemp("fields"), SPEC_RESOURCES + VARIANTS) as client:
        yield client


def test_a_configured_limit_sets_the_default_and_the_maximum(api: httpx.Client) -> None:
    for n in range(6):
        create(api, "/tickets", {"subject": f"t{n}"})
    assert len(send(api, "GET", "/tickets").json()) == 2
    assert len(send(api, "GET", "/tickets?limit=4").json()) == 4
    assert_problem(send(api, "GET", "/tickets?limit=5"), 400)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"seats": 0}, "/seats"),  # minimum
        ({"seats": 6}, "/seats"),  # maximum
        ({"seats": 1.5}, "/seats"),  # integer
        ({"code": "abc"}, "/code"),  # pattern
        ({"code": "ABCD"}, "/code"),  # pattern anchored
        ({"meta": [1]}, "/meta"),  # object
    ],
)
def test_keywords_of_the_variant_fields_are_checked(
    api: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    problem = assert_problem(send(api, "POST", "/tickets", body), 422)
    assert pointers(problem) == {pointer}


def test_an_integral_number_is_an_integer(api: httpx.Client) -> None:
    # JSON Schema 2020-12 validation §6.1.1: 2.0 is an integer
    raw = b'{"seats": 2.0}'
    response = send(api, "POST", "/tickets", raw=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["seats"] == 2


def test_an_integer_default_is_applied(api: httpx.Client) -> None:
    ticket = create(api, "/tickets", {"subject": "defaulted"})
    assert ticket["priority"] == 2
    found = send(api, "GET", "/tickets?priority[in]=2,3&subject=defaulted").json()
    assert found == [ticket]


@pytest.mark.parametrize(
    ("member", "bad", "good"),
    [
        ("due", "tomorrow", "2026-05-01T10:00:00Z"),
        ("due", "2026-13-01T10:00:00Z", "2026-05-01T10:00:00.123+02:00"),
        ("day", "2026-02-30", "2026-02-28"),
        ("site", "not a uri", "https://example.com/a?b=c"),
        ("ref", "1234", "0f8fad5b-d9cb-469f-a165-70867728950e"),
        ("priority", 4, 3),
    ],
)
def test_formats_and_enums_of_other_types_are_checked(
    api: httpx.Client, member: str, bad: Any, good: Any
) -> None:
    problem = assert_problem(send(api, "POST", "/tickets", {member: bad}), 422)
    assert pointers(problem) == {f"/{member}"}
    assert create(api, "/tickets", {member: good})[member] == good


@pytest.mark.parametrize("votes", [2**63 - 1, 2**63, -(2**63) - 1, 10**30])
def test_an_integer_past_64_bits_is_kept_or_refused_never_a_500(
    api: httpx.Client, votes: int
) -> None:
    # JSON Schema integers have no size; RFC 8259 §6 lets an implementation limit them:
    # exact round trip, or a 4xx refusal pointing at the field
    response = send(api, "POST", "/tickets", {"votes": votes})
    if response.status_code == 201:
        url = f"/tickets/{response.json()['id']}"
        assert send(api, "GET", url).json()["votes"] == votes
    else:
        problem = assert_problem(response, response.status_code)
        assert response.status_code in (400, 422)
        assert pointers(problem) == {"/votes"}


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999"])
def test_an_integer_filter_past_64_bits_is_answered(api: httpx.Client, value: str) -> None:
    for query in (f"votes={value}", f"votes[lt]={value}", f"votes[in]=1,{value}", "votes=1.5"):
        response = send(api, "GET", f"/tickets?{query}")
        if response.status_code >= 400:
            assert_problem(response, 400)
        else:
            assert isinstance(response.json(), list)


def test_booleans_round_trip_and_filter(api: httpx.Client) -> None:
    yes = create(api, "/tickets", {"subject": "bool-yes", "done": True})
    no = create(api, "/tickets", {"subject": "bool-no", "done": False})
    assert (yes["done"], no["done"]) == (True, False)
    assert send(api, "GET", f"/tickets/{yes['id']}").json()["done"] is True
    found = send(api, "GET", "/tickets?done=true&subject[like]=bool-%25").json()
    assert found == [yes]
    found = send(api, "GET", "/tickets?done=false&subject[like]=bool-%25").json()
    assert found == [no]
    found = send(api, "GET", "/tickets?done[ne]=true&subject[like]=bool-%25").json()
    assert found == [no]
    assert_problem(send(api, "GET", "/tickets?done=maybe"), 400)


def test_merge_patch_merges_objects_recursively(api: httpx.Client) -> None:
    # RFC 7396 §1's example, on an object field
    ticket = create(api, "/tickets", {"meta": {"a": "b", "c": {"d": "e", "f": "g"}}})
    url = f"/tickets/{ticket['id']}"
    patch = {"meta": {"a": "z", "c": {"f": None}}}
    assert send(api, "PATCH", url, patch, content_type=MERGE_PATCH).status_code in (200, 204)
    assert send(api, "GET", url).json()["meta"] == {"a": "z", "c": {"d": "e"}}


@pytest.mark.parametrize(
    ("original", "patch", "result"),
    [
        # RFC 7396 Appendix A, on an object field; a null result removes the field
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"a": "foo"}, None, None),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_examples_of_the_rfc(
    api: httpx.Client, original: dict[str, Any], patch: Any, result: Any
) -> None:
    ticket = create(api, "/tickets", {"subject": "merge", "meta": original})
    assert ticket["meta"] == original
    url = f"/tickets/{ticket['id']}"
    response = send(
        api,
        "PATCH",
        url,
        raw=json.dumps({"meta": patch}).encode(),
        headers={"Content-Type": MERGE_PATCH},
    )
    assert response.status_code in (200, 204), response.text
    assert send(api, "GET", url).json().get("meta") == result


def test_a_merge_patch_that_makes_a_field_the_wrong_type_is_a_422(api: httpx.Client) -> None:
    # RFC 7396 Appendix A: {"a":"foo"} patched with "bar" gives "bar", not an object
    ticket = create(api, "/tickets", {"meta": {"a": "foo"}})
    url = f"/tickets/{ticket['id']}"
    response = send(api, "PATCH", url, {"meta": "bar"}, content_type=MERGE_PATCH)
    assert pointers(assert_problem(response, 422)) == {"/meta"}
    assert send(api, "GET", url).json() == ticket


def test_json_patch_reaches_into_an_object_field(api: httpx.Client) -> None:
    # RFC 6902 A.10 (adding a nested member object) and A.14 (~ escapes)
    ticket = create(api, "/tickets", {"meta": {"foo": "bar", "a/b": 1, "m~n": 2}})
    url = f"/tickets/{ticket['id']}"
    operations = [
        {"op": "add", "path": "/meta/child", "value": {"grandchild": {}}},
        {"op": "test", "path": "/meta/a~1b", "value": 1},
        {"op": "test", "path": "/meta/m~0n", "value": 2},
        {"op": "remove", "path": "/meta/foo"},
    ]
    response = send(api, "PATCH", url, operations, content_type=JSON_PATCH)
    assert response.status_code in (200, 204), response.text
    meta = send(api, "GET", url).json()["meta"]
    assert meta == {"a/b": 1, "m~n": 2, "child": {"grandchild": {}}}
