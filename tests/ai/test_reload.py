"""A reload keeps an AI route's state when the ai section did not change (cooldowns,
latencies) and serves a changed section at once."""

from __future__ import annotations

import httpx

from tests.ai.conftest import ALICE_KEY
from tests.ai.mock_providers import KEYS, MockProviders
from tests.support.catalog import load_config_text
from tests.support.proxy import RunningProxy


def config(mocks: MockProviders, models: list[str]) -> str:
    listed = "".join(
        f"    - {{name: {name}, deployments: [{{provider: oa, model: {name}}}]}}\n"
        for name in models
    )
    return f"""
listen: 127.0.0.1:0
ai:
  providers:
    - {{name: oa, type: openai, base_url: "{mocks.base_url("openai")}", api_key: {KEYS["openai"]}}}
  models:
{listed}consumers:
  - name: alice
    credentials: {{key-auth: [{{key: {ALICE_KEY}}}]}}
plugins:
  key-auth: {{}}
routes:
  - {{name: ai, paths: ["/v1"], ai: {{}}}}
  - {{name: other, paths: ["/other"], target: backend}}
targets:
  - {{name: backend, url: "http://127.0.0.1:9"}}
"""


def models_of(proxy: RunningProxy) -> list[str]:
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    response = httpx.get(proxy.url + "/v1/models", headers=headers)
    return [model["id"] for model in response.json()["data"]]


def test_a_reload_keeps_or_rebuilds_the_ai_target(mock_providers: MockProviders) -> None:
    with RunningProxy(config(mock_providers, ["a"])) as proxy:
        assert proxy.server is not None
        server = proxy.server
        before = server.state.snapshot.targets["ai-route-ai"].responder
        same = load_config_text(config(mock_providers, ["a"]))
        proxy.call(server.swap, same)
        assert server.state.snapshot.targets["ai-route-ai"].responder is before
        changed = load_config_text(config(mock_providers, ["a", "b"]))
        proxy.call(server.swap, changed)
        assert server.state.snapshot.targets["ai-route-ai"].responder is not before
        assert models_of(proxy) == ["a", "b"]
