"""Targets, routes and consumers: create, read, replace, patch, delete, ETags,
validation messages with pointers into the body, and pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.admin.problems import assert_problem
from tests.admin.races import concurrent_replaces

TARGET = {"name": "orders", "url": "http://127.0.0.1:9001"}
ROUTE = {"name": "orders-route", "paths": ["/orders"], "target": "orders"}
CONSUMER = {"name": "alice", "groups": ["staff"]}
DOCS: dict[str, dict[str, Any]] = {"targets": TARGET, "routes": ROUTE, "consumers": CONSUMER}
CHANGE: dict[str, dict[str, Any]] = {
    "targets": {"url": "http://127.0.0.1:9002"},
    "routes": {"paths": ["/v2/orders"]},
    "consumers": {"groups": ["admins"]},
}


@pytest.fixture
def with_target(admin: httpx.Client) -> httpx.Client:
    assert admin.post("/targets", json=TARGET).status_code == 201
    return admin


@pytest.mark.parametrize("key", ["targets", "routes", "consumers"])
def test_entity_lifecycle(with_target: httpx.Client, key: str) -> None:
    admin = with_target
    doc = DOCS[key]
    name = doc["name"]
    if key != "targets":
        created = admin.post(f"/{key}", json=doc)
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/{key}/{name}"
        assert created.json() == doc
    got = admin.get(f"/{key}/{name}")
    assert got.status_code == 200 and got.json() == doc
    tag = got.headers["etag"]
    assert tag.startswith('"') and len(tag) == 34

    assert_problem(admin.post(f"/{key}", json=doc), 409, "already-exists")

    changed = {**doc, **CHANGE[key]}
    replaced = admin.put(f"/{key}/{name}", json=changed, headers={"If-Match": tag})
    assert replaced.status_code == 200 and replaced.json() == changed
    assert replaced.headers["etag"] != tag
    assert_problem(
        admin.put(f"/{key}/{name}", json=doc, headers={"If-Match": tag}), 412, "precondition-failed"
    )
    assert_problem(
        admin.put(f"/{key}/{name}", json=doc, headers={"If-None-Match": "*"}),
        412,
        "precondition-failed",
    )

    patched = admin.patch(
        f"/{key}/{name}",
        json={"tags": ["x"]} if key == "consumers" else {"plugins": {"cors": {"origins": ["*"]}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == name
    undone = admin.patch(
        f"/{key}/{name}",
        json={"tags": None} if key == "consumers" else {"plugins": None},
        headers={
            "Content-Type": "application/merge-patch+json",
            "If-Match": patched.headers["etag"],
        },
    )
    assert undone.json() == changed

    listed = admin.get(f"/{key}").json()
    assert [item["name"] for item in listed["data"]] == [name] and listed["next"] is None

    if key == "targets":  # a route still refers to it
        assert admin.post("/routes", json=ROUTE).status_code == 201
        body = assert_problem(admin.delete("/targets/orders"), 409, "conflict")
        assert body["errors"][0]["location"] == "routes[0].target"
        assert "pointer" not in body["errors"][0]
        assert admin.delete("/routes/orders-route").status_code == 204
    assert_problem(
        admin.delete(f"/{key}/{name}", headers={"If-Match": tag}), 412, "precondition-failed"
    )
    assert admin.delete(f"/{key}/{name}").status_code == 204
    assert_problem(admin.get(f"/{key}/{name}"), 404, "not-found")
    assert_problem(admin.delete(f"/{key}/{name}"), 404, "not-found")
    assert_problem(admin.patch(f"/{key}/{name}", json={}), 404, "not-found")


def test_put_creates_and_if_match_on_an_absent_entity_fails(admin: httpx.Client) -> None:
    absent = admin.put("/targets/orders", json=TARGET, headers={"If-Match": '"abc"'})
    assert_problem(absent, 412, "precondition-failed")
    created = admin.put(
        "/targets/orders", json={"url": TARGET["url"]}, headers={"If-None-Match": "*"}
    )
    assert created.status_code == 201 and created.json() == TARGET
    assert created.headers["location"] == "/targets/orders"
    assert admin.put("/targets/orders", json=TARGET, headers={"If-Match": "*"}).status_code == 200


def test_a_body_naming_another_entity_is_422(admin: httpx.Client) -> None:
    body = assert_problem(
        admin.put("/targets/orders", json={**TARGET, "name": "x"}), 422, "invalid-request"
    )
    assert body["errors"][0]["pointer"] == "/name"
    admin.post("/targets", json=TARGET)
    assert_problem(admin.patch("/targets/orders", json={"name": "x"}), 422, "invalid-request")


def test_validation_messages_are_the_config_files_with_pointers(admin: httpx.Client) -> None:
    admin.post("/targets", json=TARGET)
    bad = {"name": "b", "paths": ["/b"], "target": "orders", "plugins": {"cors": {"origins": 5}}}
    body = assert_problem(admin.post("/routes", json=bad), 422, "invalid-config")
    [issue] = body["errors"]
    assert issue["location"].startswith("routes[0].plugins.cors")
    assert issue["pointer"] == "/plugins/cors" + issue["location"].removeprefix(
        "routes[0].plugins.cors"
    ).replace(".", "/")
    assert issue["detail"] in body["detail"]

    body = assert_problem(
        admin.post("/targets", json={"name": "x", "url": "ftp://x", "nope": 1}),
        422,
        "invalid-config",
    )
    pointers = {issue["pointer"]: issue for issue in body["errors"]}
    assert pointers["/url"]["location"] == "targets[1].url"
    assert "'ftp://x'" in pointers["/url"]["detail"]
    assert "/nope" in pointers
    assert admin.get("/targets").json()["data"] == [TARGET]  # nothing written


def test_an_unknown_target_in_a_route_names_the_key(admin: httpx.Client) -> None:
    body = assert_problem(admin.post("/routes", json=ROUTE), 422, "invalid-config")
    assert body["errors"][0]["pointer"] == "/target"
    assert body["errors"][0]["location"] == "routes[0].target"


def test_malformed_bodies(admin: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    body = assert_problem(
        admin.post("/targets", content=b'{"name": ', headers=headers), 400, "invalid-request"
    )
    assert "JSON" in body["detail"]
    assert_problem(admin.post("/targets", json=[TARGET]), 422, "invalid-request")
    assert_problem(admin.put("/targets/x", json="text"), 422, "invalid-request")
    assert_problem(admin.post("/config/apply", json={"doc": {}}), 422, "invalid-request")


def test_query_parameters_are_checked(admin: httpx.Client) -> None:
    assert_problem(admin.get("/targets", params={"limit": 0}), 422, "invalid-request")
    assert_problem(admin.get("/targets", params={"limit": 1001}), 422, "invalid-request")
    assert_problem(admin.get("/targets", params={"cursor": "not-a-cursor"}), 400, "invalid-request")
    assert_problem(admin.get("/revisions", params={"cursor": "eyJhIjoxfQ"}), 400, "invalid-request")


def test_unknown_paths_and_methods(admin: httpx.Client) -> None:
    assert_problem(admin.get("/nothing"), 404, "not-found")
    response = admin.post("/targets/orders")
    assert_problem(response, 405, "method-not-allowed")
    assert "PUT" in response.headers["allow"]


def test_pages_are_stable_while_entities_are_added_and_removed(admin: httpx.Client) -> None:
    for number in range(7):
        admin.post("/targets", json={"name": f"t{number}", "url": "http://127.0.0.1:9001"})
    first = admin.get("/targets", params={"limit": 3}).json()
    assert [item["name"] for item in first["data"]] == ["t0", "t1", "t2"]
    admin.delete("/targets/t0")  # before the cursor: shifts positions
    admin.post("/targets", json={"name": "t7", "url": "http://127.0.0.1:9001"})
    second = admin.get("/targets", params={"limit": 3, "cursor": first["next"]}).json()
    assert [item["name"] for item in second["data"]] == ["t3", "t4", "t5"]
    third = admin.get("/targets", params={"limit": 3, "cursor": second["next"]}).json()
    assert [item["name"] for item in third["data"]] == ["t6", "t7"]
    assert third["next"] is None


def test_filters(admin: httpx.Client) -> None:
    for name in ("orders", "users"):
        admin.post("/targets", json={"name": name, "url": "http://127.0.0.1:9001"})
        admin.post("/routes", json={"name": f"{name}-r", "paths": [f"/{name}"], "target": name})
    assert [t["name"] for t in admin.get("/targets", params={"name": "ser"}).json()["data"]] == [
        "users"
    ]
    routes = admin.get("/routes", params={"target": "orders"}).json()["data"]
    assert [route["name"] for route in routes] == ["orders-r"]


def test_concurrent_puts_with_the_same_etag_lose_no_update(admin: httpx.Client) -> None:
    """Two writers read the same ETag; exactly one replace wins, the other gets 412."""
    assert concurrent_replaces(admin) == [200, 412]
    revisions = admin.get("/revisions").json()["data"]
    assert len(revisions) == 2  # the create and one replace


def test_a_body_over_the_limit_is_413(admin: httpx.Client) -> None:
    from quiver.admin.problems import MAX_BODY

    big = b'{"name": "' + b"x" * (MAX_BODY + 1) + b'"}'
    headers = {"Content-Type": "application/json"}
    assert_problem(admin.post("/targets", content=big, headers=headers), 413, "content-too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 1 << 20):
            yield big[start : start + (1 << 20)]

    response = admin.post("/targets", content=chunks(), headers=headers)
    assert_problem(response, 413, "content-too-large")
    assert admin.get("/targets").json()["data"] == []
