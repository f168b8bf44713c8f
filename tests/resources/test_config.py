"""The ``resources`` section: the documented form passes; each mistake is named where it is."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from quiver.config import validate
from quiver.config.models import Config
from quiver.errors import ConfigError
from tests.resources.conftest import resources_config
from tests.support.catalog import built_in, load_config_text
from tests.support.proxy import RunningProxy


def test_documented_form_compiles_into_targets_and_routes(tmp_path: Path) -> None:
    config = load_config_text(resources_config(tmp_path / "r.db"))
    targets = {target.name: target for target in config.targets}
    resources = {"resource-items", "resource-events", "resource-guests"}
    assert set(targets) == {*resources, "resource-openapi"}
    assert all(targets[name].type == "resource" for name in resources)
    assert targets["resource-openapi"].type == "resources-openapi"
    paths = {route.name: route.paths for route in config.routes}
    assert paths["resource-guests"] == ["/events/{event_id}/guests"]
    assert paths["resource-items"] == ["/items"]


def test_compiling_twice_keeps_one_target_per_resource(tmp_path: Path) -> None:
    config = load_config_text(resources_config(tmp_path / "r.db"))
    again = Config.model_validate(config.model_dump(by_alias=True))
    assert len(again.targets) == len(config.targets) == 4
    assert len(again.routes) == 4


def _resources(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resources": list(resources)}


ITEM = {"name": "items", "fields": {"name": {"type": "string"}}}

INVALID = [
    ({**ITEM, "fields": {"name": {"type": "text"}}}, "resources.0.fields", "'type' must be"),
    ({**ITEM, "fields": {"name": {"type": "string", "minLen": 1}}}, "fields", "'minLen'"),
    ({**ITEM, "fields": {"name": {"type": "string", "minLength": -1}}}, "fields", "minLength"),
    ({**ITEM, "fields": {"Bad-Name": {"type": "string"}}}, "fields", "'Bad-Name'"),
    ({**ITEM, "fields": {"limit": {"type": "string"}}}, "fields", "'limit'"),
    ({**ITEM, "required": ["nope"]}, "resources.0", "'required' names 'nope'"),
    ({**ITEM, "unique": ["nope"]}, "resources.0", "'unique' names 'nope'"),
    (
        {**ITEM, "primary_key": {"name": "name", "type": "uuid"}},
        "resources.0",
        "field 'name' is kept",
    ),
    ({**ITEM, "primary_key": {"type": "serial"}}, "resources.0.primary_key.type", "'uuid'"),
    (
        {**ITEM, "primary_key": {"name": "sku", "type": "given"}},
        "resources.0",
        "primary_key.name: a given key is one of the fields, 'sku' is not",
    ),
    (
        {**ITEM, "fields": {"tags": {"type": "array"}}, "primary_key": "tags"},
        "resources.0",
        "primary_key: a given key is a string or integer field, 'tags' is array",
    ),
    ({**ITEM, "limit": {"default": 50, "max": 10}}, "resources.0.limit", "larger than 'max'"),
    ({**ITEM, "path": "/items/{id}"}, "resources.0.path", "without parameters"),
    ({**ITEM, "parent": {"resource": "x", "field": "x_id"}}, "resources", "unknown resource 'x'"),
    (
        {**ITEM, "fields": {"s": {"type": "string", "enum": ["a"], "default": "b"}}},
        "fields",
        "default does not fit",
    ),
    ({**ITEM, "indexes": [["name", "nope"]]}, "resources.0", "'indexes' names 'nope'"),
    ({**ITEM, "indexes": [[]]}, "resources.0", "names no field"),
    ({**ITEM, "colour": "red"}, "resources.0.colour", "unknown key"),
]


@pytest.mark.parametrize(("resource", "where", "message"), INVALID)
def test_invalid_resource_is_named_where_it_is(
    resource: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(_resources(resource), catalog=built_in())
    text = str(caught.value)
    assert where in text.replace("[", ".").replace("]", ""), text
    assert message in text, text


def test_duplicate_names_and_child_paths_are_refused() -> None:
    with pytest.raises(ConfigError, match="duplicate resource 'items'"):
        validate(_resources(ITEM, ITEM), catalog=built_in())
    child = {"name": "kids", "parent": {"resource": "items", "field": "item_id"}, "path": "/k"}
    with pytest.raises(ConfigError, match="no 'path'"):
        validate(_resources(ITEM, {**child, "fields": ITEM["fields"]}), catalog=built_in())


def test_documented_yaml_form_is_valid_as_written(tmp_path: Path) -> None:
    data = yaml.safe_load(resources_config(tmp_path / "r.db"))
    validate(data, catalog=built_in())


def test_tables_have_real_columns_constraints_and_indexes(tmp_path: Path) -> None:
    text = resources_config(tmp_path / "r.db").replace(
        "    timestamps: true", "    timestamps: true\n    indexes: [[status, price], name]"
    )
    with RunningProxy(text), closing(sqlite3.connect(tmp_path / "r.db")) as connection:
        columns = {row[1]: row for row in connection.execute("PRAGMA table_info(items)")}
        indexes = [row[1] for row in connection.execute("PRAGMA index_list(items)")]
        keys = connection.execute("PRAGMA foreign_key_list(guests)").fetchall()
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert columns["name"][2:4] == ("TEXT", 1)  # type, NOT NULL
    assert columns["price"][2] == "NUMERIC" and columns["tags"][3] == 0
    assert {"items_status_price", "items_name"} <= set(indexes)
    assert any(name.startswith("sqlite_autoindex_items") for name in indexes)  # UNIQUE
    assert [(key[2], key[3], key[6]) for key in keys] == [("events", "event_id", "CASCADE")]
    assert mode == "wal"
