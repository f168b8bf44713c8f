"""The OpenAPI document, the offline /docs page, and schemathesis against the running API."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from quiver.store import Store
from quiver.store.tokens import create_token

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)


def test_openapi_is_3_1_and_documents_problems(anonymous: httpx.Client) -> None:
    document = anonymous.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    paths = document["paths"]
    for path in (
        "/targets", "/targets/{name}", "/targets/{name}/nodes", "/routes", "/routes/{name}",
        "/consumers", "/consumers/{name}", "/consumers/{name}/credentials",
        "/consumers/{name}/credentials/{credential}", "/plugins", "/plugins/{name}", "/config",
        "/config/diff", "/config/apply", "/revisions", "/revisions/{number}",
        "/revisions/{number}/rollback", "/teams", "/teams/{name}", "/teams/{name}/members",
        "/teams/{name}/members/{email}", "/tokens", "/tokens/{name}",
        "/health",
    ):  # fmt: skip
        assert path in paths, path
    post_target = paths["/targets"]["post"]
    assert post_target["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Target"
    }
    problem = post_target["responses"]["409"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert (
        "application/merge-patch+json"
        in paths["/targets/{name}"]["patch"]["requestBody"]["content"]
    )
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_docs_page_works_offline(anonymous: httpx.Client, base_url: str) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"https?://[^\s\"'<>)]+", page.text)
    assert [url for url in urls if not url.startswith(base_url)] == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/docs/static/") for asset in assets)
    for asset in assets:
        assert anonymous.get(asset).status_code == 200, asset
    assert "/openapi.json" in page.text


def test_schemathesis_finds_no_server_error_or_schema_violation(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    _, token = create_token(store, "schemathesis-run-token-not-to-be-deleted", "admin")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "-H",
        f"Authorization: Bearer {token}",
        "--max-examples",
        "8",
        "--phases",
        "examples,coverage,fuzzing",
        "--checks",
        CHECKS,
        "--request-timeout",
        "20",
        "--no-color",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
