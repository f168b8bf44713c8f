"""Global plugins, a consumer's credentials and a target's nodes."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.admin.problems import assert_problem

TARGET = {"name": "orders", "url": "http://127.0.0.1:9001"}


def test_global_plugins(admin: httpx.Client) -> None:
    assert admin.get("/plugins").json() == {"data": [], "next": None}
    created = admin.put("/plugins/cors", json={"origins": ["*"]})
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "cors", "config": {"origins": ["*"]}}
    tag = created.headers["etag"]
    assert admin.get("/plugins/cors").json()["config"] == {"origins": ["*"]}
    replaced = admin.put(
        "/plugins/cors", json={"origins": ["https://a.example"]}, headers={"If-Match": tag}
    )
    assert replaced.status_code == 200
    stale = admin.put("/plugins/cors", json={"origins": ["*"]}, headers={"If-Match": tag})
    assert_problem(stale, 412, "precondition-failed")
    assert [item["name"] for item in admin.get("/plugins").json()["data"]] == ["cors"]

    body = assert_problem(admin.put("/plugins/cors", json={"origins": 5}), 422, "invalid-config")
    assert body["errors"][0]["pointer"].startswith("/origins")
    assert body["errors"][0]["location"].startswith("plugins.cors.origins")
    body = assert_problem(admin.put("/plugins/no-such-plugin", json={}), 422, "invalid-config")
    assert body["errors"][0]["location"] == "plugins.no-such-plugin"
    assert body["errors"][0]["pointer"] == ""

    assert admin.delete("/plugins/cors").status_code == 204
    assert_problem(admin.get("/plugins/cors"), 404, "not-found")
    assert_problem(admin.delete("/plugins/cors"), 404, "not-found")


def test_credentials_are_stored_hashed_with_a_derived_id(admin: httpx.Client) -> None:
    assert admin.post("/consumers", json={"name": "alice"}).status_code == 201
    secret = "alice-secret-key-0123456789"
    created = admin.post("/consumers/alice/credentials", json={"plugin": "key-auth", "key": secret})
    assert created.status_code == 201, created.text
    credential = created.json()
    stored = {"key_hash": "sha256:" + hashlib.sha256(secret.encode()).hexdigest()}
    canonical = json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
    expected_id = hashlib.sha256(b"key-auth" + canonical).hexdigest()[:16]
    assert credential == {"id": expected_id, "plugin": "key-auth", **stored}
    assert created.headers["location"] == f"/consumers/alice/credentials/{expected_id}"

    listed = admin.get("/consumers/alice/credentials").json()
    assert listed == {"data": [credential], "next": None}
    assert admin.get(f"/consumers/alice/credentials/{expected_id}").json() == credential
    consumer = admin.get("/consumers/alice").json()
    assert consumer["credentials"] == {"key-auth": [stored]}
    for text in (
        admin.get("/config").text,
        admin.get("/revisions").text,
        admin.get("/revisions/2").text,
    ):
        assert secret not in text

    body = assert_problem(
        admin.post("/consumers/alice/credentials", json={"plugin": "key-auth", "nope": 1}),
        422,
        "invalid-config",
    )
    assert any(issue["pointer"].startswith("/") for issue in body["errors"])
    body = assert_problem(
        admin.post("/consumers/alice/credentials", json={"key": "x"}), 422, "invalid-request"
    )
    assert body["errors"][0]["pointer"] == "/plugin"
    assert_problem(
        admin.post("/consumers/bob/credentials", json={"plugin": "key-auth", "key": "k" * 20}),
        404,
        "not-found",
    )

    assert admin.delete(f"/consumers/alice/credentials/{expected_id}").status_code == 204
    assert_problem(admin.get(f"/consumers/alice/credentials/{expected_id}"), 404, "not-found")
    assert_problem(admin.delete(f"/consumers/alice/credentials/{expected_id}"), 404, "not-found")


def test_basic_auth_passwords_are_hashed(admin: httpx.Client) -> None:
    admin.post("/consumers", json={"name": "bob"})
    created = admin.post(
        "/consumers/bob/credentials",
        json={"plugin": "basic-auth", "username": "bob", "password": "hunter2-long-password"},
    )
    assert created.status_code == 201, created.text
    assert "password" not in created.json() and created.json()["password_hash"]
    assert "hunter2" not in admin.get("/consumers/bob").text


def test_target_nodes(admin: httpx.Client) -> None:
    admin.post("/targets", json=TARGET)
    nodes = admin.get("/targets/orders/nodes")
    assert nodes.json() == {"nodes": [{"url": TARGET["url"], "weight": 1}]}
    two = [{"url": "http://127.0.0.1:9001", "weight": 3}, {"url": "http://127.0.0.1:9002"}]
    replaced = admin.put("/targets/orders/nodes", json={"nodes": two})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {"nodes": two}
    target = admin.get("/targets/orders").json()
    assert "url" not in target and target["nodes"] == two
    body = assert_problem(
        admin.put("/targets/orders/nodes", json={"nodes": [{"url": "ftp://x"}]}),
        422,
        "invalid-config",
    )
    assert body["errors"][0]["pointer"] == "/nodes/0/url"
    assert body["errors"][0]["location"] == "targets[0].nodes[0].url"
    assert_problem(admin.put("/targets/orders/nodes", json={"nodes": []}), 422, "invalid-config")
    assert_problem(admin.put("/targets/orders/nodes", json={"nodes": 5}), 422, "invalid-request")
    assert_problem(admin.get("/targets/none/nodes"), 404, "not-found")
    assert_problem(admin.put("/targets/none/nodes", json={"nodes": two}), 404, "not-found")
