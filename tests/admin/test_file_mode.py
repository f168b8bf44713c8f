"""File mode: the declaration is the config file's, shown as team default, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quiver.admin import FileDeclarations, create_app
from quiver.store import Store
from quiver.store.tokens import create_token
from tests.admin.problems import assert_problem
from tests.admin.server import serving
from tests.support.catalog import built_in

CONFIG = """\
listen: 127.0.0.1:8080
targets:
  - name: backend
    url: http://127.0.0.1:9001
routes:
  - name: all
    paths: ["/"]
    target: backend
consumers:
  - name: alice
    credentials:
      key-auth: [{key: "${ALICE_KEY}"}]
"""


@pytest.fixture
def file_client(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> Iterator[httpx.Client]:
    monkeypatch.setenv("ALICE_KEY", "alice-file-secret-0123")
    path = tmp_path / "quiver.yaml"
    path.write_text(CONFIG)
    _, token = create_token(store, "root", "admin")
    app = create_app(FileDeclarations(str(path)), store, built_in())
    with (
        serving(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        yield client


def test_reads_come_from_the_file(file_client: httpx.Client, tmp_path: Path) -> None:
    targets = file_client.get("/targets").json()["data"]
    assert targets == [{"name": "backend", "url": "http://127.0.0.1:9001"}]
    assert file_client.get("/routes/all").json()["target"] == "backend"
    config = file_client.get("/config").json()
    assert config["revision"] == 0 and "listen" not in config["document"]
    assert "alice-file-secret" not in file_client.get("/consumers/alice").text
    assert file_client.get("/consumers/alice/credentials").json()["data"][0]["key_hash"]
    assert file_client.get("/revisions").json() == {"data": [], "next": None}
    diff = file_client.post("/config/diff", json={"document": {"targets": []}}).json()
    assert diff["equal"] is False

    (tmp_path / "quiver.yaml").write_text(CONFIG.replace("9001", "19002"))
    assert file_client.get("/targets/backend").json()["url"] == "http://127.0.0.1:19002"


def test_other_teams_do_not_exist(file_client: httpx.Client) -> None:
    assert file_client.post("/teams", json={"name": "blue"}).status_code == 201
    assert_problem(file_client.get("/targets", params={"team": "blue"}), 404, "team-not-found")


def test_every_config_write_is_read_only(file_client: httpx.Client) -> None:
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/targets", {"name": "x", "url": "http://127.0.0.1:1"}),
        ("PUT", "/targets/backend", {"url": "http://127.0.0.1:1"}),
        ("PATCH", "/targets/backend", {"url": "http://127.0.0.1:1"}),
        ("DELETE", "/targets/backend", None),
        ("PUT", "/targets/backend/nodes", {"nodes": [{"url": "http://127.0.0.1:1"}]}),
        ("DELETE", "/routes/all", None),
        ("POST", "/consumers/alice/credentials", {"plugin": "key-auth", "key": "k" * 20}),
        ("PUT", "/plugins/cors", {"origins": ["*"]}),
        ("POST", "/config/apply", {"document": {}}),
        ("POST", "/revisions/1/rollback", None),
    ]
    for method, path, body in writes:
        response = file_client.request(method, path, json=body)
        problem = assert_problem(response, 405, "read-only")
        assert (
            problem["detail"].startswith("config comes from ")
            and "quiver.yaml" in problem["detail"]
        )
    assert file_client.post("/tokens", json={"name": "ci", "role": "viewer"}).status_code == 201


def test_an_invalid_file_is_a_clear_500(file_client: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "quiver.yaml").write_text("targets: 5\n")
    body = assert_problem(file_client.get("/targets"), 500, "internal")
    assert "quiver check" in body["detail"]
    (tmp_path / "quiver.yaml").write_text(CONFIG)
    assert file_client.get("/targets").status_code == 200


def test_apis_are_read_from_the_file_and_subscriptions_not_written(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(
        CONFIG.replace("${ALICE_KEY}", "alice-file-secret-0123")
        + "apis:\n  - {name: all, routes: [all], state: published, plans: [{name: free}]}\n"
    )
    _, token = create_token(store, "root", "admin")
    app = create_app(FileDeclarations(str(path)), store, built_in())
    with (
        serving(app) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
    ):
        assert client.get("/apis/all").json()["state"] == "published"
        assert client.delete("/apis/all").status_code == 405
        body = {"api": "all", "plan": "free", "consumer": "alice"}
        refused = client.post("/subscriptions", json=body)
        assert_problem(refused, 405, "read-only")
        assert refused.json()["detail"] == f"config comes from {path}"
