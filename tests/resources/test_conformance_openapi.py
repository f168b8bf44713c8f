"""Conformance of the generated OpenAPI 3.1 document: valid against the OpenAPI 3.1
meta-schema, every resource path and operation listed, schemas that are JSON Schema 2020-12
and describe what the server really answers; then schemathesis, for a bounded number of
generated requests, against the running server.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from tests.resources.test_conformance_crud import (
    MERGE_PATCH,
    PROBLEM,
    SPEC_RESOURCES,
    assert_no_leak,
    create,
    quiver_serving,
    send,
)
from tests.support.process import run_quiver, write_config

pytestmark = pytest.mark.timeout(300)

# docs/resources.md: "GET /openapi/resources.json answers the OpenAPI 3.1 document"
DOCUMENT_PATH = "/openapi/resources.json"
RESOURCE_PATHS = {
    "/items": {"get", "post"},
    "/items/{}": {"get", "put", "patch", "delete"},
    "/events": {"get", "post"},
    "/events/{}": {"get", "put", "patch", "delete"},
    "/events/{}/guests": {"get", "post"},
    "/events/{}/guests/{}": {"get", "put", "patch", "delete"},
}
TEMPLATE = re.compile(r"\{([^}]+)\}")
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with quiver_serving(tmp_path_factory.mktemp("openapi"), SPEC_RESOURCES) as client:
        yield client


@pytest.fixture(scope="module")
def document(served: httpx.Client) -> dict[str, Any]:
    response = send(served, "GET", DOCUMENT_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in (
        "application/json",
        "application/openapi+json",
        "application/vnd.oai.openapi+json",
    )
    body = response.json()
    assert isinstance(body, dict)
    return body


def resolve(document: dict[str, Any], node: Any, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (RFC 6901)."""
    if isinstance(node, list):
        return [resolve(document, value, seen) for value in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        reference = node["$ref"]
        assert reference.startswith("#/"), f"not a local reference: {reference}"
        if reference in seen:
            return {}  # a recursive schema: deep enough for these checks
        target: Any = document
        for token in reference[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and token in target, f"{reference} resolves to nothing"
            target = target[token]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        merged = {**copy.deepcopy(target), **siblings} if isinstance(target, dict) else target
        return resolve(document, merged, (*seen, reference))
    return {key: resolve(document, value, seen) for key, value in node.items()}


def templates(document: dict[str, Any]) -> dict[str, str]:
    """Each path of the document by its shape, its parameter names blanked."""
    return {TEMPLATE.sub("{}", path): path for path in document["paths"]}


def operation(document: dict[str, Any], shape: str, method: str) -> dict[str, Any]:
    path = templates(document)[shape]
    found = resolve(document, document["paths"][path][method])
    assert isinstance(found, dict)
    return found


def response_schema(op: dict[str, Any], status: str, media: str) -> dict[str, Any]:
    responses = op["responses"]
    response = responses.get(status) or responses.get(status[0] + "XX") or responses["default"]
    schema = response["content"][media]["schema"]
    assert isinstance(schema, dict)
    return schema


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert str(document.get("openapi", "")).startswith("3.1.")
    validator = jsonschema.Draft202012Validator(OPENAPI_31)
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert problems == []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    resolve(document, document)


def test_every_resource_path_and_operation_is_listed(document: dict[str, Any]) -> None:
    shapes = templates(document)
    for shape, methods in RESOURCE_PATHS.items():
        assert shape in shapes, f"{shape} missing from {sorted(document['paths'])}"
        path_item = document["paths"][shapes[shape]]
        assert methods <= set(path_item), (shape, sorted(path_item))


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    # OpenAPI 3.1 §4.8.12.1: each template expression is a required parameter "in: path"
    for path, path_item in document["paths"].items():
        shared = resolve(document, path_item.get("parameters", []))
        for method in set(OPERATIONS) & set(path_item):
            params = shared + resolve(document, path_item[method].get("parameters", []))
            declared = {p["name"] for p in params if p["in"] == "path" and p.get("required")}
            assert set(TEMPLATE.findall(path)) <= declared, (path, method, params)


def test_every_schema_is_json_schema_2020_12(document: dict[str, Any]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    assert schemas, "the item schemas are components"
    for name, schema in schemas.items():
        try:
            jsonschema.Draft202012Validator.check_schema(resolve(document, schema))
        except jsonschema.SchemaError as exc:
            pytest.fail(f"{name}: {exc.message}")


def test_the_create_schema_carries_the_declared_fields(document: dict[str, Any]) -> None:
    op = operation(document, "/items", "post")
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    if "oneOf" in schema or "anyOf" in schema:  # one item, or an array for a bulk create
        options = schema.get("oneOf") or schema.get("anyOf")
        schema = next(o for o in options if o.get("type") == "object")
    fields = schema["properties"]
    assert {"name", "price", "tags", "status"} <= set(fields)
    assert (fields["name"]["minLength"], fields["name"]["maxLength"]) == (1, 60)
    assert fields["price"]["minimum"] == 0
    assert fields["tags"]["items"]["type"] == "string"
    assert fields["status"]["enum"] == ["draft", "active", "archived"]
    assert fields["status"]["default"] == "draft"
    assert {"name", "price"} <= set(schema["required"])
    guests = operation(document, "/events/{}/guests", "post")
    email = guests["requestBody"]["content"]["application/json"]["schema"]
    email = (
        email.get("properties", {}).get("email")
        or next(o for o in email.get("oneOf", email.get("anyOf", [])) if o.get("type") == "object")[
            "properties"
        ]["email"]
    )
    assert email["format"] == "email"


def test_the_list_operation_documents_its_query_parameters(document: dict[str, Any]) -> None:
    params = {p["name"] for p in operation(document, "/items", "get").get("parameters", [])}
    assert {"sort", "fields", "limit", "page", "cursor", "count"} <= params


def has_examples(node: Any) -> bool:
    """Whether ``node`` holds an OpenAPI ``example``/``examples`` or a schema's ``examples``."""
    if isinstance(node, dict):
        if "example" in node or "examples" in node:
            return True
        return any(has_examples(value) for value in node.values())
    if isinstance(node, list):
        return any(has_examples(value) for value in node)
    return False


def test_request_bodies_come_with_examples(document: dict[str, Any]) -> None:
    # the specification lists examples among what the document is generated with
    for shape, methods in RESOURCE_PATHS.items():
        for method in methods & {"post", "put"}:
            body = operation(document, shape, method)["requestBody"]
            assert has_examples(body), f"{method.upper()} {shape} has no example"


def test_the_create_documents_a_bulk_create(document: dict[str, Any]) -> None:
    # bulk create is one of the endpoints: an array of items is a valid create body
    op = operation(document, "/items", "post")
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    bulk = [{"name": "a", "price": 1}, {"name": "b", "price": 2}]
    assert jsonschema.Draft202012Validator(schema).is_valid(bulk), schema


def test_the_list_documents_the_equality_filter(document: dict[str, Any]) -> None:
    # "filter on any field with field=value"
    params = {p["name"] for p in operation(document, "/items", "get").get("parameters", [])}
    assert {"name", "price", "status"} <= params, sorted(params)


def test_every_documented_list_parameter_is_one_the_server_knows(
    served: httpx.Client, document: dict[str, Any]
) -> None:
    values = {"sort": "name", "fields": "id", "limit": "1", "page": "1", "count": "true"}
    refused = []
    for param in operation(document, "/items", "get").get("parameters", []):
        if param["in"] != "query":
            continue
        name = param["name"]
        value = values.get(name, "")
        if name not in values and name != "cursor":
            value = "1" if "price" in name else "draft" if "status" in name else "x"
        response = served.get("/items", params={name: value})
        assert_no_leak(response)
        if response.status_code != 200:
            refused.append(f"{name}={value}: {response.status_code}")
    assert refused == [], "documented parameters the server refuses"


def test_operations_document_their_problem_responses(document: dict[str, Any]) -> None:
    for shape, methods in RESOURCE_PATHS.items():
        for method in methods:
            responses = operation(document, shape, method)["responses"]
            problems = [
                status
                for status, response in responses.items()
                if status[0] == "4" and PROBLEM in response.get("content", {})
            ]
            assert problems, f"{method.upper()} {shape} documents no problem+json answer"
            if method in ("post", "put", "patch"):
                assert "422" in responses, f"{method.upper()} {shape} has no 422"


def test_real_answers_match_the_documented_schemas(
    served: httpx.Client, document: dict[str, Any]
) -> None:
    item = create(served, "/items", {"name": "documented", "price": 1, "tags": ["a"]})
    checks = [
        (operation(document, "/items", "post"), "201", "application/json", item),
        (
            operation(document, "/items/{}", "get"),
            "200",
            "application/json",
            send(served, "GET", f"/items/{item['id']}").json(),
        ),
        (
            operation(document, "/items", "get"),
            "200",
            "application/json",
            send(served, "GET", "/items").json(),
        ),
        (
            operation(document, "/items", "post"),
            "422",
            PROBLEM,
            send(served, "POST", "/items", {"name": ""}).json(),
        ),
        (
            operation(document, "/items/{}", "patch"),
            "404",
            PROBLEM,
            send(served, "PATCH", "/items/987654", {"price": 2}, content_type=MERGE_PATCH).json(),
        ),
    ]
    for op, status, media, body in checks:
        schema = response_schema(op, status, media)
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
            body
        )


def test_quiver_resources_openapi_prints_the_served_document(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    text = f"listen: 127.0.0.1:0\nresources_db: {tmp_path / 'r.db'}\n" + SPEC_RESOURCES
    config = write_config(tmp_path, text)
    result = run_quiver("resources", "openapi", "-c", str(config))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["paths"] == document["paths"]
    assert printed.get("components") == document.get("components")


def schemathesis_run(served: httpx.Client, checks: str, tmp_path: Path) -> str:
    """``schemathesis run`` against the served document, a few cases per operation."""
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is in the test extras"
    base = str(served.base_url).rstrip("/")
    result = subprocess.run(
        [
            executable,
            "run",
            base + DOCUMENT_PATH,
            "--url",
            base,
            "--checks",
            checks,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            "--seed",
            "1",
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def test_generated_requests_never_meet_a_server_error(served: httpx.Client, tmp_path: Path) -> None:
    schemathesis_run(served, "not_a_server_error", tmp_path)


def test_generated_requests_get_the_documented_answers(
    served: httpx.Client, tmp_path: Path
) -> None:
    schemathesis_run(
        served,
        "status_code_conformance,content_type_conformance,response_schema_conformance,"
        "negative_data_rejection",
        tmp_path,
    )
