"""The three kinds of key, through the running proxy: auto integers, UUIDs the store
makes, and keys the client gives."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.resources.conftest import Api
from tests.support.process import run_quiver, write_config
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)

KEYS = """
listen: 127.0.0.1:0
resources_db: {db}
resources:
  - name: events
    primary_key: {{name: id, type: uuid}}
    fields: {{title: {{type: string, minLength: 1}}}}
    required: [title]
  - name: guests
    parent: {{resource: events, field: event_id, on_delete: cascade}}
    fields: {{email: {{type: string}}}}
  - name: products
    primary_key: sku
    fields:
      sku: {{type: string, minLength: 1}}
      price: {{type: number}}
  - name: seats
    primary_key: {{name: number, type: given}}
    fields: {{number: {{type: integer}}, row: {{type: string}}}}
  - name: tickets
    parent: {{resource: products, field: sku}}
    fields: {{holder: {{type: string}}}}
  - name: tags
    primary_key: label
    fields: {{label: {{type: string}}}}
"""


@pytest.fixture
def api(any_resources_db: str) -> Iterator[Api]:
    # (on SQLite and on PostgreSQL)
    with RunningProxy(KEYS.format(db=any_resources_db)) as proxy:
        client = Api(proxy.port)
        yield client
        client.client.close()


def _problem(api: Api, method: str, path: str, status: int) -> None:
    response = api(method, path)
    assert response.status == status, (path, response.body)
    assert response.header("Content-Type") == "application/problem+json"


def test_uuid_keys_are_made_by_the_store(api: Api) -> None:
    created = api("POST", "/events", {"title": "launch"})
    assert created.status == 201
    key = created.json()["id"]
    assert str(uuid.UUID(key)) == key and uuid.UUID(key).version == 4
    assert created.header("Location") == f"/events/{key}"
    assert api("GET", f"/events/{key}").json() == {"id": key, "title": "launch"}
    assert api("GET", f"/events/{key.upper()}").status == 200  # the same UUID
    other = api("POST", "/events", {"title": "party"}).json()["id"]
    assert other != key
    merge = "application/merge-patch+json"
    changed = api("PATCH", f"/events/{key}", {"title": "v2"}, content_type=merge)
    assert changed.status == 200 and changed.json()["id"] == key
    for path in ("/events/1", "/events/not-a-uuid", f"/events/{key}x", "/events/%00"):
        _problem(api, "GET", path, 404)
    assert api("DELETE", f"/events/{other}").status == 204
    _problem(api, "GET", f"/events/{other}", 404)


def test_children_of_a_uuid_parent(api: Api) -> None:
    event = api("POST", "/events", {"title": "launch"}).json()["id"]
    guest = api("POST", f"/events/{event}/guests", {"email": "a@example.com"})
    assert guest.status == 201
    assert guest.json()["event_id"] == event
    assert guest.header("Location") == f"/events/{event}/guests/{guest.json()['id']}"
    listed = api("GET", f"/events/{event}/guests?event_id={event}")
    assert [item["email"] for item in listed.json()] == ["a@example.com"]
    _problem(api, "GET", f"/events/{uuid.uuid4()}/guests", 404)
    _problem(api, "GET", "/events/12/guests", 404)
    cursor = api("GET", f"/events/{event}/guests?cursor=&sort=event_id&limit=1")
    assert cursor.status == 200, cursor.body
    assert api("DELETE", f"/events/{event}").status == 204  # cascade
    assert api("GET", f"/events/{event}/guests").status == 404


def test_given_string_keys_are_sent_and_never_change(api: Api) -> None:
    missing = api("POST", "/products", {"price": 1})
    assert missing.status == 422
    assert [error["pointer"] for error in missing.json()["errors"]] == ["/sku"]
    assert api("POST", "/products", {"sku": 7, "price": 1}).status == 422
    created = api("POST", "/products", {"sku": "a b/c", "price": 2})
    assert created.status == 201
    assert created.header("Location") == "/products/a%20b%2Fc"
    assert api("GET", "/products/a%20b%2Fc").json() == {"sku": "a b/c", "price": 2}
    taken = api("POST", "/products", {"sku": "a b/c", "price": 3})
    assert taken.status == 409
    assert taken.header("Content-Type") == "application/problem+json"
    assert taken.json()["errors"][0]["pointer"] == "/sku"
    renamed = api("PUT", "/products/a%20b%2Fc", {"sku": "other", "price": 2})
    assert renamed.status == 422
    assert renamed.json()["errors"] == [
        {"pointer": "/sku", "detail": "the key of an item cannot change"}
    ]
    merge = "application/merge-patch+json"
    patched = api("PATCH", "/products/a%20b%2Fc", {"sku": "x"}, content_type=merge)
    assert patched.status == 422 and patched.json()["errors"][0]["pointer"] == "/sku"
    json_patch = [{"op": "replace", "path": "/sku", "value": "x"}]
    patch_type = "application/json-patch+json"
    refused = api("PATCH", "/products/a%20b%2Fc", json_patch, content_type=patch_type)
    assert refused.status == 422
    same = api("PUT", "/products/a%20b%2Fc", {"sku": "a b/c", "price": 5})
    assert same.status == 200 and same.json() == {"sku": "a b/c", "price": 5}
    left_out = api("PUT", "/products/a%20b%2Fc", {"price": 6})
    assert left_out.status == 200 and left_out.json() == {"sku": "a b/c", "price": 6}
    _problem(api, "GET", "/products/%FF", 404)  # not UTF-8
    _problem(api, "GET", "/products/nope", 404)
    ticket = api("POST", "/products/a%20b%2Fc/tickets", {"holder": "ann"})
    assert ticket.status == 201 and ticket.json()["sku"] == "a b/c"
    assert api("GET", "/products/a%20b%2Fc/tickets").json()[0]["holder"] == "ann"
    assert api("DELETE", "/products/a%20b%2Fc").status == 409  # restrict: a ticket is left


def test_a_given_string_key_is_never_empty(api: Api) -> None:
    empty = api("POST", "/tags", {"label": ""})
    assert empty.status == 422
    assert [error["pointer"] for error in empty.json()["errors"]] == ["/label"]
    assert api("POST", "/tags", {"label": "x"}).status == 201


def test_given_integer_keys(api: Api) -> None:
    created = api("POST", "/seats", {"number": 12, "row": "A"})
    assert created.status == 201 and created.header("Location") == "/seats/12"
    assert api("GET", "/seats/12").json() == {"number": 12, "row": "A"}
    assert api("POST", "/seats", {"number": 12, "row": "B"}).status == 409
    assert api("POST", "/seats", {"number": "13"}).status == 422
    whole = api("POST", "/seats", {"number": 14.0})
    assert whole.status == 201 and whole.header("Location") == "/seats/14"
    _problem(api, "GET", "/seats/twelve", 404)
    _problem(api, "GET", "/seats/99999999999999999999999", 404)
    assert api("GET", "/seats?number[gt]=3&number[lt]=13").json() == [{"number": 12, "row": "A"}]
    assert api("PUT", "/seats/12", {"number": 13, "row": "A"}).status == 422
    assert api("PUT", "/seats/12", {"number": 12, "row": "C"}).json()["row"] == "C"


def test_the_openapi_document_types_each_key(api: Api) -> None:
    document = api("GET", "/openapi/resources.json").json()
    one_guest = document["paths"]["/events/{event_id}/guests/{id}"]["parameters"]
    schemas = {parameter["name"]: parameter["schema"] for parameter in one_guest}
    assert schemas == {"event_id": {"type": "string", "format": "uuid"}, "id": {"type": "integer"}}
    tickets = document["paths"]["/products/{sku}/tickets"]["parameters"]
    assert tickets[0]["schema"] == {"type": "string"}
    products = document["components"]["schemas"]
    assert products["products-input"]["required"] == ["sku"]
    assert products["events"]["properties"]["id"]["format"] == "uuid"
    assert products["guests"]["properties"]["event_id"]["type"] == "string"


def test_export_and_load_keep_uuid_and_given_keys(tmp_path: Path) -> None:
    text = KEYS.format(db=tmp_path / "first.db")
    with RunningProxy(text) as proxy:
        api = Api(proxy.port)
        event = api("POST", "/events", {"title": "launch"}).json()["id"]
        assert api("POST", f"/events/{event}/guests", {"email": "a@x"}).status == 201
        assert api("POST", "/products", {"sku": "p1", "price": 1}).status == 201
        api.client.close()
    first = write_config(tmp_path, text)
    exported = run_quiver("resources", "export", "-c", str(first))
    assert exported.returncode == 0, exported.stderr
    dump = tmp_path / "dump.json"
    dump.write_text(exported.stdout)
    second = write_config(tmp_path, KEYS.format(db=tmp_path / "second.db"), "second.yaml")
    loaded = run_quiver("resources", "load", str(dump), "-c", str(second))
    assert loaded.returncode == 0, loaded.stderr
    again = run_quiver("resources", "export", "-c", str(second))
    assert json.loads(again.stdout) == json.loads(exported.stdout)
    assert json.loads(again.stdout)["guests"][0]["event_id"] == event
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"events": [{"id": "12", "title": "x"}]}))
    refused = run_quiver("resources", "load", str(bad), "-c", str(second))
    assert refused.returncode == 1
    assert "/events/0: /id: not a uuid key: '12'" in refused.stderr
