"""Targets are checked against the catalog's target types when a config is validated:
an unknown ``type`` and bad ``options`` are config issues, found with every other one."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from quiver.config import validate
from quiver.errors import ConfigError
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType
from tests.support.catalog import built_in, load_config_text


class GreetOptions(TargetOptions):
    greeting: str = Field(description="What to answer.")
    times: int = Field(1, ge=1, description="How often to say it.")


class Greet(TargetType[GreetOptions]):
    name = "greet"
    Options = GreetOptions

    def handle(self, request: PluginRequest) -> Response:
        return Response(200, [], self.options.greeting.encode() * self.options.times)


CATALOG = built_in().with_target_types(Greet)


def config_with(target: dict[str, Any]) -> dict[str, Any]:
    return {
        "targets": [{"name": "t", **target}],
        "routes": [{"name": "r", "paths": ["/"], "target": "t"}],
    }


def issues(data: dict[str, Any], catalog: Any = CATALOG) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        validate(data, catalog)
    return [(issue.location, issue.message) for issue in caught.value.issues]


@pytest.mark.parametrize(
    "target",
    [
        {"type": "greet", "options": {"greeting": "hi"}},
        {"type": "greet", "options": {"greeting": "hi", "times": 3}},
        {"type": "demo"},
        {"url": "http://127.0.0.1:9001"},
        {"type": "http", "url": "http://127.0.0.1:9001"},
    ],
)
def test_targets_of_known_types_with_valid_options_are_accepted(target: dict[str, Any]) -> None:
    config = validate(config_with(target), CATALOG)
    assert config.targets[0].type == target.get("type", "http")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            {"type": "gret"},
            (
                "targets[0].type",
                "unknown target type 'gret' (known types: 'http', 'demo', 'greet', 'mcp'); "
                "did you mean 'greet'?",
            ),
        ),
        ({"type": "greet"}, ("targets[0].options", "missing required key 'greeting'")),
        (
            {"type": "greet", "options": {"greeting": "hi", "tmes": 2}},
            ("targets[0].options.tmes", "unknown key 'tmes'; did you mean 'times'?"),
        ),
        (
            {"type": "greet", "options": {"greeting": "hi", "times": 0}},
            ("targets[0].options.times", "Input should be greater than or equal to 1"),
        ),
        (
            {"type": "demo", "options": {"colour": "blue"}},
            ("targets[0].options.colour", "unknown key 'colour'"),
        ),
    ],
)
def test_unknown_types_and_bad_options_are_issues_where_they_are_written(
    target: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert issues(config_with(target)) == [expected]


def test_without_a_catalog_only_http_targets_are_known() -> None:
    assert issues(config_with({"type": "demo"}), None) == [
        ("targets[0].type", "unknown target type 'demo' (known types: 'http')")
    ]


def test_target_type_issues_are_found_with_every_other_one_and_have_their_line() -> None:
    text = """\
targets:
  - name: t
    type: greet
    options:
      greeting: 5
      tmes: 2
  - name: u
    type: dmeo
    colour: blue
routes:
  - {name: r, paths: ["/"], target: t, plugins: {key-auht: {}}}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml", catalog=CATALOG)
    found = [(issue.line, issue.location, issue.message) for issue in caught.value.issues]
    assert found == [
        (5, "targets[0].options.greeting", "Input should be a valid string"),
        (6, "targets[0].options.tmes", "unknown key 'tmes'; did you mean 'times'?"),
        (
            8,
            "targets[1].type",
            "unknown target type 'dmeo' (known types: 'http', 'demo', 'greet', 'mcp'); "
            "did you mean 'demo'?",
        ),
        (9, "targets[1].colour", "unknown key 'colour'"),
        (
            11,
            "routes[0].plugins.key-auht",
            "unknown plugin 'key-auht'; did you mean 'key-auth'? (see: quiver plugins)",
        ),
    ]


def test_an_http_target_has_no_options_to_check_against_a_type() -> None:
    data = config_with({"url": "http://127.0.0.1:9001", "options": {"greeting": "hi"}})
    assert issues(data) == [("targets[0]", "'options' are for in-process target types, not 'http'")]
