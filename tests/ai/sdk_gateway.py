"""A running Quiver whose AI route serves one model per provider type, over the mocks.

Model names, for each provider type ``T`` (``openai``, ``azure-openai``, ...):

- ``chat-T``: the type's chat model;
- ``embed-T``: its embedding model (every type but anthropic);
- ``flaky-T``: the chat model again, no retries, falling back to ``chat-openai``
  (``chat-ollama`` for openai; ``FAIL_429@T`` in a message makes only ``T`` fail);
- ``fragile-T``: the chat model again, no retries and no fallback;
- ``chat-bedrock-sts``: the bedrock model reached with temporary credentials;
- ``misconfigured``: an openai deployment whose provider key the provider refuses.

The provider keys reach the config through ``${ENV}``; clients authenticate as the
consumer ``alice`` with :data:`CLIENT_KEY` (key-auth, read from a bearer token).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ai.mock_providers import (
    AWS,
    AWS_TEMPORARY,
    EMBEDDING_MODELS,
    KEYS,
    MODELS,
    PROVIDER_TYPES,
    MockProviders,
)
from tests.support.process import QuiverProcess, serving, write_config

CLIENT_KEY = "quiver-client-key-alice"
WRONG_PROVIDER_KEY = "sk-not-the-right-provider-key-0000"
#: the model each flaky-T falls back to (of another provider type than T)
FALLBACK = {t: "chat-ollama" if t == "openai" else "chat-openai" for t in PROVIDER_TYPES}
EMBEDDING_TYPES = tuple(t for t in PROVIDER_TYPES if t in EMBEDDING_MODELS)


def _variable(provider: str) -> str:
    return "MOCK_" + provider.upper().replace("-", "_") + "_KEY"


def config_text(mocks: MockProviders) -> str:
    lines = [
        "listen: 127.0.0.1:0",
        "consumers:",
        "  - name: alice",
        "    credentials:",
        "      key-auth: [{key: '${QUIVER_TEST_CLIENT_KEY}'}]",
        "ai:",
        "  providers:",
    ]
    for provider in PROVIDER_TYPES:
        lines += [f"    - name: p-{provider}", f"      type: {provider}"]
        base = mocks.base_url(provider)
        if provider == "azure-openai":
            base = mocks.origin + "/azure"
            lines.append("      api_version: '2024-10-21'")
        lines.append(f"      base_url: {base}")
        if provider in KEYS:
            lines.append(f"      api_key: '${{{_variable(provider)}}}'")
        if provider == "bedrock":
            lines += [f"      {name}: '{value}'" for name, value in AWS.items()]
    lines += ["    - name: p-bedrock-sts", "      type: bedrock"]
    lines.append(f"      base_url: {mocks.base_url('bedrock')}")
    lines += [f"      {name}: '{value}'" for name, value in AWS_TEMPORARY.items()]
    lines += [
        "    - name: p-wrong-key",
        "      type: openai",
        f"      base_url: {mocks.base_url('openai')}",
        f"      api_key: '{WRONG_PROVIDER_KEY}'",
    ]
    lines.append("  models:")
    for provider in PROVIDER_TYPES:
        deployment = f"[{{provider: p-{provider}, model: '{MODELS[provider]}'}}]"
        lines += [f"    - name: chat-{provider}", f"      deployments: {deployment}"]
        lines += [
            f"    - name: flaky-{provider}",
            f"      deployments: {deployment}",
            "      retries: 0",
            f"      fallbacks: [{FALLBACK[provider]}]",
            f"    - name: fragile-{provider}",
            f"      deployments: {deployment}",
            "      retries: 0",
        ]
        if provider in EMBEDDING_MODELS:
            embedding = f"[{{provider: p-{provider}, model: '{EMBEDDING_MODELS[provider]}'}}]"
            lines += [
                f"    - name: embed-{provider}",
                f"      deployments: {embedding}",
                "      embeddings: true",
            ]
    lines += [
        "    - name: chat-bedrock-sts",
        f"      deployments: [{{provider: p-bedrock-sts, model: '{MODELS['bedrock']}'}}]",
        "    - name: misconfigured",
        f"      deployments: [{{provider: p-wrong-key, model: '{MODELS['openai']}'}}]",
        "      retries: 0",
        "routes:",
        "  - name: ai",
        '    paths: ["/v1"]',
        "    ai: {}",
        "    plugins:",
        "      key-auth: {}",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def running_gateway(mocks: MockProviders, directory: Path) -> Iterator[QuiverProcess]:
    """``quiver serve`` on the config above, until the block ends."""
    config = write_config(directory, config_text(mocks))
    env: dict[str, str | None] = {_variable(p): KEYS[p] for p in KEYS}
    env["QUIVER_TEST_CLIENT_KEY"] = CLIENT_KEY
    with serving(config, env=env) as process:
        yield process


def origin(process: QuiverProcess) -> str:
    return f"http://127.0.0.1:{process.port}"
