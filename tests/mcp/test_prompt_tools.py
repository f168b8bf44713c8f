"""A prompt API of the AI gateway published as an MCP tool: its generated OpenAPI
document read through the gateway, its call sent to the model through the route."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from mcp import Client

from tests.ai.extras.prompt_provider import prompt_provider
from tests.ai.extras.test_prompt_api import SUMMARY_SCHEMA, gateway_config
from tests.mcp.sdk import with_client
from tests.support.proxy import RunningProxy
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def proxy() -> Iterator[RunningProxy]:
    prompt = {
        "model": "small",
        "template": "Summarize: {{text}}",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
        "output_schema": SUMMARY_SCHEMA,
        "summary": "Summarize a text",
    }
    with Upstream(prompt_provider) as provider:
        config = json.loads(gateway_config(provider.url, prompt))
        config["routes"].append(
            {
                "name": "prompt-tools",
                "paths": ["/prompt-tools"],
                "mcp": {"openapi": {"path": "/summarize/openapi.json"}},
            }
        )
        with RunningProxy(json.dumps(config)) as running:
            yield running


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_prompt_api_is_a_tool_that_calls_the_model(proxy: RunningProxy, mode: str) -> None:
    async def work(client: Client) -> None:
        [tool] = (await client.list_tools()).tools
        assert tool.description is not None and "Summarize a text" in tool.description
        assert tool.input_schema["required"] == ["text"]
        result = await client.call_tool(tool.name, {"text": "the gateway speaks MCP"})
        assert result.is_error is False, result.content
        assert "Summarize: the gateway speaks MCP" in json.dumps(result.structured_content)
        refused = await client.call_tool(tool.name, {"text": 3})
        assert refused.is_error is True

    with_client(f"{proxy.url}/prompt-tools/mcp", work, mode=mode)
