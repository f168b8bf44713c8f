"""The resources' OpenAPI document: example values built from fields, then the
document of a resource with every kind of field, checked against a running proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from quiver.resources.examples import example_item, example_value
from tests.resources.conftest import Api
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"type": "string", "enum": ["b", "a"], "default": "a"}, "a"),
        ({"type": "string", "format": "email"}, "user@example.com"),
        ({"type": "string", "format": "date-time"}, "2026-01-15T09:30:00Z"),
        ({"type": "string", "format": "uri"}, "https://example.com/"),
        ({"type": "string", "format": "uuid"}, "3fa85f64-5717-4562-b3fc-2c963f66afa6"),
        ({"type": "string", "maxLength": 4}, "exam"),
        ({"type": "string", "minLength": 20}, "example nickname" + "x" * 4),
        ({"type": "string", "pattern": "^[A-Z]+$"}, "EXAMPLE"),
        ({"type": "integer"}, 1),
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "integer", "exclusiveMinimum": 10, "maximum": 20}, 11),
        ({"type": "integer", "maximum": -2.5}, -3),
        ({"type": "number", "minimum": 0}, 9.99),
        ({"type": "number", "exclusiveMaximum": 1}, 0.99),
        ({"type": "boolean"}, True),
        ({"type": "array", "items": {"type": "integer"}}, [1]),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, [1, 1]),
        ({"type": "array", "maxItems": 0}, []),
        ({"type": "object"}, {}),
    ],
)
def test_an_example_value_fits_its_schema(schema: dict[str, Any], expected: Any) -> None:
    value = example_value(schema, "nickname")
    assert value == expected
    assert Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(value)


def test_an_example_item_leaves_out_a_value_it_cannot_make_fit() -> None:
    fields = {
        "code": {"type": "string", "pattern": "^[0-9]{3}-[a-z]{2}$"},
        "n": {"type": "integer"},
    }
    assert example_item(fields) == {"n": 1}


TASKS = """
listen: 127.0.0.1:0
resources_db: {db}
resources:
  - name: tasks
    primary_key: {{name: id, type: uuid}}
    fields:
      title: {{type: string, minLength: 3, maxLength: 20}}
      done: {{type: boolean, default: false}}
      points: {{type: integer, exclusiveMinimum: 10, maximum: 20}}
      due: {{type: string, format: date-time}}
      code: {{type: string, pattern: "^[A-Z]+$"}}
      labels: {{type: array, items: {{type: string, format: email}}, minItems: 2}}
      meta: {{type: object}}
    required: [title, code]
    unique: [title]
    timestamps: true
    limit: {{default: 5, max: 50}}
  - name: notes
    parent: {{resource: tasks, field: task_id}}
    fields: {{text: {{type: string}}}}
    require_if_match: true
"""


@pytest.fixture
def tasks(tmp_path: Path) -> Iterator[Api]:
    with RunningProxy(TASKS.format(db=tmp_path / "tasks.db")) as proxy:
        client = Api(proxy.port)
        yield client
        client.client.close()


def fetch_document(api: Api) -> dict[str, Any]:
    response = api("GET", "/openapi/resources.json")
    assert response.status == 200
    document: dict[str, Any] = response.json()
    return document


def resolved(document: dict[str, Any], node: Any) -> Any:
    """``node`` with every local ``$ref`` replaced by what it names."""
    if isinstance(node, list):
        return [resolved(document, value) for value in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for token in node["$ref"][2:].split("/"):
            target = target[token]
        return resolved(document, target)
    return {key: resolved(document, value) for key, value in node.items()}


def media_examples(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Each example of a request or response body, with its schema and where it is."""
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            if method == "parameters":
                continue
            bodies = [("request", operation.get("requestBody", {}))]
            bodies += [(status, answer) for status, answer in operation["responses"].items()]
            for where, body in bodies:
                for media_type, media in resolved(document, body).get("content", {}).items():
                    values = [media["example"]] if "example" in media else []
                    values += [each["value"] for each in media.get("examples", {}).values()]
                    for value in values:
                        yield f"{method} {path} {where} {media_type}", media["schema"], value


def test_every_example_fits_its_schema(tasks: Api) -> None:
    document = fetch_document(tasks)
    seen = 0
    for where, schema, value in media_examples(document):
        validator = Draft202012Validator(resolved(document, schema), format_checker=FormatChecker())
        assert [error.message for error in validator.iter_errors(value)] == [], where
        seen += 1
    assert seen >= 10


def test_the_create_example_is_an_item_the_server_takes(tasks: Api) -> None:
    document = fetch_document(tasks)
    body = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    created = tasks("POST", "/tasks", body["examples"]["one"]["value"])
    assert created.status == 201, created.body
    assert created.json()["points"] == 11 and created.json()["done"] is False


