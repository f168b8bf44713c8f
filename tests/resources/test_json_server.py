"""``quiver resources serve db.json``: json-server 0.17's API, through real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from quiver.resources.jsonserver.infer import DbJsonError, read_db, singular
from tests.resources.conftest import Api
from tests.support.problems import assert_problem
from tests.support.process import QuiverProcess, run_quiver

pytestmark = pytest.mark.timeout(60)

DB: dict[str, Any] = {
    "posts": [
        {"id": 1, "title": "json-server", "author": "typicode", "views": 100, "published": True},
        {"id": 2, "title": "Quiver gateway", "author": "someone", "views": 5, "published": False},
        {"id": 3, "title": "third post", "author": "typicode", "views": 42, "published": True},
    ],
    "comments": [
        {"id": 1, "body": "some comment", "postId": 1},
        {"id": 2, "body": "Another one", "postId": 1},
        {"id": 3, "body": "on two", "postId": 2},
    ],
    "profile": {"name": "typicode"},
}


@contextmanager
def json_server(directory: Path, document: Any = None) -> Iterator[tuple[QuiverProcess, Api]]:
    """``quiver resources serve db.json --port 0`` in ``directory`` (db.json written
    there first when ``document`` is given)."""
    db_json = directory / "db.json"
    if document is not None:
        db_json.write_text(json.dumps(document))
    with QuiverProcess(["resources", "serve", str(db_json), "--port", "0"]) as proc:
        proc.wait_listening()
        api = Api(proc.port)
        try:
            yield proc, api
        finally:
            api.client.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """One server of DB for the tests that leave its data as they found it: its
    directory and port."""
    directory = tmp_path_factory.mktemp("served")
    with json_server(directory, DB) as (proc, client):
        client.client.close()
        yield directory, proc.port


@pytest.fixture
def api(served: tuple[Path, int]) -> Iterator[Api]:
    """A connection of its own to the shared server, whose data must be DB again after
    the test (so that no test depends on the order they run in)."""
    client = Api(served[1])
    yield client
    client.client.close()
    check = Api(served[1])
    try:
        assert check("GET", "/db").json() == DB, "a test changed the shared server's data"
    finally:
        check.client.close()


@pytest.fixture
def fresh_api(tmp_path: Path) -> Iterator[Api]:
    """A server of DB of its own, for a test that changes the data."""
    with json_server(tmp_path, DB) as (_, client):
        yield client


def ids(response: Any) -> list[Any]:
    assert response.status == 200, response.body
    return [item["id"] for item in response.json()]


def test_serves_collections_documents_and_the_database_as_db_json_has_them(
    api: Api, served: tuple[Path, int]
) -> None:
    assert api("GET", "/posts").json() == DB["posts"]
    assert api("GET", "/posts/2").json() == DB["posts"][1]
    assert api("GET", "/profile").json() == DB["profile"]
    assert api("GET", "/db").json() == DB
    assert (served[0] / "db.quiver.sqlite").is_file()


def test_pages_carry_the_total_and_first_prev_next_last_links(api: Api) -> None:
    response = api("GET", "/posts?_page=2&_limit=1")
    assert ids(response) == [2]
    assert response.header("X-Total-Count") == "3"
    links = (response.header("Link") or "").split(", ")
    host = "http://test.local"  # the Host the request named
    expected = [("first", 1), ("prev", 1), ("next", 3), ("last", 3)]
    assert links == [f'<{host}/posts?_limit=1&_page={n}>; rel="{rel}"' for rel, n in expected]
    assert ids(api("GET", "/posts?_page=1")) == [1, 2, 3]  # 10 a page by default


def test_slices_with_start_end_and_limit(api: Api) -> None:
    response = api("GET", "/posts?_start=1&_end=3")
    assert ids(response) == [2, 3]
    assert response.header("X-Total-Count") == "3"
    assert ids(api("GET", "/posts?_start=1&_limit=1")) == [2]
    assert ids(api("GET", "/posts?_limit=2")) == [1, 2]
    assert api("GET", "/posts").header("X-Total-Count") is None


def test_sorts_by_several_fields_each_in_its_order(api: Api) -> None:
    assert ids(api("GET", "/posts?_sort=views")) == [2, 3, 1]
    assert ids(api("GET", "/posts?_sort=author,views&_order=desc,asc")) == [3, 1, 2]
    assert ids(api("GET", "/posts?_sort=nothing")) == [1, 2, 3]
    assert ids(api("GET", "/posts?_sort=-views")) == [1, 3, 2]  # json-server 1.0's form


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("views_gte=42", [1, 3]),
        ("views_lte=42", [2, 3]),
        ("author_ne=typicode", [2]),
        ("title_like=^q", [2]),  # a case-insensitive regular expression
        ("title_like=post|server", [1, 3]),
        ("id=1&id=3", [1, 3]),  # repeated: any of them
        ("author=typicode&views=42", [3]),
        ("published=true", [1, 3]),
        ("q=GATEWAY", [2]),  # any value, ignoring case
        ("q=42", [3]),
        ("nothing=1", [1, 2, 3]),  # no item has the field: ignored
        ("_whatever=1", [1, 2, 3]),
        ("nothing_gte=1", []),
        ("views_gte=99999999999999999999999", []),
    ],
)
def test_filters_as_json_server(api: Api, query: str, expected: list[int]) -> None:
    assert ids(api("GET", f"/posts?{query}")) == expected


def test_nested_routes_list_and_create_by_the_foreign_key(fresh_api: Api) -> None:
    assert ids(fresh_api("GET", "/posts/1/comments")) == [1, 2]
    created = fresh_api("POST", "/posts/2/comments", {"body": "new"})
    assert (created.status, created.header("Location")) == (201, "/comments/4")
    assert created.json() == {"id": 4, "body": "new", "postId": 2}
    assert ids(fresh_api("GET", "/comments?postId=2")) == [3, 4]
    assert ids(fresh_api("GET", "/posts/2/comments?_sort=id&_order=desc")) == [4, 3]


def test_embed_children_and_expand_the_parent(api: Api) -> None:
    post = api("GET", "/posts/1?_embed=comments").json()
    assert [comment["id"] for comment in post["comments"]] == [1, 2]
    comments = api("GET", "/comments?_expand=post&postId=2").json()
    assert comments == [{**DB["comments"][2], "post": DB["posts"][1]}]
    listed = api("GET", "/posts?_embed=comments&id=3").json()
    assert listed == [{**DB["posts"][2], "comments": []}]
    both = api("GET", "/comments/3?_expand=post&_embed=nothing").json()
    assert both == {**DB["comments"][2], "post": DB["posts"][1]}


def test_create_takes_the_next_id_or_a_free_given_one(fresh_api: Api) -> None:
    created = fresh_api("POST", "/posts", {"title": "four", "views": 0})
    assert created.status == 201
    assert created.json() == {"id": 4, "title": "four", "views": 0}
    assert created.header("Location") == "/posts/4"
    assert fresh_api("POST", "/posts", {"id": 10, "title": "ten"}).json()["id"] == 10
    assert fresh_api("POST", "/posts", {"title": "next"}).json()["id"] == 11
    problem = assert_problem(fresh_api("POST", "/posts", {"id": 10, "title": "again"}), 409)
    assert "/id" in problem["detail"]


def test_put_replaces_patch_merges_and_delete_takes_the_children(fresh_api: Api) -> None:
    replaced = fresh_api("PUT", "/posts/1", {"id": 99, "title": "replaced"})
    assert replaced.json() == {"id": 1, "title": "replaced"}
    patched = fresh_api("PATCH", "/posts/2", {"views": 6})  # plain application/json
    assert patched.json() == {**DB["posts"][1], "views": 6}
    cleared = fresh_api("PATCH", "/posts/2", {"author": None})  # a typed field keeps null too
    assert cleared.json() == {**DB["posts"][1], "views": 6, "author": None}
    assert ids(fresh_api("GET", "/posts?author=someone")) == []
    deleted = fresh_api("DELETE", "/posts/1")
    assert (deleted.status, deleted.json()) == (200, {})
    assert_problem(fresh_api("GET", "/posts/1"), 404)
    assert ids(fresh_api("GET", "/comments")) == [3]


def test_a_singular_document_is_replaced_and_merged(fresh_api: Api) -> None:
    replaced = fresh_api("PUT", "/profile", {"name": "new", "age": 3})
    assert replaced.json() == {"name": "new", "age": 3}
    assert fresh_api("PATCH", "/profile", {"age": 4}).json() == {"name": "new", "age": 4}
    assert fresh_api("GET", "/db").json()["profile"] == {"name": "new", "age": 4}
    assert_problem(fresh_api("PUT", "/profile", [1]), 422)
    bare = fresh_api.client.request("POST", "/posts", {"Content-Length": "15"}, b'{"title": "ok"}')
    assert (bare.status, bare.json()["title"]) == (201, "ok")


def test_a_restart_keeps_the_data_and_snapshot_prints_it(tmp_path: Path) -> None:
    with json_server(tmp_path, DB) as (_, api):
        assert api("POST", "/comments", {"body": "kept", "postId": 3}).status == 201
        assert api("DELETE", "/posts/2").status == 200
    with json_server(tmp_path) as (proc, api):
        assert ids(api("GET", "/comments")) == [1, 2, 4]
        assert ids(api("GET", "/posts")) == [1, 3]
        assert "serving the data kept in" in proc.stderr
    printed = run_quiver("resources", "snapshot", str(tmp_path / "db.json"))
    assert printed.returncode == 0, printed.stderr
    snapshot = json.loads(printed.stdout)
    assert list(snapshot) == ["posts", "comments", "profile"]
    assert [comment["body"] for comment in snapshot["comments"]][-1] == "kept"


def test_string_ids_are_kept_and_made_on_create(tmp_path: Path) -> None:
    users = {"users": [{"id": "a1", "name": "ann"}, {"id": "b2", "name": "bob"}]}
    with json_server(tmp_path, users) as (_, api):
        assert api("GET", "/users/a1").json() == users["users"][0]
        created = api("POST", "/users", {"name": "cy"}).json()
        assert isinstance(created["id"], str) and created["id"] not in ("a1", "b2")
        assert api("GET", f"/users/{created['id']}").json() == created
        assert_problem(api("POST", "/users", {"id": "a1", "name": "again"}), 409)
        assert ids(api("GET", "/users?id=b2")) == ["b2"]
        assert [user["id"] for user in api("GET", "/db").json()["users"]] == [
            "a1",
            "b2",
            created["id"],
        ]
        assert api("PATCH", "/users/b2", {"name": "ÉLODIE"}).status == 200
        assert ids(api("GET", "/users?q=%C3%A9lodie")) == ["b2"]  # case ignored beyond ASCII


def test_mixed_and_null_fields_take_any_value(tmp_path: Path) -> None:
    things = {"things": [{"id": 1, "size": 3, "tag": None}, {"id": 2, "size": "big", "tag": "x"}]}
    with json_server(tmp_path, things) as (_, api):
        assert api("GET", "/things").json() == things["things"]  # nulls kept
        cleared = api("PATCH", "/things/2", {"tag": None}).json()
        assert cleared == {"id": 2, "size": "big", "tag": None}
        assert api("POST", "/things", {"size": [1, 2], "tag": {"a": 1}}).status == 201
        assert ids(api("GET", "/things?size=big")) == [2]
        # as JavaScript compares "2" with each value: 3 >= 2, "big" >= "2" as text
        assert ids(api("GET", "/things?size_gte=2")) == [1, 2]
        assert ids(api("GET", "/things?size_lte=3")) == [1]
        assert ids(api("GET", "/things?tag.a=1")) == [3]
        assert ids(api("GET", "/things?tag_ne=x")) == [3]  # a null has no text to differ


def test_fields_that_cannot_be_columns_are_kept_and_filtered(tmp_path: Path) -> None:
    people = {
        "people": [
            {"id": 1, "first-name": "Ann", "name": "a", "Name": "A", "tags": ["red"]},
            {"id": 2, "first-name": "Bob", "name": "b", "Name": "B", "tags": ["blue"]},
        ]
    }
    with json_server(tmp_path, people) as (_, api):
        assert api("GET", "/people").json() == people["people"]
        assert ids(api("GET", "/people?first-name=Bob")) == [2]
        assert ids(api("GET", "/people?Name_like=a")) == [1]
        assert ids(api("GET", "/people?q=RED")) == [1]  # values inside arrays
        assert ids(api("GET", "/people?q=first")) == []  # never the names of fields


def test_fields_db_json_did_not_have_are_kept_filtered_and_sorted(tmp_path: Path) -> None:
    document = {"posts": [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}], "comments": []}
    with json_server(tmp_path, document) as (_, api):
        first = api("POST", "/comments", {"body": "hi", "postId": 1, "note": None})
        assert (first.status, first.json()) == (
            201,
            {"id": 1, "body": "hi", "postId": 1, "note": None},
        )
        assert api("POST", "/posts/1/comments", {"body": "yo"}).json()["postId"] == 1
        assert api("POST", "/comments", {"body": "elsewhere", "postId": 2}).status == 201
        patched = api("PATCH", "/posts/1", {"tags": ["x"]}).json()
        assert patched == {"id": 1, "title": "a", "tags": ["x"]}
        assert ids(api("GET", "/comments?postId=1")) == [1, 2]
        assert ids(api("GET", "/posts/2/comments")) == [3]
        assert ids(api("GET", "/comments?body_like=^h")) == [1]
        assert ids(api("GET", "/comments?_sort=body&_order=desc")) == [2, 1, 3]
        assert ids(api("GET", "/comments?nothing=1")) == [1, 2, 3]
        assert ids(api("GET", "/comments?q=ELSE")) == [3]
        embedded = api("GET", "/posts/1?_embed=comments").json()
        assert [comment["id"] for comment in embedded["comments"]] == [1, 2]
        assert api("GET", "/comments/3?_expand=post").json()["post"]["title"] == "b"
        replaced = api("PUT", "/comments/3", {"body": "only"}).json()
        assert replaced == {"id": 3, "body": "only"}
        assert api("DELETE", "/posts/1").status == 200
        assert ids(api("GET", "/comments")) == [3]
        assert api("GET", "/openapi/resources.json").status == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/posts", b"{not json", 400),
        ("POST", "/posts", {"views": "many"}, 422),  # views holds integers
        ("POST", "/posts", {"title": 3}, 422),
        ("POST", "/posts", [{"title": "a list"}], 422),
        ("PATCH", "/posts/1", [1], 422),
        ("POST", "/posts", b'{"views": 18446744073709551615}', 422),
        ("POST", "/posts", b'{"id": 18446744073709551615}', 422),
        ("GET", "/posts?_page=x", None, 400),
        ("GET", "/posts?_page=9999999999&_limit=999999999", None, 400),
        ("GET", "/posts?views_gte=x", None, 400),
        ("GET", "/posts?title_like=(", None, 400),
        ("GET", "/posts/999", None, 404),
        ("GET", "/posts/x", None, 404),
        ("DELETE", "/posts", None, 405),
        ("PUT", "/posts/1", "text", 415),
        ("POST", "/posts", "bare", 400),  # no Content-Type: read as JSON, as json-server
        ("PUT", "/profile", b"[1", 400),
    ],
)
def test_bad_input_is_a_problem_document(
    api: Api, method: str, path: str, body: Any, status: int
) -> None:
    if body == "text":
        response = api(method, path, b"title", content_type="text/plain")
    elif body == "bare":
        response = api.client.request(method, path, {"Content-Length": "5"}, b"{oops")
    else:
        response = api(method, path, body)
    assert_problem(response, status)


def test_every_origin_may_read_as_in_json_server(api: Api) -> None:
    response = api("GET", "/posts?_page=1", headers={"Origin": "http://localhost:5173"})
    assert response.header("Access-Control-Allow-Origin") in ("*", "http://localhost:5173")
    assert "X-Total-Count" in (response.header("Access-Control-Expose-Headers") or "")


def test_no_cors_sends_no_cors_headers(tmp_path: Path) -> None:
    db_json = tmp_path / "db.json"
    db_json.write_text(json.dumps(DB))
    args = ["resources", "serve", str(db_json), "--port", "0", "--no-cors"]
    with QuiverProcess(args) as proc:
        proc.wait_listening()
        api = Api(proc.port)
        response = api("GET", "/posts", headers={"Origin": "http://localhost:5173"})
        api.client.close()
    assert response.status == 200
    assert response.header("Access-Control-Allow-Origin") is None


def test_snapshot_without_data_says_so(tmp_path: Path) -> None:
    result = run_quiver("resources", "snapshot", str(tmp_path / "db.json"))
    assert result.returncode == 1
    assert "db.quiver.sqlite: no such file" in result.stderr


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"blog-posts": [{"id": 1, "a": 1}]}, '"blog-posts"'),
        ({"posts": [1, 2]}, '"posts"[0]'),
        ({"count": 3}, '"count"'),
        ({"db": [{"id": 1, "a": 1}]}, '"db"'),
        ({"posts": [{"id": 1, "a": 1}, {"id": "x", "a": 2}]}, "all integers or all strings"),
    ],
)
def test_a_db_json_that_cannot_be_served_names_the_key(
    tmp_path: Path, document: Any, named: str
) -> None:
    db_json = tmp_path / "db.json"
    db_json.write_text(json.dumps(document))
    result = run_quiver("resources", "serve", str(db_json), "--port", "0")
    assert result.returncode == 1
    assert named in result.stderr
    assert not (tmp_path / "db.quiver.sqlite").exists()


def test_fields_are_inferred_from_the_items() -> None:
    seed = read_db(
        {
            "posts": [
                {"title": "a", "views": 1, "score": 1, "extra": None, "tags": ["x"]},
                {"title": "b", "views": 2, "score": 2.5, "extra": "y", "tags": []},
            ]
        }
    )
    [posts] = seed.layout.resources
    assert posts.fields == {
        "title": {"type": "string"},
        "views": {"type": "integer"},
        "score": {"type": "number"},
        "extra": {},
        "tags": {"type": "array"},
    }
    assert [item["id"] for item in seed.items["posts"]] == [1, 2]  # given as on create
    with pytest.raises(DbJsonError, match="repeats id"):
        read_db({"posts": [{"id": 1, "a": 1}, {"id": 1, "a": 2}]})


@pytest.mark.parametrize(
    ("plural", "expected"),
    [("posts", "post"), ("categories", "category"), ("addresses", "address"), ("boxes", "box")],
)
def test_singular_names_follow_regular_plurals(plural: str, expected: str) -> None:
    assert singular(plural) == expected
