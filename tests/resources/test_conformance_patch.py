"""Conformance of PATCH on resources: JSON Merge Patch (RFC 7396) and JSON Patch
(RFC 6902), each applied as a whole or not at all, with the RFCs' own examples where they
fit the specification's items.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.resources.test_conformance_crud import (
    JSON_PATCH,
    MERGE_PATCH,
    SPEC_RESOURCES,
    assert_problem,
    fetch,
    new_item,
    pointers,
    quiver_serving,
    send,
    unique,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with quiver_serving(tmp_path_factory.mktemp("patch"), SPEC_RESOURCES) as client:
        yield client


# --- merge patch (RFC 7396) -------------------------------------------------------------


def test_merge_patch_changes_only_the_members_it_names(api: httpx.Client) -> None:
    item = new_item(api, tags=["a"], status="active")
    url = f"/items/{item['id']}"
    response = send(api, "PATCH", url, {"price": 99}, content_type=MERGE_PATCH)
    assert response.status_code in (200, 204)
    current = send(api, "GET", url).json()
    assert current["price"] == 99
    assert (current["name"], current["tags"], current["status"]) == (
        item["name"],
        ["a"],
        "active",
    )


def test_merge_patch_null_removes_a_member(api: httpx.Client) -> None:
    item = new_item(api, tags=["a", "b"])
    url = f"/items/{item['id']}"
    response = send(api, "PATCH", url, {"tags": None}, content_type=MERGE_PATCH)
    assert response.status_code in (200, 204)
    assert send(api, "GET", url).json().get("tags") is None


def test_merge_patch_replaces_an_array_as_a_whole(api: httpx.Client) -> None:
    # RFC 7396 Appendix A: {"a":["b"]} patched with {"a":["c"]} gives {"a":["c"]}
    item = new_item(api, tags=["b"])
    url = f"/items/{item['id']}"
    send(api, "PATCH", url, {"tags": ["c"]}, content_type=MERGE_PATCH)
    assert send(api, "GET", url).json()["tags"] == ["c"]


def test_merge_patch_removing_a_required_member_is_a_422(api: httpx.Client) -> None:
    item = new_item(api)
    url = f"/items/{item['id']}"
    problem = assert_problem(
        send(api, "PATCH", url, {"price": None}, content_type=MERGE_PATCH), 422
    )
    assert pointers(problem) == {"/price"}
    assert send(api, "GET", url).json() == item


def test_merge_patch_that_is_not_an_object_is_refused(api: httpx.Client) -> None:
    # RFC 7396 §2: a non-object patch replaces the whole target, and an item that is an
    # array breaks the item's schema: 422, or 400 for a body that cannot be a patch here
    item = new_item(api)
    url = f"/items/{item['id']}"
    response = send(api, "PATCH", url, ["not", "an", "object"], content_type=MERGE_PATCH)
    assert_problem(response, response.status_code)
    assert response.status_code in (400, 422)
    assert send(api, "GET", url).json() == item


# --- JSON Patch (RFC 6902) --------------------------------------------------------------


def json_patch(
    client: httpx.Client, item: dict[str, Any], operations: list[dict[str, Any]]
) -> httpx.Response:
    return send(client, "PATCH", f"/items/{item['id']}", operations, content_type=JSON_PATCH)


@pytest.mark.parametrize(
    ("before", "operations", "after"),
    [
        # RFC 6902 A.2, adding an array element
        (["bar", "baz"], [{"op": "add", "path": "/tags/1", "value": "qux"}], ["bar", "qux", "baz"]),
        # RFC 6902 A.4, removing an array element
        (["bar", "qux", "baz"], [{"op": "remove", "path": "/tags/1"}], ["bar", "baz"]),
        # RFC 6902 A.7, moving an array element
        (
            ["all", "grass", "cows", "eat"],
            [{"op": "move", "from": "/tags/1", "path": "/tags/3"}],
            ["all", "cows", "eat", "grass"],
        ),
        # RFC 6902 A.16, adding an array value; then "-" appends (§4.1)
        (None, [{"op": "add", "path": "/tags", "value": ["foo", "bar"]}], ["foo", "bar"]),
        (["a"], [{"op": "add", "path": "/tags/-", "value": "b"}], ["a", "b"]),
        # copy (§4.5) and a passing test (A.8) before it
        (
            ["a", "b"],
            [
                {"op": "test", "path": "/tags/0", "value": "a"},
                {"op": "copy", "from": "/tags/0", "path": "/tags/-"},
            ],
            ["a", "b", "a"],
        ),
        # RFC 6902 A.11, ignoring unrecognized elements
        (["a"], [{"op": "add", "path": "/tags/0", "value": "z", "xyz": 123}], ["z", "a"]),
    ],
)
def test_json_patch_examples_of_the_rfc(
    api: httpx.Client,
    before: list[str] | None,
    operations: list[dict[str, Any]],
    after: list[str],
) -> None:
    item = new_item(api) if before is None else new_item(api, tags=before)
    response = json_patch(api, item, operations)
    assert response.status_code in (200, 204), response.text
    current = fetch(api, item)
    assert current["tags"] == after
    if response.status_code == 200:
        assert response.json() == current


def test_json_patch_replace_and_remove_on_members(api: httpx.Client) -> None:
    item = new_item(api, tags=["a"], status="active")
    response = json_patch(
        api,
        item,
        [
            {"op": "replace", "path": "/price", "value": 42},
            {"op": "remove", "path": "/tags"},
            {"op": "replace", "path": "/status", "value": "archived"},
        ],
    )
    assert response.status_code in (200, 204), response.text
    current = fetch(api, item)
    assert (current["price"], current.get("tags"), current["status"]) == (42, None, "archived")


def test_json_patch_move_between_members(api: httpx.Client) -> None:
    # RFC 6902 A.6 moves a value from one member to another
    item = new_item(api, tags=["x", "y"])
    response = json_patch(api, item, [{"op": "move", "from": "/tags/0", "path": "/name"}])
    assert response.status_code in (200, 204), response.text
    current = fetch(api, item)
    assert (current["name"], current["tags"]) == ("x", ["y"])


def test_json_patch_test_compares_numbers_by_value(api: httpx.Client) -> None:
    # RFC 6902 §4.6: numbers are equal when their values are numerically equal
    item = new_item(api, price=10)
    operations = [
        {"op": "test", "path": "/price", "value": 10.0},
        {"op": "replace", "path": "/price", "value": 11},
    ]
    assert json_patch(api, item, operations).status_code in (200, 204)
    assert fetch(api, item)["price"] == 11


def test_json_patch_with_a_failing_test_changes_nothing(api: httpx.Client) -> None:
    # RFC 6902 §5 and A.9: a failed test stops the whole patch; RFC 5789 §2.2 names 409
    # for a patch that cannot apply to the resource's current state
    item = new_item(api, tags=["a"])
    before = send(api, "GET", f"/items/{item['id']}")
    response = json_patch(
        api,
        item,
        [
            {"op": "replace", "path": "/price", "value": 1},
            {"op": "add", "path": "/tags/-", "value": "b"},
            {"op": "test", "path": "/name", "value": "not the name"},
        ],
    )
    assert_problem(response, 409)
    after = send(api, "GET", f"/items/{item['id']}")
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]


def test_json_patch_test_does_not_equate_a_string_and_a_number(api: httpx.Client) -> None:
    # RFC 6902 A.15: comparing "10" with 10 fails the test
    item = new_item(api, tags=["10"])
    response = json_patch(
        api,
        item,
        [
            {"op": "test", "path": "/tags/0", "value": 10},
            {"op": "replace", "path": "/price", "value": 1},
        ],
    )
    assert_problem(response, 409)
    assert fetch(api, item) == item


def test_json_patch_to_a_location_that_is_not_there_changes_nothing(api: httpx.Client) -> None:
    # RFC 6902 A.12 (adding to a nonexistent target) and §4.2 (removing what is not
    # there) are errors; RFC 5789 §2.2 calls such a well-formed but inapplicable patch
    # unprocessable (422), json-server and PostgREST users expect a 4xx and no change
    item = new_item(api, tags=["a"])
    for operation in (
        {"op": "add", "path": "/nope/bar", "value": "x"},
        {"op": "remove", "path": "/tags/5"},
        {"op": "replace", "path": "/tags/7", "value": "x"},
        {"op": "move", "from": "/tags/3", "path": "/tags/0"},
    ):
        response = json_patch(
            api, item, [{"op": "replace", "path": "/price", "value": 1}, operation]
        )
        assert_problem(response, response.status_code)
        assert response.status_code in (409, 422), (operation, response.status_code)
        assert fetch(api, item) == item, operation


@pytest.mark.parametrize(
    "document",
    [
        {"op": "add", "path": "/price", "value": 1},  # not an array (§3)
        [{"op": "frobnicate", "path": "/price", "value": 1}],  # unknown op (§4)
        [{"path": "/price", "value": 1}],  # no op
        [{"op": "add", "value": 1}],  # no path
        [{"op": "add", "path": "/price"}],  # add without value (§4.1)
        [{"op": "move", "path": "/name"}],  # move without from (§4.4)
        [{"op": "replace", "path": "price", "value": 1}],  # not a JSON Pointer (RFC 6901 §3)
    ],
)
def test_a_malformed_json_patch_is_a_400_and_changes_nothing(
    api: httpx.Client, document: Any
) -> None:
    # RFC 5789 §2.2: a malformed patch document is a 400
    item = new_item(api)
    response = send(api, "PATCH", f"/items/{item['id']}", document, content_type=JSON_PATCH)
    assert_problem(response, 400)
    assert fetch(api, item) == item


def test_json_patch_whose_result_is_invalid_is_a_422_with_pointers(api: httpx.Client) -> None:
    item = new_item(api)
    response = json_patch(
        api,
        item,
        [{"op": "remove", "path": "/price"}, {"op": "replace", "path": "/status", "value": "x"}],
    )
    problem = assert_problem(response, 422)
    assert pointers(problem) == {"/price", "/status"}
    assert fetch(api, item) == item


def test_json_patch_test_of_an_absent_member_fails(api: httpx.Client) -> None:
    # RFC 6902 §4.6: the target location MUST exist; an absent member is not a null
    item = new_item(api)
    assert "tags" not in item
    response = json_patch(
        api,
        item,
        [
            {"op": "test", "path": "/tags", "value": None},
            {"op": "replace", "path": "/price", "value": 1},
        ],
    )
    assert_problem(response, response.status_code)
    assert response.status_code in (409, 422)
    assert fetch(api, item) == item


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "/tags/01", "value": "x"},  # RFC 6901 §4: no leading zero
        {"op": "remove", "path": "/tags/-"},  # "-" names no element to remove
        {"op": "copy", "from": "/nothing", "path": "/tags/0"},  # §4.5: from must exist
        {"op": "move", "from": "/tags", "path": "/tags/0"},  # §4.4: not into its own child
    ],
)
def test_json_patch_operations_that_cannot_apply_change_nothing(
    api: httpx.Client, operation: dict[str, Any]
) -> None:
    item = new_item(api, tags=["a", "b"])
    response = json_patch(api, item, [{"op": "replace", "path": "/price", "value": 1}, operation])
    assert_problem(response, response.status_code)
    assert response.status_code in (400, 409, 422)
    assert fetch(api, item) == item


def test_json_patch_may_replace_the_whole_document(api: httpx.Client) -> None:
    # RFC 6901 §5: "" points at the whole document; RFC 6902 replace at "" swaps it, which
    # for an item means what a PUT of the value means
    item = new_item(api, tags=["a"])
    name = unique()
    operations = [{"op": "replace", "path": "", "value": {"name": name, "price": 3}}]
    response = json_patch(api, item, operations)
    assert response.status_code in (200, 204), response.text
    current = fetch(api, item)
    assert (current["name"], current["price"], current.get("tags")) == (name, 3, None)


def test_a_long_json_patch_applies_as_one(api: httpx.Client) -> None:
    item = new_item(api, tags=[])
    operations = [{"op": "add", "path": "/tags/-", "value": str(n)} for n in range(2000)]
    response = json_patch(api, item, operations)
    assert response.status_code in (200, 204), response.text[:300]
    assert fetch(api, item)["tags"] == [str(n) for n in range(2000)]