def test_the_patch_examples_are_patches_the_server_takes(tasks: Api) -> None:
    document = fetch_document(tasks)
    item = tasks("POST", "/tasks", {"title": "ship", "code": "ABC"}).json()
    patches = document["paths"]["/tasks/{id}"]["patch"]["requestBody"]["content"]
    for media_type, media in patches.items():
        patched = tasks("PATCH", f"/tasks/{item['id']}", media["example"], content_type=media_type)
        assert patched.status == 200, (media_type, patched.body)
        assert patched.json()["title"] == "example title"
    merge = resolved(document, patches["application/merge-patch+json"]["schema"])
    assert Draft202012Validator(merge).is_valid({"points": None})
    assert not Draft202012Validator(merge).is_valid({"title": None})  # (required)
    assert not Draft202012Validator(merge).is_valid({"id": item["id"]})
    operations = resolved(document, patches["application/json-patch+json"]["schema"])
    assert not Draft202012Validator(operations).is_valid([{"op": "remove", "path": "tags"}])


def list_parameters(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parameters = document["paths"]["/tasks"]["get"]["parameters"]
    return {parameter["name"]: parameter for parameter in parameters}


def test_each_field_is_filtered_by_the_operators_of_its_type(tasks: Api) -> None:
    parameters = list_parameters(fetch_document(tasks))
    assert parameters["points"]["schema"] == {"type": "integer"}
    assert parameters["done[ne]"]["schema"] == {"type": "boolean"}
    assert parameters["due[in]"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert (parameters["due[in]"]["style"], parameters["due[in]"]["explode"]) == ("form", False)
    assert {"title[like]", "title[ilike]", "points[gte]"} <= set(parameters)
    assert not {"points[like]", "done[lt]", "labels", "meta", "title[op]"} & set(parameters)
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 50}
    assert parameters["count"]["schema"] == {"type": "boolean"}


def test_every_documented_filter_is_taken_with_a_value_of_its_type(tasks: Api) -> None:
    values = {"integer": "12", "boolean": "true", "string": "x", "number": "1.5"}
    for name, parameter in list_parameters(fetch_document(tasks)).items():
        schema = parameter["schema"]
        kind = schema.get("items", schema)["type"]
        value = {"sort": "-points,title", "fields": "id,title", "cursor": ""}.get(
            name, values[kind] if kind != "array" else "x"
        )
        response = tasks("GET", f"/tasks?{quote(name)}={quote(value)}")
        assert response.status == 200, (name, value, response.body)
    # the list's text: the store's own columns filter and sort as fields of their type
    assert tasks("GET", "/tasks?created_at[gt]=2000&sort=-created_at,id").status == 200
    assert tasks("GET", "/tasks?labels[null]=true&meta[null]=false").status == 200


def test_a_fetched_item_sent_back_fits_the_input_schema(tasks: Api) -> None:
    document = fetch_document(tasks)
    item = tasks("POST", "/tasks", {"title": "ship", "code": "ABC"}).json()
    schema = resolved(document, document["components"]["schemas"]["tasks-input"])
    Draft202012Validator(schema).validate(item)
    assert schema["properties"]["id"]["readOnly"] is True
    assert not Draft202012Validator(schema).is_valid({**item, "colour": "red"})
    assert tasks("PUT", f"/tasks/{item['id']}", item).status == 200


def test_the_list_documents_its_headers(tasks: Api) -> None:
    document = fetch_document(tasks)
    answer = document["paths"]["/tasks"]["get"]["responses"]["200"]
    assert {"ETag", "Link", "X-Total-Count"} <= set(answer["headers"])
    listed = tasks("GET", "/tasks?count=true")
    assert all(listed.header(name) is not None for name in answer["headers"])


def test_every_refusal_fits_the_problem_schema(tasks: Api) -> None:
    document = fetch_document(tasks)
    problem = Draft202012Validator(
        document["components"]["schemas"]["Problem"], format_checker=FormatChecker()
    )
    task = tasks("POST", "/tasks", {"title": "ship", "code": "ABC"}).json()
    notes = f"/tasks/{task['id']}/notes"
    note = tasks("POST", notes, {"text": "hi"}).json()
    refusals = {
        "400": tasks("GET", "/tasks?nope=1"),
        "404": tasks("GET", "/tasks/00000000-0000-4000-8000-000000000000"),
        "405": tasks("DELETE", "/tasks"),
        "409": tasks("POST", "/tasks", {"title": "ship", "code": "ABC"}),
        "412": tasks("DELETE", f"{notes}/{note['id']}", headers={"If-Match": '"old"'}),
        "415": tasks("POST", "/tasks", b"{}", content_type="text/plain"),
        "422": tasks("POST", "/tasks", {"title": 3}),
        "428": tasks("DELETE", f"{notes}/{note['id']}"),
    }
    for status, response in refusals.items():
        assert str(response.status) == status, response.body
        assert response.header("content-type") == "application/problem+json"
        problem.validate(response.json())
    documented = {
        status
        for path_item in document["paths"].values()
        for method, operation in path_item.items()
        if method != "parameters"
        for status in operation["responses"]
    }
    # (405 answers a method no operation lists: it is among the components only)
    assert set(refusals) - {"405"} <= documented
    assert len(document["components"]["responses"]) == len(refusals)
