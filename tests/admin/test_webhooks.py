"""``/webhooks`` through the served admin API: endpoints, published events, the
delivery log, dead letters and replay, with a real receiver."""

from __future__ import annotations

import random

from quiver.store import Store
from quiver.webhooks.queue import Policy
from quiver.webhooks.sender import DeliverySettings, Sender
from tests.admin.conftest import MakeClient
from tests.webhooks.receiver import receiving


def _sender(store: Store) -> Sender:
    return Sender(store.engine, DeliverySettings(policy=Policy(schedule=())), rng=random.Random(1))


def test_an_application_publishes_an_event_an_endpoint_receives(
    store: Store, make_client: MakeClient
) -> None:
    admin, editor = make_client("admin"), make_client("editor")
    with receiving() as hook:
        made = admin.post(
            "/webhooks/endpoints",
            json={"name": "orders", "url": hook.url, "event_types": ["order.*"]},
        )
        assert made.status_code == 201, made.text
        assert made.json()["secret"].startswith("whsec_")
        hook.secrets.append(made.json()["secret"])
        listed = admin.get("/webhooks/endpoints").json()["data"]
        assert [item["name"] for item in listed] == ["orders"]
        assert "secret" not in listed[0]
        assert listed[0]["secrets"] == 1

        published = editor.post(
            "/webhooks/events", json={"type": "order.shipped", "data": {"order": 7}}
        )
        assert published.status_code == 202
        msg_id = published.json()["id"]
        sender = _sender(store)
        try:
            assert sender.run_once() == ["delivered"]
        finally:
            sender.stop()
        [got] = hook.received
        assert got.msg_id == msg_id
        assert got.event["data"] == {"order": 7}

        log = admin.get("/webhooks/endpoints/orders/attempts").json()["data"]
        assert [(entry["msg_id"], entry["status"]) for entry in log] == [(msg_id, 200)]
        messages = admin.get("/webhooks/endpoints/orders/messages").json()["data"]
        assert [(item["msg_id"], item["state"]) for item in messages] == [(msg_id, "delivered")]


def test_a_dead_letter_is_listed_and_replayed(store: Store, make_client: MakeClient) -> None:
    admin = make_client("admin")
    with receiving() as hook:
        hook.answers = [500]
        made = admin.post("/webhooks/endpoints", json={"name": "h", "url": hook.url})
        hook.secrets.append(made.json()["secret"])
        msg_id = admin.post("/webhooks/events", json={"type": "a.b", "data": {}}).json()["id"]
        sender = _sender(store)
        try:
            assert sender.run_once() == ["dead"]
            dead = admin.get("/webhooks/endpoints/h/messages", params={"state": "dead"})
            assert [item["msg_id"] for item in dead.json()["data"]] == [msg_id]
            replayed = admin.post(f"/webhooks/endpoints/h/messages/{msg_id}/replay")
            assert replayed.status_code == 202
            assert sender.run_once() == ["delivered"]
        finally:
            sender.stop()
        assert [item.msg_id for item in hook.received] == [msg_id, msg_id]


def test_rotation_shows_the_new_secret_once(store: Store, make_client: MakeClient) -> None:
    admin = make_client("admin")
    admin.post("/webhooks/endpoints", json={"name": "h", "url": "http://127.0.0.1:9/"})
    rotated = admin.post("/webhooks/endpoints/h/rotate", json={"grace_s": 60})
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert admin.get("/webhooks/endpoints/h").json()["secrets"] == 2
    assert rotated.json()["secret"] not in admin.get("/webhooks/endpoints/h").text


def test_disabling_and_enabling_an_endpoint(make_client: MakeClient) -> None:
    admin = make_client("admin")
    admin.post("/webhooks/endpoints", json={"name": "h", "url": "http://127.0.0.1:9/"})
    assert admin.patch("/webhooks/endpoints/h", json={"enabled": False}).json()["enabled"] is False
    assert admin.patch("/webhooks/endpoints/h", json={"enabled": True}).json()["enabled"] is True
    assert admin.delete("/webhooks/endpoints/h").status_code == 204
    assert admin.get("/webhooks/endpoints/h").status_code == 404


def test_refusals(make_client: MakeClient) -> None:
    admin, editor, viewer = make_client("admin"), make_client("editor"), make_client("viewer")
    team_admin = make_client("admin", "default")
    body = {"name": "h", "url": "http://127.0.0.1:9/"}
    assert editor.post("/webhooks/endpoints", json=body).status_code == 403
    assert team_admin.post("/webhooks/endpoints", json=body).status_code == 403
    assert viewer.post("/webhooks/events", json={"type": "a", "data": {}}).status_code == 403
    assert admin.post("/webhooks/endpoints", json={**body, "url": "ftp://x"}).status_code == 422
    assert admin.post("/webhooks/endpoints", json={**body, "secret": "nope!"}).status_code == 422
    assert admin.post("/webhooks/endpoints", json=body).status_code == 201
    assert admin.post("/webhooks/endpoints", json=body).status_code == 409
    assert admin.post("/webhooks/events", json={"type": "A B", "data": {}}).status_code == 422
    for family in ("consumer", "subscription"):
        spoofed = admin.post("/webhooks/events", json={"type": f"{family}.created", "data": {}})
        assert spoofed.status_code == 422
        assert "Quiver's own" in spoofed.json()["detail"]
    short = {**body, "name": "short", "secret": "nope"}  # base64, but 3 bytes
    assert admin.post("/webhooks/endpoints", json=short).status_code == 422
    event = {"type": "a.b", "data": {}, "id": "msg_once"}
    assert admin.post("/webhooks/events", json=event).status_code == 202
    again = admin.post("/webhooks/events", json=event)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert admin.get("/webhooks/endpoints/nope/attempts").status_code == 404
    assert viewer.get("/webhooks/endpoints").status_code == 200


def test_quiver_publishes_revisions_consumers_and_credentials(
    store: Store, make_client: MakeClient
) -> None:
    admin = make_client("admin", name="alice")
    with receiving() as hook:
        made = admin.post("/webhooks/endpoints", json={"name": "ops", "url": hook.url})
        hook.secrets.append(made.json()["secret"])
        consumer = {"name": "bob", "credentials": {"key-auth": [{"key": "k" * 32}]}}
        assert admin.post("/consumers", json=consumer).status_code == 201
        [listed] = admin.get("/consumers/bob/credentials").json()["data"]
        assert admin.delete("/consumers/bob").status_code == 204
        sender = _sender(store)
        try:
            assert sender.run_once() == ["delivered"] * 6
        finally:
            sender.stop()
    events = [(item.event["type"], item.event["data"]) for item in hook.received]
    # (posted concurrently: they arrive in any order)
    assert sorted(kind for kind, _ in events) == sorted(
        [
            "config.revision.applied",
            "consumer.created",
            "credential.created",
            "config.revision.applied",
            "consumer.deleted",
            "credential.revoked",
        ]
    )
    by_type = {kind: data for kind, data in events}
    applied = sorted(
        (data for kind, data in events if kind == "config.revision.applied"),
        key=lambda data: data["revision"],
    )
    assert [(data["author"], data["team"]) for data in applied] == [("alice", "default")] * 2
    assert (applied[0]["added"], applied[1]["removed"]) == (1, 1)
    assert by_type["consumer.created"] == {"team": "default", "name": "bob"}
    created = by_type["credential.created"]
    assert created["consumer"] == "bob"
    assert created["plugin"] == "key-auth"
    assert created["id"] == listed["id"]
    assert by_type["credential.revoked"]["id"] == listed["id"]
    assert "k" * 32 not in str(events)
