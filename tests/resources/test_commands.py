"""``quiver resources openapi|export|load`` on a config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.resources.conftest import Api, resources_config
from tests.support.process import run_quiver, write_config
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)


def test_openapi_prints_the_document(tmp_path: Path) -> None:
    config = write_config(tmp_path, resources_config(tmp_path / "r.db"))
    result = run_quiver("resources", "openapi", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "/events/{event_id}/guests" in json.loads(result.stdout)["paths"]


def test_export_then_load_gives_the_same_items(tmp_path: Path) -> None:
    text = resources_config(tmp_path / "first.db")
    with RunningProxy(text) as proxy:
        api = Api(proxy.port)
        assert api("POST", "/items", {"name": "pen", "price": 2, "tags": ["a"]}).status == 201
        assert api("POST", "/events", {"title": "launch"}).status == 201
        assert api("POST", "/events/1/guests", {"email": "a@example.com"}).status == 201
        api.client.close()
    first = write_config(tmp_path, text)
    exported = run_quiver("resources", "export", "-c", str(first))
    assert exported.returncode == 0, exported.stderr
    dump = tmp_path / "dump.json"
    dump.write_text(exported.stdout)
    second = write_config(tmp_path, resources_config(tmp_path / "second.db"), "second.yaml")
    loaded = run_quiver("resources", "load", str(dump), "-c", str(second))
    assert loaded.returncode == 0, loaded.stderr
    assert "guests: 1 loaded" in loaded.stdout
    again = run_quiver("resources", "export", "-c", str(second))
    assert json.loads(again.stdout) == json.loads(exported.stdout)


def test_load_refuses_a_bad_item_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, resources_config(tmp_path / "r.db"))
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps({"items": [{"name": "a", "price": 1}, {"name": "b"}]}))
    result = run_quiver("resources", "load", str(dump), "-c", str(config))
    assert result.returncode == 1
    assert "/items/1: /price: is required" in result.stderr
    exported = run_quiver("resources", "export", "-c", str(config))
    assert json.loads(exported.stdout)["items"] == []
