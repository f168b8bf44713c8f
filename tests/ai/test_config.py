"""The ``ai`` section and the route ``ai`` option: valid and invalid configs, each
problem named where it is written, and what an AI config compiles into."""

from __future__ import annotations

import copy
from typing import Any

import openai
import pytest

from quiver.config import validate
from quiver.errors import ConfigError
from tests.support.catalog import built_in, load_config_text
from tests.support.proxy import RunningProxy

MINIMAL = """\
ai:
  providers:
    - name: openai
      type: openai
      api_key: ${OPENAI_API_KEY}
  models:
    - name: gpt-4o-mini
      deployments: [{provider: openai, model: gpt-4o-mini}]
routes:
  - name: ai
    paths: ["/v1"]
    ai: {}
"""


def base() -> dict[str, Any]:
    return {
        "ai": {
            "providers": [{"name": "oa", "type": "openai", "api_key": "sk-1"}],
            "models": [{"name": "m", "deployments": [{"provider": "oa", "model": "gpt"}]}],
        },
        "routes": [{"name": "ai", "paths": ["/v1"], "ai": {}}],
    }


def issues(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        validate(data, built_in())
    return [(issue.location, issue.message) for issue in caught.value.issues]


def with_provider(**provider: Any) -> dict[str, Any]:
    data = base()
    data["ai"]["providers"][0] = {"name": "oa", **provider}
    return data


def test_the_minimal_config_of_the_docs_works_as_written() -> None:
    config = load_config_text(MINIMAL, env={"OPENAI_API_KEY": "sk-test"})
    targets = {target.name: target for target in config.targets}
    provider = targets["ai-provider-openai"]
    assert (provider.type, provider.url, provider.retries) == (
        "http",
        "https://api.openai.com/v1",
        None,
    )
    assert targets["ai-route-ai"].type == "ai"
    assert config.routes[0].target == "ai-route-ai"


def test_the_minimal_config_serves_the_openai_api_as_written() -> None:
    """The route answers at once (only the address to listen on is added): the models
    list needs no call to the provider, which the tests cannot reach."""
    text = "listen: 127.0.0.1:0\n" + MINIMAL
    config = load_config_text(text, env={"OPENAI_API_KEY": "sk-test"})
    with (
        RunningProxy(config) as proxy,
        openai.OpenAI(base_url=proxy.url + "/v1", api_key="unused", max_retries=0) as client,
    ):
        assert [model.id for model in client.models.list()] == ["gpt-4o-mini"]
        assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        ({"type": "openai", "api_key": "k"}, "https://api.openai.com/v1"),
        ({"type": "anthropic", "api_key": "k"}, "https://api.anthropic.com"),
        ({"type": "gemini", "api_key": "k"}, "https://generativelanguage.googleapis.com"),
        ({"type": "mistral", "api_key": "k"}, "https://api.mistral.ai/v1"),
        ({"type": "ollama"}, "http://127.0.0.1:11434/v1"),
        ({"type": "openai-compatible", "base_url": "http://h:1/v1/"}, "http://h:1/v1"),
        (
            {
                "type": "azure-openai",
                "api_key": "k",
                "base_url": "https://r.openai.azure.com",
                "api_version": "2024-10-21",
            },
            "https://r.openai.azure.com",
        ),
        (
            {
                "type": "bedrock",
                "region": "eu-west-3",
                "aws_access_key_id": "A",
                "aws_secret_access_key": "S",
            },
            "https://bedrock-runtime.eu-west-3.amazonaws.com",
        ),
    ],
)
def test_each_provider_type_has_its_default_base_url(provider: dict[str, Any], url: str) -> None:
    config = validate(with_provider(**provider), built_in())
    assert next(t for t in config.targets if t.name == "ai-provider-oa").url == url


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ({"type": "openai"}, ("ai.providers[0]", "a provider of type 'openai' needs 'api_key'")),
        (
            {"type": "azure-openai", "api_key": "k", "api_version": "v"},
            ("ai.providers[0]", "a provider of type 'azure-openai' needs 'base_url'"),
        ),
        (
            {"type": "azure-openai", "api_key": "k", "base_url": "https://r.example"},
            ("ai.providers[0]", "a provider of type 'azure-openai' needs 'api_version'"),
        ),
        (
            {"type": "bedrock", "region": "us-east-1"},
            (
                "ai.providers[0]",
                "a provider of type 'bedrock' needs 'aws_access_key_id', 'aws_secret_access_key'",
            ),
        ),
        (
            {"type": "openai-compatible"},
            ("ai.providers[0]", "a provider of type 'openai-compatible' needs 'base_url'"),
        ),
        (
            {"type": "openai", "api_key": "k", "region": "us-east-1"},
            ("ai.providers[0]", "'region' is for providers of type 'bedrock'"),
        ),
        (
            {"type": "openai", "api_key": "k", "api_version": "1"},
            ("ai.providers[0]", "'api_version' is for providers of type 'azure-openai'"),
        ),
        (
            {"type": "openia", "api_key": "k"},
            (
                "ai.providers[0].type",
                "input should be 'openai', 'azure-openai', 'anthropic', "
                "'gemini', 'bedrock', 'mistral', 'ollama' or 'openai-compatible'",
            ),
        ),
        (
            {"type": "openai", "api_key": "k", "base_url": "ftp://x"},
            ("ai.providers[0].base_url", "URL must start with http:// or https://, got 'ftp://x'"),
        ),
        (
            {"type": "openai", "api_key": "k", "colour": "blue"},
            ("ai.providers[0].colour", "unknown key 'colour'"),
        ),
    ],
)
def test_provider_problems_name_the_key_and_where_it_is(
    provider: dict[str, Any], expected: tuple[str, str]
) -> None:
    found = issues(with_provider(**provider))
    assert len(found) == 1
    assert found[0][0] == expected[0]
    assert found[0][1].lower().startswith(expected[1].lower())


