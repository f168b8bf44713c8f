"""Conformance of instant REST resources, from the outside: create, read, replace, patch,
delete, bulk create, validation and nested routes.

These tests read the contract (the feature's specification, RFC 9110, RFC 9457, RFC 7396,
RFC 6902, RFC 5789, RFC 6901, RFC 8288), never the implementation: each one starts a real
``quiver serve`` with the specification's own YAML and talks to it with ``httpx``.  Where
the contract leaves a choice open, the tests take what a json-server or PostgREST user
would expect and say so.  The helpers at the top are shared by the other
``test_conformance_*`` modules.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import httpx
import pytest

from tests.support.process import serving, write_config

pytestmark = pytest.mark.timeout(120)

# The specification's example, exactly as written there; only where to listen and where
# to keep the data are added.
SPEC_RESOURCES = """\
resources:
  - name: items
    path: /items
    fields:
      name: {type: string, minLength: 1, maxLength: 60}
      price: {type: number, minimum: 0}
      tags: {type: array, items: {type: string}}
      status: {type: string, enum: [draft, active, archived], default: draft}
    required: [name, price]
    unique: [name]
    timestamps: true
    limit: {default: 20, max: 100}
  - name: events
    path: /events
    fields: {title: {type: string, minLength: 1}}
    required: [title]
  - name: guests          # served at /events/{event_id}/guests
    parent: {resource: events, field: event_id, on_delete: cascade}
    fields: {email: {type: string, format: email}}
    required: [email]
"""

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PROBLEM = "application/problem+json"
# RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag; a strong one has no W/ prefix
STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e\x80-\xff]*"$')
# RFC 3986 §4.1, loosely: a scheme and its part, or a relative reference without spaces
URI_REFERENCE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?[^\s]*$")
# what must never reach a client: a traceback, a database's own words, a query's text
LEAKS = (
    "Traceback",
    'File "',
    "sqlite",
    "SQLite",
    "IntegrityError",
    "OperationalError",
    "constraint failed",
    "SELECT ",
    "INSERT INTO",
    "UPDATE ",
    "syntax error",
)


@contextmanager
def quiver_serving(directory: Path, resources: str) -> Iterator[httpx.Client]:
    """A real ``quiver serve`` of ``resources`` on a fresh database, and a client for it."""
    text = "listen: 127.0.0.1:0\nresources_db: {db}\n".format(db=directory / "resources.db")
    config = write_config(directory, text + textwrap.dedent(resources))
    with serving(config, cwd=directory) as proc:
        base = f"http://127.0.0.1:{proc.port}"
        with httpx.Client(base_url=base, timeout=15.0) as client:
            yield client


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with quiver_serving(tmp_path_factory.mktemp("crud"), SPEC_RESOURCES) as client:
        yield client


def unique(prefix: str = "n") -> str:
    """A name no other test uses: the module's server is shared."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def send(
    client: httpx.Client,
    method: str,
    url: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> httpx.Response:
    """One request with a JSON (or raw) body; every answer is checked for leaks."""
    fields = dict(headers or {})
    content: bytes | None = raw
    if body is not None:
        content = json.dumps(body).encode()
    if content is not None:
        fields.setdefault("Content-Type", content_type)
    response = client.request(method, url, content=content, headers=fields)
    assert_no_leak(response)
    return response


