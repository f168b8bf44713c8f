"""Fixtures of the AI tests: the mock model providers of every type
(tests/ai/mock_providers), and one proxy with AI routes in front of them, shared by
the tests of the fronts (the proxy's state they touch is per request)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ai.mock_providers import KEYS, MockProviders, MockRequest
from tests.support.proxy import RunningProxy

ALICE_KEY = "alice-key-0123456789"
#: a header field every call to the provider ``oa`` carries (its ``headers``)
ORGANIZATION = "org-quiver-tests"
#: the read timeout of the provider ``oa-impatient`` (seconds)
IMPATIENT_READ = 0.3
BOB_KEY = "bob-key-0123456789"
CAROL_KEY = "carol-key-0123456789"  # (carol and dave: team ops)
DAVE_KEY = "dave-key-0123456789"
ERIN_KEY = "erin-key-0123456789"  # (2 requests per minute)


@dataclass
class Gateway:
    mocks: MockProviders
    proxy: RunningProxy

    @property
    def base_url(self) -> str:
        """The OpenAI SDK's base_url for the main AI route."""
        return self.proxy.url + "/v1"

    def last(self) -> MockRequest:
        """The last request a provider received."""
        return self.mocks.requests[-1]


def gateway_config(mocks: MockProviders) -> str:
    openai, anthropic = mocks.base_url("openai"), mocks.base_url("anthropic")
    return f"""
listen: 127.0.0.1:0
ai:
  providers:
    - name: oa
      type: openai
      base_url: "{openai}"
      api_key: {KEYS["openai"]}
      headers: {{OpenAI-Organization: {ORGANIZATION}}}
    - {{name: an, type: anthropic, base_url: "{anthropic}", api_key: {KEYS["anthropic"]}}}
    - name: oa-impatient
      type: openai
      base_url: "{openai}"
      api_key: {KEYS["openai"]}
      timeouts: {{read: {IMPATIENT_READ}}}
  models:
    - {{name: gpt, deployments: [{{provider: oa, model: gpt-4o-mini}}]}}
    - name: gpt-with-fallback
      deployments: [{{provider: oa, model: gpt-4o}}]
      fallbacks: [gpt-steady]
      retries: 1
      max_retry_wait: 0.1
    - {{name: gpt-steady, deployments: [{{provider: oa, model: gpt-steady}}]}}
    - name: gpt-impatient
      deployments: [{{provider: oa-impatient, model: gpt-impatient}}]
      retries: 0
      fallbacks: [gpt-steady]
    - name: gpt-impatient-alone
      deployments: [{{provider: oa-impatient, model: gpt-impatient}}]
      retries: 0
    - name: gpt-pair
      deployments:
        - {{provider: oa, model: gpt-first, weight: 1}}
        - {{provider: oa, model: gpt-second, weight: 0}}
      retries: 1
    - name: gpt-patient
      deployments: [{{provider: oa, model: gpt-patient}}]
      retries: 1
      max_retry_wait: 5s
    - name: gpt-quickest
      routing: latency
      deployments: [{{provider: oa, model: gpt-lat-a}}, {{provider: oa, model: gpt-lat-b}}]
    - name: gpt-least-busy
      routing: least-busy
      deployments:
        - {{provider: oa, model: gpt-busy-a, weight: 2}}
        - {{provider: oa, model: gpt-busy-b, weight: 1}}
    - name: gpt-duo
      deployments: [{{provider: oa, model: gpt-left}}, {{provider: oa, model: gpt-right}}]
    - name: gpt-small-window
      deployments: [{{provider: oa, model: gpt-tiny, max_context: 100}}]
      fallbacks: [gpt-steady]
    - name: embed
      deployments: [{{provider: oa, model: text-embedding-3-small}}]
      embeddings: true
    - {{name: claude, deployments: [{{provider: an, model: claude-3-5-haiku}}]}}
    - name: claude-with-fallback
      deployments: [{{provider: an, model: claude-3-opus}}]
      fallbacks: [claude-steady]
    - {{name: claude-steady, deployments: [{{provider: an, model: claude-steady}}]}}
  budgets:
    - {{consumer: bob, tokens: 100, period: total}}
    - {{team: ops, tokens: 100, period: total}}
  limits:
    - {{consumer: erin, rpm: 2}}
consumers:
  - name: alice
    credentials: {{key-auth: [{{key: {ALICE_KEY}}}]}}
  - name: bob
    credentials: {{key-auth: [{{key: {BOB_KEY}}}]}}
  - name: carol
    team: ops
    credentials: {{key-auth: [{{key: {CAROL_KEY}}}]}}
  - name: dave
    team: ops
    credentials: {{key-auth: [{{key: {DAVE_KEY}}}]}}
  - name: erin
    credentials: {{key-auth: [{{key: {ERIN_KEY}}}]}}
plugins:
  key-auth: {{}}
routes:
  - {{name: ai, paths: ["/v1"], ai: {{}}}}
  - {{name: narrow, paths: ["/narrow/v1"], ai: {{models: [gpt]}}}}
"""


@pytest.fixture(scope="session")
def gateway(mock_providers: MockProviders) -> Iterator[Gateway]:
    with RunningProxy(gateway_config(mock_providers)) as proxy:
        yield Gateway(mock_providers, proxy)


@pytest.fixture(scope="session")
def mock_providers() -> Iterator[MockProviders]:
    """Every provider type's mock on one local server (see tests/ai/mock_providers)."""
    with MockProviders() as mocks:
        yield mocks
