"""Whole documents (/config) and revisions."""

from __future__ import annotations

import httpx

from tests.admin.problems import assert_problem

DOCUMENT = {
    "targets": [{"name": "orders", "url": "http://127.0.0.1:9001"}],
    "routes": [{"name": "all", "paths": ["/"], "target": "orders"}],
}


def test_apply_diff_and_dump(admin: httpx.Client) -> None:
    empty = admin.get("/config")
    assert empty.json() == {"revision": 0, "team": "default", "document": {}}
    assert empty.headers["etag"] == '"rev-0"'

    diff = admin.post("/config/diff", json={"document": DOCUMENT}).json()
    assert diff["equal"] is False
    assert {(c["kind"], c["name"]) for c in diff["diff"]["added"]} == {
        ("target", "orders"),
        ("route", "all"),
    }

    applied = admin.post(
        "/config/apply",
        json={"document": DOCUMENT, "message": "first"},
        headers={"If-Match": '"rev-0"'},
    )
    assert applied.status_code == 200, applied.text
    revision = applied.json()["revision"]
    assert (
        revision["number"] == 1 and revision["message"] == "first" and revision["author"] == "root"
    )
    assert revision["changes"] == {"added": 2, "changed": 0, "removed": 0}

    dumped = admin.get("/config")
    assert dumped.json() == {"revision": 1, "team": "default", "document": DOCUMENT}
    assert admin.post("/config/diff", json={"document": DOCUMENT}).json()["equal"] is True
    again = admin.post("/config/apply", json={"document": DOCUMENT}).json()
    assert again["revision"] is None and again["diff"] == {
        "added": [],
        "changed": [],
        "removed": [],
    }

    stale = admin.post("/config/apply", json={"document": {}}, headers={"If-Match": '"rev-0"'})
    assert_problem(stale, 412, "precondition-failed")
    assert_problem(
        admin.post("/config/apply", json={"document": {}}, headers={"If-Match": "x"}),
        412,
        "precondition-failed",
    )
    assert admin.get("/config").json()["document"] == DOCUMENT


def test_invalid_documents_point_into_the_body(admin: httpx.Client) -> None:
    bad = {"targets": [{"name": "x", "url": "ftp://x"}]}
    for path in ("/config/diff", "/config/apply"):
        body = assert_problem(admin.post(path, json={"document": bad}), 422, "invalid-config")
        pointers = {issue.get("pointer") for issue in body["errors"]}
        assert "/document/targets/0/url" in pointers
    setting = {"listen": "0.0.0.0:1"}
    body = assert_problem(
        admin.post("/config/apply", json={"document": setting}), 422, "invalid-config"
    )
    assert "/document/listen" in {issue.get("pointer") for issue in body["errors"]}
    assert admin.get("/config").json()["revision"] == 0


def test_revisions_list_get_and_rollback(admin: httpx.Client) -> None:
    admin.post("/config/apply", json={"document": DOCUMENT})
    admin.delete("/routes/all")
    admin.delete("/targets/orders")
    listed = admin.get("/revisions", params={"limit": 2}).json()
    assert [item["number"] for item in listed["data"]] == [3, 2]
    rest = admin.get("/revisions", params={"limit": 2, "cursor": listed["next"]}).json()
    assert [item["number"] for item in rest["data"]] == [1] and rest["next"] is None

    one = admin.get("/revisions/2").json()
    assert one["number"] == 2 and one["message"] == "DELETE /routes/all"
    assert one["diff"]["removed"][0]["name"] == "all"
    assert_problem(admin.get("/revisions/99"), 404, "not-found")

    rolled = admin.post("/revisions/1/rollback", json={"message": "undo"})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["revision"]["number"] == 4
    assert rolled.json()["revision"]["message"] == "undo"
    assert admin.get("/config").json()["document"] == DOCUMENT
    assert admin.post("/revisions/1/rollback").json() == {"revision": None}
    assert_problem(admin.post("/revisions/99/rollback"), 404, "not-found")


def test_non_default_teams_hold_only_targets_routes_and_consumers(admin: httpx.Client) -> None:
    admin.post("/teams", json={"name": "blue"})
    for key, value in (("limits", {"max_headers": 10}), ("plugins", {"cors": {"origins": ["*"]}})):
        response = admin.post(
            "/config/apply", params={"team": "blue"}, json={"document": {key: value}}
        )
        body = assert_problem(response, 422, "invalid-config")
        assert body["errors"][0]["location"] == key
        assert body["errors"][0]["pointer"] == f"/document/{key}"
    body = assert_problem(
        admin.put("/plugins/cors", params={"team": "blue"}, json={"origins": ["*"]}),
        422,
        "invalid-config",
    )
    assert body["errors"][0]["location"] == "plugins"
    ok = admin.post("/config/apply", params={"team": "blue"}, json={"document": DOCUMENT})
    assert ok.status_code == 200 and ok.json()["revision"]["team"] == "blue"