def assert_no_leak(response: httpx.Response) -> None:
    """No 500 and none of the database's or the runtime's words in any answer."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    for marker in LEAKS:
        assert marker not in response.text, (marker, response.text[:500])


def media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";")[0].strip().lower()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document for ``status``, tied to the request by its id."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert media_type(response) == PROBLEM, response.headers.get("content-type")
    problem = response.json()
    assert isinstance(problem, dict), problem
    for member in ("type", "title", "detail"):
        assert isinstance(problem.get(member), str) and problem[member], (member, problem)
    # RFC 9457 §3.1.1: the type is a URI reference
    assert URI_REFERENCE.match(problem["type"]), problem["type"]
    assert problem.get("status") == status, problem
    request_id = response.headers.get("x-request-id")
    assert request_id, "an error carries the request's id"
    assert request_id in response.text, "the problem names the request it answers"
    assert_no_leak(response)
    return problem


def pointers(problem: dict[str, Any]) -> set[str]:
    """The RFC 6901 pointers of a problem's ``errors`` (RFC 9457 §3's example), in their
    JSON string form: a URI fragment form (``#/age``) is decoded to it."""
    errors = problem.get("errors")
    assert isinstance(errors, list) and errors, problem
    found = set()
    for error in errors:
        pointer = error["pointer"]
        assert isinstance(pointer, str)
        if pointer.startswith("#"):
            pointer = unquote(pointer[1:])
        assert pointer == "" or pointer.startswith("/"), pointer
        found.add(pointer)
    return found


def assert_strong_etag(response: httpx.Response) -> str:
    tag: str | None = response.headers.get("etag")
    assert tag is not None, f"{response.request.method} {response.request.url} has no ETag"
    assert STRONG_ETAG.match(tag), f"not a strong entity-tag: {tag!r}"
    return tag


def create(client: httpx.Client, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = send(client, "POST", url, body)
    assert response.status_code == 201, response.text
    item = response.json()
    assert isinstance(item, dict)
    return item


def new_item(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": unique(), "price": 10}
    body.update(fields)
    return create(client, "/items", body)


def timestamp(value: Any) -> datetime:
    assert isinstance(value, str), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_past(moment: datetime) -> None:
    """Let the wall clock pass ``moment`` by a millisecond, the timestamps' precision."""
    target = moment + timedelta(milliseconds=2)
    if target.tzinfo is None:
        target = target.replace(tzinfo=UTC)
    while datetime.now(UTC) <= target:
        time.sleep(0.001)


# --- create and read -------------------------------------------------------------------


def test_create_answers_201_with_a_location_that_resolves_to_the_item(
    api: httpx.Client,
) -> None:
    name = unique()
    response = send(api, "POST", "/items", {"name": name, "price": 2.5, "tags": ["a", "b"]})
    assert response.status_code == 201
    assert media_type(response) == "application/json"
    created = response.json()
    assert created["name"] == name and created["price"] == 2.5
    assert created["tags"] == ["a", "b"]
    assert isinstance(created["id"], int)
    location = response.headers.get("location")
    assert location, "RFC 9110 §15.3.2: a 201 names the created resource in Location"
    fetched = send(api, "GET", urljoin(str(response.request.url), location))
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.headers["etag"] == assert_strong_etag(response)


def test_create_applies_the_declared_default(api: httpx.Client) -> None:
    assert new_item(api)["status"] == "draft"
    assert new_item(api, status="active")["status"] == "active"


def test_timestamps_are_set_on_create_and_updated_on_every_write(api: httpx.Client) -> None:
    item = new_item(api)
    created_at, updated_at = timestamp(item["created_at"]), timestamp(item["updated_at"])
    assert updated_at >= created_at
    url = f"/items/{item['id']}"
    for method, body, content_type in (
        ("PUT", {"name": item["name"], "price": 11}, "application/json"),
        ("PATCH", {"price": 12}, MERGE_PATCH),
        ("PATCH", [{"op": "replace", "path": "/price", "value": 13}], JSON_PATCH),
    ):
        wait_past(updated_at)
        response = send(api, method, url, body, content_type=content_type)
        assert response.status_code in (200, 204), (method, response.text)
        current = send(api, "GET", url).json()
        assert timestamp(current["created_at"]) == created_at, method
        assert timestamp(current["updated_at"]) > updated_at, method
        updated_at = timestamp(current["updated_at"])


def test_get_of_an_item_that_does_not_exist_is_a_404_problem(api: httpx.Client) -> None:
    assert_problem(send(api, "GET", "/items/987654321"), 404)


def test_the_store_owned_members_cannot_be_set_by_a_create(api: httpx.Client) -> None:
    # the key is assigned by the store ("auto integer"): a client-chosen id that is taken
    # is ignored or refused, and the item holding it is never overwritten
    first = new_item(api)
    response = send(api, "POST", "/items", {"id": first["id"], "name": unique(), "price": 1})
    if response.status_code == 201:
        assert response.json()["id"] != first["id"]
    else:
        assert_problem(response, response.status_code)
    assert send(api, "GET", f"/items/{first['id']}").json() == first


# --- replace ---------------------------------------------------------------------------


def test_put_replaces_the_whole_item(api: httpx.Client) -> None:
    item = new_item(api, tags=["x"], status="active")
    url = f"/items/{item['id']}"
    response = send(api, "PUT", url, {"name": item["name"], "price": 3})
    assert response.status_code in (200, 204)
    current = send(api, "GET", url)
    body = current.json()
    assert body["price"] == 3
    # RFC 9110 §9.3.4: the state is replaced; a member left out is gone or defaulted
    assert body.get("tags") is None
    assert body["status"] == "draft"
    assert body["id"] == item["id"]
    if response.status_code == 200:
        assert response.json() == body
        assert response.headers.get("etag") == current.headers["etag"]


def test_put_of_an_invalid_item_is_refused_and_changes_nothing(api: httpx.Client) -> None:
    item = new_item(api)
    url = f"/items/{item['id']}"
    problem = assert_problem(send(api, "PUT", url, {"name": item["name"]}), 422)
    assert "/price" in pointers(problem)
    assert send(api, "GET", url).json() == item


def test_put_to_an_item_that_does_not_exist_is_a_404(api: httpx.Client) -> None:
    # keys are assigned by the store, so PUT cannot create (json-server answers 404 too)
    assert_problem(send(api, "PUT", "/items/987654322", {"name": unique(), "price": 1}), 404)


def fetch(client: httpx.Client, item: dict[str, Any]) -> dict[str, Any]:
    response = send(client, "GET", f"/items/{item['id']}")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    return body


# --- delete ----------------------------------------------------------------------------


def test_delete_answers_204_and_the_item_is_gone(api: httpx.Client) -> None:
    item = new_item(api)
    url = f"/items/{item['id']}"
    response = send(api, "DELETE", url)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(send(api, "GET", url), 404)
    assert_problem(send(api, "DELETE", url), 404)


# --- bulk create -----------------------------------------------------------------------


def total(client: httpx.Client) -> int:
    response = send(client, "GET", "/items?count=true&limit=1")
    assert response.status_code == 200
    return int(response.headers["x-total-count"])


def test_bulk_create_answers_201_with_every_item(api: httpx.Client) -> None:
    names = [unique(), unique(), unique()]
    response = send(api, "POST", "/items", [{"name": n, "price": i} for i, n in enumerate(names)])
    assert response.status_code == 201
    items = response.json()
    assert isinstance(items, list)
    assert [item["name"] for item in items] == names
    assert len({item["id"] for item in items}) == 3
    for item in items:
        assert item["status"] == "draft"
        assert fetch(api, item) == item


def test_bulk_create_is_all_or_nothing_with_pointers_to_the_bad_item(api: httpx.Client) -> None:
    before = total(api)
    good, bad = {"name": unique(), "price": 1}, {"name": "", "price": -1}
    problem = assert_problem(send(api, "POST", "/items", [good, bad]), 422)
    # RFC 6901 pointers into the document sent: the second element's members
    assert pointers(problem) == {"/1/name", "/1/price"}
    assert total(api) == before
    assert send(api, "GET", f"/items?name={good['name']}").json() == []


def test_bulk_create_with_a_unique_clash_inside_the_batch_creates_nothing(
    api: httpx.Client,
) -> None:
    before = total(api)
    name = unique()
    response = send(api, "POST", "/items", [{"name": name, "price": 1}, {"name": name, "price": 2}])
    assert_problem(response, 409)
    assert total(api) == before


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "", "price": 1}, "/name"),  # minLength
        ({"name": "x" * 61, "price": 1}, "/name"),  # maxLength
        ({"name": "ok", "price": -0.01}, "/price"),  # minimum
        ({"name": "ok", "price": 1, "status": "gone"}, "/status"),  # enum
        ({"name": "ok", "price": "1"}, "/price"),  # type number
        ({"name": 5, "price": 1}, "/name"),  # type string
        ({"name": "ok", "price": True}, "/price"),  # a boolean is not a number
        ({"name": "ok", "price": 1, "tags": "a"}, "/tags"),  # type array
        ({"name": "ok", "price": 1, "tags": ["a", 2]}, "/tags/1"),  # items type
        ({"price": 1}, "/name"),  # required
        ({"name": "ok"}, "/price"),  # required
    ],
)
def test_an_invalid_field_is_a_422_pointing_at_it(
    api: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    if isinstance(body.get("name"), str) and body["name"] == "ok":
        body = {**body, "name": unique()}
    problem = assert_problem(send(api, "POST", "/items", body), 422)
    assert pointers(problem) == {pointer}


def test_every_invalid_field_gets_its_own_pointer(api: httpx.Client) -> None:
    body = {"name": "", "price": -1, "status": "gone", "tags": [1]}
    problem = assert_problem(send(api, "POST", "/items", body), 422)
    assert pointers(problem) == {"/name", "/price", "/status", "/tags/0"}
    for error in problem["errors"]:
        assert isinstance(error.get("detail"), str) and error["detail"]


def test_string_lengths_count_characters_not_bytes(api: httpx.Client) -> None:
    # JSON Schema 2020-12 validation §6.3.1: the length is in characters (code points)
    sixty = "🎉" * 59 + uuid.uuid4().hex[:1]
    created = create(api, "/items", {"name": sixty, "price": 1})
    assert created["name"] == sixty
    assert_problem(send(api, "POST", "/items", {"name": "é" * 61, "price": 1}), 422)


def test_unicode_round_trips_exactly(api: httpx.Client) -> None:
    name = f"Zoë 名前 🎉 {uuid.uuid4().hex[:6]} \u202e\u0000end"
    item = create(api, "/items", {"name": name, "price": 1, "tags": ["ünï", "🐍"]})
    assert fetch(api, item)["name"] == name
    assert fetch(api, item)["tags"] == ["ünï", "🐍"]


def test_a_taken_unique_value_is_a_409_pointing_at_the_field(api: httpx.Client) -> None:
    item = new_item(api)
    problem = assert_problem(send(api, "POST", "/items", {"name": item["name"], "price": 1}), 409)
    assert pointers(problem) == {"/name"}
    other = new_item(api)
    url = f"/items/{other['id']}"
    clash = send(api, "PATCH", url, {"name": item["name"]}, content_type=MERGE_PATCH)
    assert pointers(assert_problem(clash, 409)) == {"/name"}
    clash = send(api, "PUT", url, {"name": item["name"], "price": 1})
    assert pointers(assert_problem(clash, 409)) == {"/name"}
    assert fetch(api, other) == other


# --- nested routes ---------------------------------------------------------------------


def new_event(client: httpx.Client) -> dict[str, Any]:
    return create(client, "/events", {"title": unique("event")})


def test_a_guest_is_created_under_its_event(api: httpx.Client) -> None:
    event = new_event(api)
    email = f"{unique('g')}@example.com"
    response = send(api, "POST", f"/events/{event['id']}/guests", {"email": email})
    assert response.status_code == 201
    guest = response.json()
    assert guest["email"] == email and guest["event_id"] == event["id"]
    location = response.headers["location"]
    fetched = send(api, "GET", urljoin(str(response.request.url), location))
    assert fetched.status_code == 200 and fetched.json() == guest
    assert fetched.url.path == f"/events/{event['id']}/guests/{guest['id']}"
    listed = send(api, "GET", f"/events/{event['id']}/guests")
    assert listed.json() == [guest]


def test_guests_of_an_event_that_does_not_exist_are_404(api: httpx.Client) -> None:
    missing = "/events/987654321/guests"
    assert_problem(send(api, "GET", missing), 404)
    assert_problem(send(api, "POST", missing, {"email": "a@example.com"}), 404)
    assert_problem(send(api, "GET", f"{missing}/1"), 404)


def test_a_guest_is_not_reachable_under_another_event(api: httpx.Client) -> None:
    first, second = new_event(api), new_event(api)
    guest = create(api, f"/events/{first['id']}/guests", {"email": "a@example.com"})
    wrong = f"/events/{second['id']}/guests/{guest['id']}"
    assert_problem(send(api, "GET", wrong), 404)
    assert_problem(send(api, "PUT", wrong, {"email": "b@example.com"}), 404)
    assert_problem(
        send(api, "PATCH", wrong, {"email": "b@example.com"}, content_type=MERGE_PATCH), 404
    )
    assert_problem(send(api, "DELETE", wrong), 404)
    assert send(api, "GET", f"/events/{second['id']}/guests").json() == []
    right = send(api, "GET", f"/events/{first['id']}/guests/{guest['id']}")
    assert right.json() == guest


def test_a_guest_cannot_be_moved_to_another_event_through_its_body(api: httpx.Client) -> None:
    # the parent comes from the path; a body naming another parent is ignored or refused
    first, second = new_event(api), new_event(api)
    response = send(
        api,
        "POST",
        f"/events/{first['id']}/guests",
        {"email": "c@example.com", "event_id": second["id"]},
    )
    if response.status_code == 201:
        assert response.json()["event_id"] == first["id"]
    else:
        assert_problem(response, response.status_code)
    assert send(api, "GET", f"/events/{second['id']}/guests").json() == []


def test_deleting_an_event_deletes_its_guests(api: httpx.Client) -> None:
    event = new_event(api)
    guests = f"/events/{event['id']}/guests"
    guest = create(api, guests, {"email": "d@example.com"})
    other = new_event(api)
    kept = create(api, f"/events/{other['id']}/guests", {"email": "e@example.com"})
    assert send(api, "DELETE", f"/events/{event['id']}").status_code == 204
    assert_problem(send(api, "GET", guests), 404)
    assert_problem(send(api, "GET", f"{guests}/{guest['id']}"), 404)
    assert send(api, "GET", f"/events/{other['id']}/guests/{kept['id']}").json() == kept


def test_a_guest_email_must_be_an_email(api: httpx.Client) -> None:
    event = new_event(api)
    response = send(api, "POST", f"/events/{event['id']}/guests", {"email": "not an email"})
    assert pointers(assert_problem(response, 422)) == {"/email"}
    response = send(api, "POST", f"/events/{event['id']}/guests", {})
    assert pointers(assert_problem(response, 422)) == {"/email"}


@pytest.mark.parametrize("member", ["status", "tags", "name", "price"])
def test_a_null_is_not_a_value_of_a_typed_field(api: httpx.Client, member: str) -> None:
    # the fields are JSON Schema (and the OpenAPI document served says so): "type: string"
    # or "array" does not admit null, so a null is refused, never stored as "no value"
    # past the type, the enum and the default; a client meaning "no value" leaves it out
    body: dict[str, Any] = {"name": unique(), "price": 1, member: None}
    problem = assert_problem(send(api, "POST", "/items", body), 422)
    assert pointers(problem) == {f"/{member}"}


def test_the_store_keeps_its_own_members_on_a_replacement(api: httpx.Client) -> None:
    # created_at, updated_at and the key are maintained by the store: a PUT naming other
    # values (a client copying back an old representation) cannot set them
    item = new_item(api)
    url = f"/items/{item['id']}"
    body = {
        **item,
        "price": 77,
        "id": item["id"] + 1000,
        "created_at": "2000-01-01T00:00:00.000Z",
        "updated_at": "2000-01-01T00:00:00.000Z",
    }
    response = send(api, "PUT", url, body)
    current = send(api, "GET", url).json()
    if response.status_code in (200, 204):
        assert current["id"] == item["id"]
        assert current["created_at"] == item["created_at"]
        assert timestamp(current["updated_at"]) >= timestamp(item["updated_at"])
    else:
        assert_problem(response, response.status_code)
        assert current == item


def test_a_guest_stays_under_its_event_whatever_a_write_says(api: httpx.Client) -> None:
    first, second = new_event(api), new_event(api)
    url = f"/events/{first['id']}/guests"
    guest = create(api, url, {"email": "f@example.com"})
    item_url = f"{url}/{guest['id']}"
    for method, body, content_type in (
        ("PUT", {"email": "g@example.com", "event_id": second["id"]}, "application/json"),
        ("PATCH", {"event_id": second["id"]}, MERGE_PATCH),
        ("PATCH", [{"op": "replace", "path": "/event_id", "value": second["id"]}], JSON_PATCH),
    ):
        response = send(api, method, item_url, body, content_type=content_type)
        if response.status_code >= 400:
            assert_problem(response, response.status_code)
        assert send(api, "GET", item_url).json()["event_id"] == first["id"], method
    assert send(api, "GET", f"/events/{second['id']}/guests").json() == []


def test_guest_lists_take_filters_and_refuse_unknown_parameters(api: httpx.Client) -> None:
    event = new_event(api)
    url = f"/events/{event['id']}/guests"
    wanted = create(api, url, {"email": "h@example.com"})
    create(api, url, {"email": "i@example.org"})
    found = send(api, "GET", f"{url}?email[like]=%25.com&count=true")
    assert found.json() == [wanted]
    assert found.headers.get("x-total-count") == "1"
    assert_problem(send(api, "GET", f"{url}?colour=red"), 400)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_query_parameters_on_writes_are_not_ignored(api: httpx.Client, method: str) -> None:
    # "unknown query parameters are errors, not silently ignored"
    item = new_item(api)
    target = "/items?colour=red" if method == "POST" else f"/items/{item['id']}?colour=red"
    body = {"name": unique(), "price": 1} if method != "DELETE" else None
    assert_problem(send(api, method, target, body), 400)
    assert fetch(api, item) == item


@pytest.mark.parametrize("content_type", ["application/json", MERGE_PATCH, JSON_PATCH])
def test_an_empty_write_body_is_a_400(api: httpx.Client, content_type: str) -> None:
    item = new_item(api)
    method = "PUT" if content_type == "application/json" else "PATCH"
    response = send(api, method, f"/items/{item['id']}", raw=b"", content_type=content_type)
    assert_problem(response, 400)
    assert fetch(api, item) == item


def test_a_path_that_is_no_resource_is_a_404_problem(api: httpx.Client) -> None:
    assert_problem(send(api, "GET", "/itemz"), 404)
    assert_problem(send(api, "GET", "/guests"), 404)


def test_an_empty_bulk_create_creates_nothing(api: httpx.Client) -> None:
    before = total(api)
    response = send(api, "POST", "/items", [])
    if response.status_code == 201:
        assert response.json() == []
    else:
        assert_problem(response, response.status_code)
        assert response.status_code in (400, 422)
    assert total(api) == before


def test_a_large_bulk_create_is_kept_whole(api: httpx.Client) -> None:
    before = total(api)
    prefix = unique("bulk")
    body = [{"name": f"{prefix}-{n}", "price": n} for n in range(1000)]
    response = send(api, "POST", "/items", body)
    assert response.status_code == 201
    assert len(response.json()) == 1000
    assert total(api) == before + 1000


def test_a_chunked_body_is_read_whole(api: httpx.Client) -> None:
    # RFC 9112 §7.1: chunked transfer coding is part of HTTP/1.1
    body = json.dumps({"name": unique(), "price": 4}).encode()
    chunks = iter([body[:7], body[7:]])
    response = api.post("/items", content=chunks, headers={"Content-Type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["price"] == 4


def test_a_bulk_create_under_an_event_makes_guests_of_that_event(api: httpx.Client) -> None:
    event = new_event(api)
    url = f"/events/{event['id']}/guests"
    emails = ["j@example.com", "k@example.com"]
    response = send(api, "POST", url, [{"email": e} for e in emails])
    assert response.status_code == 201
    guests = response.json()
    assert [(g["email"], g["event_id"]) for g in guests] == [(e, event["id"]) for e in emails]
    assert send(api, "GET", f"{url}?sort=id").json() == guests
