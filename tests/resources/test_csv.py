"""``quiver resources load FILE.csv``: rows as items, converted by the fields' types,
checked as API writes are, all of them or none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.resources.conftest import Api, resources_config
from tests.support.process import run_quiver, write_config
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)

TYPED = """
resources_db: {db}
resources:
  - name: products
    primary_key: sku
    fields:
      sku: {{type: string}}
      stock: {{type: integer, minimum: 0}}
      price: {{type: number}}
      active: {{type: boolean}}
      sizes: {{type: array, items: {{type: string}}}}
      extra: {{type: object}}
    required: [price]
"""


def _load(config: Path, csv_path: Path, *extra: str) -> Any:
    return run_quiver("resources", "load", str(csv_path), "-c", str(config), *extra)


def _items(config: Path, name: str) -> list[dict[str, Any]]:
    exported = run_quiver("resources", "export", "-c", str(config))
    assert exported.returncode == 0, exported.stderr
    items: list[dict[str, Any]] = json.loads(exported.stdout)[name]
    return items


def test_rows_load_into_the_resource_named_by_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, resources_config(tmp_path / "r.db"))
    seed = tmp_path / "items.csv"
    seed.write_text(
        'name,price,tags,status\npen,2.5,"[""office""]",active\ncup,3,,\n\n"mug, big",4,[],\n'
    )
    loaded = _load(config, seed)
    assert loaded.returncode == 0, loaded.stderr
    assert "items: 3 loaded" in loaded.stdout
    items = _items(config, "items")
    assert [(i["name"], i["price"], i.get("tags"), i["status"]) for i in items] == [
        ("pen", 2.5, ["office"], "active"),
        ("cup", 3, None, "draft"),  # an empty cell is no value: the default applies
        ("mug, big", 4, [], "draft"),
    ]
    assert all("created_at" in item for item in items)
    with RunningProxy(resources_config(tmp_path / "r.db")) as proxy:  # served as any item
        api = Api(proxy.port)
        assert api("GET", "/items/3").json()["name"] == "mug, big"
        api.client.close()


def test_cells_are_converted_by_the_field_type(tmp_path: Path) -> None:
    config = write_config(tmp_path, TYPED.format(db=tmp_path / "r.db"))
    seed = tmp_path / "stock.csv"
    seed.write_text(
        "sku,stock,price,active,sizes,extra\n"
        'a-1,3,10,true,"[""S"",""M""]","{""x"": 1}"\n'
        "b-2,0,1.25,0,,\n"
    )
    loaded = _load(config, seed, "--resource", "products")
    assert loaded.returncode == 0, loaded.stderr
    assert _items(config, "products") == [
        {
            "sku": "a-1",
            "stock": 3,
            "price": 10,
            "active": True,
            "sizes": ["S", "M"],
            "extra": {"x": 1},
        },
        {"sku": "b-2", "stock": 0, "price": 1.25, "active": False},
    ]


def test_a_bad_row_loads_nothing_and_names_file_line_and_field(tmp_path: Path) -> None:
    config = write_config(tmp_path, TYPED.format(db=tmp_path / "r.db"))
    seed = tmp_path / "products.csv"
    seed.write_text(
        "sku,stock,price,active\na,1,2,true\nb,x,2,yes\nc,-1,2,false\nd,1,,false\na,1,3,true\n"
    )
    result = _load(config, seed)
    assert result.returncode == 1
    assert "products.csv:3: stock: not an integer: 'x'" in result.stderr
    assert "products.csv:3: active: not a boolean (true, false, 1 or 0): 'yes'" in result.stderr
    fixed = seed.read_text().replace("b,x,2,yes", "b,1,2,1")
    seed.write_text(fixed)
    result = _load(config, seed)
    assert result.returncode == 1
    assert "products.csv:4: stock: -1 is less than the minimum of 0" in result.stderr
    assert "products.csv:5: price: is required" in result.stderr
    assert "products.csv:6: sku: another item has this value" in result.stderr
    assert _items(config, "products") == []


def test_children_and_unknown_columns(tmp_path: Path) -> None:
    config = write_config(tmp_path, resources_config(tmp_path / "r.db"))
    events = tmp_path / "events.csv"
    events.write_text("id,title\n7,launch\n")
    assert _load(config, events).returncode == 0
    guests = tmp_path / "guests.csv"
    guests.write_text("event_id,email\n7,a@example.com\n8,b@example.com\n")
    refused = _load(config, guests)
    assert refused.returncode == 1
    assert "guests.csv:3: event_id: no events item 8" in refused.stderr
    guests.write_text("event_id,email\n7,a@example.com\n")
    assert _load(config, guests).returncode == 0
    assert _items(config, "guests") == [{"id": 1, "event_id": 7, "email": "a@example.com"}]
    wrong = tmp_path / "items.csv"
    wrong.write_text("name,colour\npen,red\n")
    result = _load(config, wrong)
    assert result.returncode == 1
    assert "items.csv:1: colour: not a field of 'items'" in result.stderr
    other = tmp_path / "seed.csv"
    other.write_text("title\nparty\n")
    result = _load(config, other)
    assert result.returncode == 1
    assert "no resource named 'seed'" in result.stderr and "--resource" in result.stderr
    assert _load(config, other, "--resource", "events").returncode == 0
    assert [event["title"] for event in _items(config, "events")] == ["launch", "party"]
