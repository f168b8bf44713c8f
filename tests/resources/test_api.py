"""The REST API of declared resources, through the running proxy, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from quiver.resources.query import encode_cursor
from tests.resources.conftest import Api
from tests.support.proxy import Response, RunningProxy


@pytest.fixture
def resources_db(any_resources_db: str) -> str:
    return any_resources_db


def _create(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api("POST", path, body)
    assert response.status == 201, response.body
    created: dict[str, Any] = response.json()
    return created


def test_create_answers_201_with_location_etag_defaults_and_timestamps(api: Api) -> None:
    response = api("POST", "/items", {"name": "pen", "price": 2.5, "tags": ["office"]})
    assert response.status == 201
    item = response.json()
    assert response.header("Location") == f"/items/{item['id']}"
    assert item["status"] == "draft" and item["tags"] == ["office"]
    assert item["created_at"] == item["updated_at"]
    fetched = api("GET", response.header("Location") or "")
    assert fetched.status == 200 and fetched.json() == item
    assert fetched.header("ETag") == response.header("ETag")
    assert (fetched.header("ETag") or "").startswith('"')


def test_invalid_body_lists_a_pointer_per_field(api: Api) -> None:
    response = api("POST", "/items", {"name": "", "price": -1, "extra": 1, "status": "gone"})
    assert response.status == 422
    assert response.header("Content-Type") == "application/problem+json"
    pointers = [error["pointer"] for error in response.json()["errors"]]
    assert pointers == ["/extra", "/name", "/price", "/status"]
    missing = api("POST", "/items", {"tags": []})
    assert [e["pointer"] for e in missing.json()["errors"]] == ["/name", "/price"]


def test_malformed_json_and_wrong_content_type(api: Api) -> None:
    assert api("POST", "/items", b"{nope").status == 400
    assert api("POST", "/items", {"name": "a"}, content_type="text/plain").status == 415
    patch = api("PATCH", "/items/1", {"name": "a"}, content_type="application/json")
    assert patch.status in (404, 415)


def test_unique_violation_is_a_409_without_database_text(api: Api) -> None:
    _create(api, "/items", {"name": "pen", "price": 1})
    response = api("POST", "/items", {"name": "pen", "price": 2})
    assert response.status == 409
    assert response.json()["errors"] == [
        {"pointer": "/name", "detail": "another item has this value"}
    ]
    assert b"constraint" not in response.body.lower()


def names(response: Response) -> list[str]:
    return [item["name"] for item in response.json()]


def test_filters_sort_fields_and_count(api: Api) -> None:
    for name, price, status in [("a", 5, "active"), ("b", 1, "draft"), ("c", 3, "active")]:
        _create(api, "/items", {"name": name, "price": price, "status": status})
    assert names(api("GET", "/items?sort=-price")) == ["a", "c", "b"]
    assert names(api("GET", "/items?status=active&sort=name")) == ["a", "c"]
    assert names(api("GET", "/items?price[gte]=3&sort=price")) == ["c", "a"]
    assert names(api("GET", "/items?price[lt]=3")) == ["b"]
    assert names(api("GET", "/items?name[in]=a,b")) == ["a", "b"]
    assert names(api("GET", "/items?name[nin]=a,b")) == ["c"]
    assert names(api("GET", "/items?name[ne]=a")) == ["b", "c"]
    assert names(api("GET", "/items?name[like]=a%25")) == ["a"]
    assert names(api("GET", "/items?name[ilike]=A")) == ["a"]
    assert names(api("GET", "/items?tags[null]=true")) == ["a", "b", "c"]
    projected = api("GET", "/items?fields=id,name&sort=name&count=true")
    assert projected.json()[0] == {"id": 1, "name": "a"}
    assert projected.header("X-Total-Count") == "3"
    for bad in ("bogus=1", "price[near]=1", "price=cheap", "sort=nope", "limit=101", "page=0"):
        response = api("GET", f"/items?{bad}")
        assert response.status == 400, bad


def test_pages_carry_link_headers(api: Api) -> None:
    for index in range(5):
        _create(api, "/items", {"name": f"n{index}", "price": index})
    first = api("GET", "/items?limit=2")
    assert [item["name"] for item in first.json()] == ["n0", "n1"]
    links = first.header("Link") or ""
    assert '</items?limit=2&page=2>; rel="next"' in links
    assert 'rel="prev"' not in links
    last = api("GET", "/items?limit=2&page=3")
    assert [item["name"] for item in last.json()] == ["n4"]
    links = last.header("Link") or ""
    assert 'rel="next"' not in links
    assert '</items?limit=2&page=2>; rel="prev"' in links
    assert '</items?limit=2&page=1>; rel="first"' in links


def test_etag_preconditions(api: Api) -> None:
    created = api("POST", "/items", {"name": "pen", "price": 1})
    tag = created.header("ETag") or ""
    assert api("GET", "/items/1", headers={"If-None-Match": tag}).status == 304
    stale = api("PUT", "/items/1", {"name": "pen", "price": 2}, headers={"If-Match": '"old"'})
    assert stale.status == 412
    fresh = api("PUT", "/items/1", {"name": "pen", "price": 2}, headers={"If-Match": tag})
    assert fresh.status == 200 and fresh.json()["price"] == 2
    assert fresh.header("ETag") != tag
    assert api("DELETE", "/items/1", headers={"If-Match": tag}).status == 412
    assert api("DELETE", "/items/1", headers={"If-Match": fresh.header("ETag") or ""}).status == 204
    assert api("GET", "/items/1").status == 404


def test_put_replaces_and_ignores_the_stores_own_keys(api: Api) -> None:
    item = _create(api, "/items", {"name": "pen", "price": 1, "tags": ["x"], "status": "active"})
    sent = {**item, "id": 99, "name": "ink"}
    del sent["status"], sent["tags"]
    replaced = api("PUT", "/items/1", sent).json()
    assert replaced["id"] == 1 and replaced["name"] == "ink"
    assert "tags" not in replaced and replaced["status"] == "draft"
    assert replaced["created_at"] == item["created_at"]


def test_merge_patch(api: Api) -> None:
    _create(api, "/items", {"name": "pen", "price": 1, "tags": ["x"]})
    merge = "application/merge-patch+json"
    patched = api("PATCH", "/items/1", {"price": 4, "tags": None}, content_type=merge)
    assert patched.status == 200
    assert patched.json()["price"] == 4 and "tags" not in patched.json()
    refused = api("PATCH", "/items/1", {"price": -4}, content_type=merge)
    assert refused.status == 422 and refused.json()["errors"][0]["pointer"] == "/price"


def test_json_patch_is_atomic(api: Api) -> None:
    _create(api, "/items", {"name": "pen", "price": 1, "tags": ["x"]})
    kind = "application/json-patch+json"
    ops = [
        {"op": "add", "path": "/tags/-", "value": "y"},
        {"op": "replace", "path": "/price", "value": 2},
    ]
    patched = api("PATCH", "/items/1", ops, content_type=kind)
    assert patched.status == 200
    assert patched.json()["tags"] == ["x", "y"] and patched.json()["price"] == 2
    failing = [
        {"op": "replace", "path": "/price", "value": 9},
        {"op": "test", "path": "/name", "value": "other"},
    ]
    assert api("PATCH", "/items/1", failing, content_type=kind).status == 409
    missing = [{"op": "replace", "path": "/price", "value": 9}, {"op": "remove", "path": "/x"}]
    assert api("PATCH", "/items/1", missing, content_type=kind).status == 422
    assert api("GET", "/items/1").json()["price"] == 2
    assert api("PATCH", "/items/1", {"op": "add"}, content_type=kind).status == 400


def test_nested_routes_check_the_parent_and_cascade(api: Api) -> None:
    assert api("POST", "/events/1/guests", {"email": "a@example.com"}).status == 404
    _create(api, "/events", {"title": "party"})
    _create(api, "/events", {"title": "other"})
    guest = api("POST", "/events/1/guests", {"email": "a@example.com"})
    assert guest.status == 201 and guest.header("Location") == "/events/1/guests/1"
    assert guest.json()["event_id"] == 1
    assert api("POST", "/events/1/guests", {"email": "nope"}).status == 422
    assert api("GET", "/events/2/guests/1").status == 404
    assert [g["email"] for g in api("GET", "/events/1/guests").json()] == ["a@example.com"]
    assert api("GET", "/events/2/guests").json() == []
    assert api("DELETE", "/events/1").status == 204
    assert api("GET", "/events/1/guests").status == 404
    _create(api, "/events/2/guests", {"email": "b@example.com"})
    assert api("GET", "/events/2/guests/2").status == 200


def test_methods_head_and_options(api: Api) -> None:
    _create(api, "/items", {"name": "pen", "price": 1})
    head = api("HEAD", "/items/1")
    assert head.status == 200 and head.body == b"" and head.header("ETag")
    options = api("OPTIONS", "/items/1")
    assert options.status == 204
    assert options.header("Allow") == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
    refused = api("DELETE", "/items")
    assert refused.status == 405 and refused.header("Allow") == "GET, HEAD, POST, OPTIONS"
    assert api("GET", "/items/1?fields=id").status == 400
    assert api("POST", "/items?x=1", {"name": "b", "price": 1}).status == 400
    assert api("GET", "/items/abc").status == 404
    assert api("GET", "/items/1/more").status == 404
    assert json.loads(api("GET", "/items/9").body)["status"] == 404


def test_numbers_read_back_as_sent(api: Api) -> None:
    assert _create(api, "/items", {"name": "a", "price": 3})["price"] == 3
    assert api("GET", "/items/1").body.count(b'"price":3,') == 1
    assert _create(api, "/items", {"name": "b", "price": 2.5})["price"] == 2.5


def test_an_array_creates_every_item_or_none(api: Api) -> None:
    refused = api("POST", "/items", [{"name": "a", "price": 1}, {"name": "b", "price": -1}])
    assert refused.status == 422
    assert [error["pointer"] for error in refused.json()["errors"]] == ["/1/price"]
    assert api("GET", "/items").json() == []
    created = api("POST", "/items", [{"name": "a", "price": 1}, {"name": "b", "price": 2}])
    assert created.status == 201
    assert [item["id"] for item in created.json()] == [1, 2]
    clash = api("POST", "/items", [{"name": "c", "price": 1}, {"name": "a", "price": 2}])
    assert clash.status == 409
    assert api("GET", "/items?count=true").header("X-Total-Count") == "2"


def test_a_resource_may_require_if_match(tmp_path: Path) -> None:
    text = f"""
