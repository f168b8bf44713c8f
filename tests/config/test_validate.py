"""Validating plain data (no YAML): the same issues as a file gives, every one at once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from quiver.config import load_config_text, validate
from quiver.config.loader import load_settings
from quiver.config.models import Config, Declaration, Settings
from quiver.errors import ConfigError, ConfigIssue
from tests.support.catalog import built_in

BROKEN: dict[str, Any] = {
    "listen": "127.0.0.1:0",
    "limits": {"header_timeout": "5 minutes"},
    "targets": [{"name": "backend", "url": "http://127.0.0.1:9001", "colour": "blue"}],
    "routes": [
        {
            "name": "api",
            "paths": ["~^/v[0-9+/"],
            "target": "backend",
            "plugins": {"key-auth": {"header_names": "apikey"}},
        },
        {"name": "api", "paths": ["/other"], "target": "backnd", "plugins": {"rate-limt": {}}},
    ],
    "consumers": [
        {"name": "alice", "credentials": {"key-auth": [{"key": "short"}], "oauth": []}},
    ],
}


def located(issues: list[ConfigIssue]) -> list[tuple[str, str]]:
    """Where and what, without the line numbers only a file has."""
    return sorted((issue.location, re.sub(r" on line \d+", "", issue.message)) for issue in issues)


def test_plain_data_gets_every_issue_a_file_gets_without_lines() -> None:
    with pytest.raises(ConfigError) as from_data:
        validate(BROKEN, built_in())
    with pytest.raises(ConfigError) as from_file:
        load_config_text(json.dumps(BROKEN, indent=2), "quiver.json", catalog=built_in())
    assert located(from_data.value.issues) == located(from_file.value.issues)
    assert all(issue.line is None and issue.source is None for issue in from_data.value.issues)
    assert all(issue.line is not None for issue in from_file.value.issues)
    locations = [location for location, _ in located(from_data.value.issues)]
    assert locations == [
        "consumers[0].credentials.key-auth[0].key",  # too short for the key-auth model
        "consumers[0].credentials.oauth",  # no plugin declares this credential type
        "limits.header_timeout",  # bad duration
        "routes[0].paths",  # bad regex
        "routes[0].plugins.key-auth.header_names",  # bad plugin config
        "routes[1].name",  # duplicate name
        "routes[1].plugins.rate-limt",  # unknown plugin
        "routes[1].target",  # unknown target
        "targets[0].colour",  # unknown key
    ]


def test_valid_plain_data_gives_the_config_with_typed_credentials() -> None:
    data = {
        "targets": [{"name": "b", "url": "http://127.0.0.1:9"}],
        "routes": [{"name": "r", "paths": ["/"], "target": "b", "plugins": {"key-auth": {}}}],
        "consumers": [{"name": "alice", "credentials": {"key-auth": [{"key": "a-long-key"}]}}],
    }
    config = validate(data, built_in())
    [credential] = config.consumers[0].credentials["key-auth"]
    assert type(credential).__name__ == "KeyAuthCredential"
    assert credential.key == "a-long-key"  # type: ignore[attr-defined]


def test_the_top_level_of_plain_data_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        validate(["routes"])


def test_settings_and_declaration_are_the_two_halves_of_a_config() -> None:
    config = validate(
        {"listen": "127.0.0.1:9000", "workers": 2, "routes": [], "limits": {"max_headers": 50}}
    )
    assert config.settings == Settings.model_validate({"listen": "127.0.0.1:9000", "workers": 2})
    assert config.declaration == Declaration.model_validate({"limits": {"max_headers": 50}})
    assert set(Settings.model_fields) | set(Declaration.model_fields) == set(Config.model_fields)
    assert not set(Settings.model_fields) & set(Declaration.model_fields)


def test_settings_load_without_the_secrets_of_the_declaration(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(
        "listen: 127.0.0.1:7000\nrun_dir: /run/quiver\n"
        "consumers: [{name: a, credentials: {key-auth: [{key: '${SECRET}'}]}}]\n"
    )
    settings = load_settings(path, env={})
    assert (settings.listen[0].address, settings.run_dir) == ("127.0.0.1:7000", "/run/quiver")
    path.write_text("listen: ${ADDRESS}\nworkers: none\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert [issue.location for issue in caught.value.issues] == ["listen", "workers"]