def edit(change: Any) -> dict[str, Any]:
    data = base()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["ai"]["models"][0]["deployments"][0].update(provider="nope"),
            [("ai.models[0].deployments[0].provider", "unknown provider 'nope' (defined: 'oa')")],
        ),
        (
            lambda d: d["ai"]["models"][0].update(fallbacks=["other"]),
            [("ai.models[0].fallbacks[0]", "unknown model 'other' (defined: 'm')")],
        ),
        (
            lambda d: d["routes"][0]["ai"].update(models=["m", "x"]),
            [("routes[0].ai.models[1]", "unknown model 'x' (defined: 'm')")],
        ),
        (
            lambda d: d["routes"][0].update(target="backend"),
            [
                ("routes[0]", "give exactly one of 'target' or 'ai'"),
                ("routes[0].target", "unknown target 'backend': no targets are defined"),
            ],
        ),
        (
            lambda d: d["routes"][0].pop("ai"),
            [("routes[0]", "give exactly one of 'target' or 'ai' (or 'mcp' alone)")],
        ),
        (
            lambda d: d.pop("ai"),
            [("routes[0].ai", "an AI route needs the top-level 'ai' section")],
        ),
        (
            lambda d: d["ai"]["providers"].append(copy.deepcopy(d["ai"]["providers"][0])),
            [("ai.providers[1].name", "duplicate provider 'oa'")],
        ),
        (
            lambda d: d["ai"]["models"][0].update(routing="fastest"),
            [("ai.models[0].routing", "input should be 'weighted', 'least-busy' or 'latency'")],
        ),
        (
            lambda d: d["ai"]["models"][0].update(deployments=[]),
            [
                (
                    "ai.models[0].deployments",
                    "list should have at least 1 item after validation, not 0",
                )
            ],
        ),
        (
            lambda d: d["ai"].update(budgets=[{"consumer": "a", "team": "b", "tokens": 5}]),
            [("ai.budgets[0]", "a budget names either `consumer` or `team` (one of them)")],
        ),
        (
            lambda d: d.update(targets=[{"name": "ai-provider-oa", "url": "http://h"}]),
            [("ai.providers[0].name", "a target named 'ai-provider-oa' is taken")],
        ),
    ],
)
def test_ai_problems_name_the_key_and_where_it_is(
    change: Any, expected: list[tuple[str, str]]
) -> None:
    found = issues(edit(change))
    assert [(where, message.lower()) for where, message in found] == [
        (where, message.lower()) for where, message in expected
    ]


def test_key_auth_reads_bearer_keys_on_ai_routes_unless_told_otherwise() -> None:
    data = base()
    data["plugins"] = {"key-auth": {}}
    data["targets"] = [{"name": "t", "url": "http://127.0.0.1:9"}]
    data["routes"] += [
        {"name": "plain", "paths": ["/p"], "target": "t"},
        {"name": "ai2", "paths": ["/v2"], "ai": {}, "plugins": {"key-auth": {"bearer": False}}},
    ]
    config = validate(data, built_in())
    routes = {route.name: route for route in config.routes}
    assert routes["ai"].plugins["key-auth"] == {"bearer": True}
    assert "key-auth" not in routes["plain"].plugins
    assert routes["ai2"].plugins["key-auth"] == {"bearer": False}


def test_an_ai_route_waits_as_long_as_its_calls_may_take() -> None:
    data = base()
    data["ai"]["providers"][0]["timeouts"] = {"read": "5m"}
    data["ai"]["models"][0]["retries"] = 1
    config = validate(data, built_in())
    target = next(t for t in config.targets if t.name == "ai-route-ai")
    assert target.timeouts is not None and target.timeouts.read == 600.0  # 5 min x 2 tries