listen: 127.0.0.1:0
resources_db: {tmp_path / "r.db"}
resources:
  - name: notes
    fields: {{text: {{type: string}}}}
    require_if_match: true
"""
    with RunningProxy(text) as proxy:
        api = Api(proxy.port)
        created = api("POST", "/notes", {"text": "a"})
        assert created.status == 201
        assert api("PUT", "/notes/1", {"text": "b"}).status == 428
        assert api("DELETE", "/notes/1").status == 428
        tag = created.header("ETag") or ""
        assert api("PUT", "/notes/1", {"text": "b"}, {"If-Match": tag}).status == 200
        api.client.close()


def test_cursor_pages_follow_the_sort_without_gaps(api: Api) -> None:
    for index, price in enumerate([3, 1, 3, 2, 1]):
        _create(api, "/items", {"name": f"n{index}", "price": price})
    seen: list[str] = []
    path = "/items?sort=-price&limit=2&cursor="
    pages = 0
    while path:
        response = api("GET", path)
        assert response.status == 200, response.body
        seen += names(response)
        links = response.header("Link") or ""
        assert 'rel="first"' in links
        match = [part for part in links.split(", ") if part.endswith('rel="next"')]
        path = match[0].split(">")[0][1:] if match else ""
        pages += 1
        if pages == 2:  # an item added meanwhile sorts before the cursor: not repeated
            _create(api, "/items", {"name": "late", "price": 9})
    assert seen == ["n0", "n2", "n3", "n1", "n4"]
    assert api("GET", "/items?sort=status&cursor=").status == 200  # (NULLs sort first)
    assert api("GET", "/items?cursor=&page=2").status == 400
    assert api("GET", "/items?cursor=bm9wZQ").status == 400


def test_the_openapi_document_describes_every_resource(api: Api) -> None:
    response = api("GET", "/openapi/resources.json")
    assert response.status == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/items",
        "/items/{id}",
        "/events",
        "/events/{id}",
        "/events/{event_id}/guests",
        "/events/{event_id}/guests/{id}",
    }
    items = document["components"]["schemas"]["items-input"]
    assert items["required"] == ["name", "price"]
    assert items["properties"]["status"]["enum"] == ["draft", "active", "archived"]
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    post = document["paths"]["/items"]["post"]
    assert set(post["responses"]) >= {"201", "409", "422"}


MERGE_PATCH = "application/merge-patch+json"


def _link(response: Response, rel: str) -> str:
    links = (response.header("Link") or "").split(", ")
    found = [part.split(">")[0][1:] for part in links if part.endswith(f'rel="{rel}"')]
    return found[0] if found else ""


def test_cursor_pages_walk_both_ways_over_null_sort_values(api: Api) -> None:
    statuses = ["active", "draft", "archived", "active", "draft", "archived", "active"]
    for index, status in enumerate(statuses):
        _create(api, "/items", {"name": f"n{index}", "price": 7 - index, "status": status})
    for key in (2, 5):  # n1 and n4 lose their status: sorted last in a descending sort
        patched = api("PATCH", f"/items/{key}", {"status": None}, {"Content-Type": MERGE_PATCH})
        assert patched.status == 200, patched.body
    # archived by price, active by price, no status by price
    expected = ["n5", "n2", "n6", "n3", "n0", "n4", "n1"]
    pages: list[list[str]] = []
    response = api("GET", "/items?sort=-status,price&limit=3&cursor=")
    assert not _link(response, "prev")
    while True:
        assert response.status == 200, response.body
        pages.append(names(response))
        if not _link(response, "next"):
            break
        response = api("GET", _link(response, "next"))
        assert _link(response, "prev")
    assert [name for page in pages for name in page] == expected
    back = [names(response)]
    while _link(response, "prev"):
        response = api("GET", _link(response, "prev"))
        assert response.status == 200, response.body
        back.insert(0, names(response))
    assert back == pages


def test_numbers_keep_every_digit_and_like_reads_them_as_text(api: Api) -> None:
    for price in (123456789.12345679, 1e308, 0.1, 7):
        assert _create(api, "/items", {"name": f"n{price}", "price": price})["price"] == price
    assert names(api("GET", "/items?price[like]=0.%25")) == ["n0.1"]
    assert names(api("GET", "/items?price[ilike]=7")) == ["n7"]


def test_a_cursor_made_for_another_sort_is_a_400(api: Api) -> None:
    _create(api, "/items", {"name": "pen", "price": 2})
    cursor = encode_cursor(["pen", 1])  # (a name where the sort says price)
    refused = api("GET", f"/items?sort=price&cursor={cursor}")
    assert refused.status == 400
    assert refused.json()["errors"] == [
        {"parameter": "cursor", "detail": "the cursor was made for another sort"}
    ]
