"""Local model providers speaking each real wire format, for tests.

:class:`MockProviders` is one HTTP server (real sockets, 127.0.0.1, port 0) serving
every provider type under its own path prefix; :attr:`MockProviders.base_urls` gives
each type's ``base_url`` as Quiver's config takes it, and :data:`KEYS` the credentials
each mock accepts.  What a mock answers is steered by the last user message (see
:mod:`.script`); every request is recorded (:attr:`MockProviders.requests`) with the
usage the mock counted.

Modules: ``server`` (the HTTP server), ``script`` (steering, usage, ids),
``openai_like`` (openai, azure-openai, mistral, ollama, openai-compatible) with
``openai_requests`` (reading their requests), ``anthropic``, ``gemini``, ``bedrock``
(with ``eventstream`` framing and an independent ``sigv4`` verifier); ``calls`` holds
the direct calls the mocks' own tests make.
"""

from __future__ import annotations

from tests.ai.mock_providers.anthropic import Anthropic
from tests.ai.mock_providers.bedrock import Bedrock
from tests.ai.mock_providers.gemini import Gemini
from tests.ai.mock_providers.openai_like import Flavor, OpenAILike
from tests.ai.mock_providers.server import MockRequest, MockServer, Reply, StreamReply, json_reply

PROVIDER_TYPES = (
    "openai",
    "azure-openai",
    "anthropic",
    "gemini",
    "bedrock",
    "mistral",
    "ollama",
    "openai-compatible",
)
KEYS = {
    "openai": "sk-mock-openai-0123456789",
    "azure-openai": "mock-azure-key-0123456789",
    "anthropic": "sk-ant-mock-0123456789",
    "gemini": "AIzaMockGeminiKey0123456789",
    "mistral": "mock-mistral-key-0123456789",
    "openai-compatible": "mock-compat-key-0123456789",
}
AWS = {
    "region": "us-east-1",
    "aws_access_key_id": "AKIDMOCKBEDROCK",
    "aws_secret_access_key": "mock/secret/Key+0123456789abcdefghijklmn",
}
# path prefix of each type; base_url = http://127.0.0.1:PORT + prefix (+ BASE_SUFFIX)
PREFIXES = {
    "openai": "/openai",
    "azure-openai": "/azure",
    "anthropic": "/anthropic",
    "gemini": "/gemini",
    "bedrock": "/bedrock",
    "mistral": "/mistral",
    "ollama": "/ollama",
    "openai-compatible": "/compat",
}
# the part of the path a real base_url already holds (OpenAI's is https://api.openai.com/v1)
BASE_SUFFIX = {"openai": "/v1", "mistral": "/v1", "ollama": "/v1", "openai-compatible": "/v1"}
# a model name of each type, as its provider spells it
MODELS = {
    "openai": "gpt-4o-mini",
    "azure-openai": "gpt-4o-mini-deployment",
    "anthropic": "claude-3-5-haiku-20241022",
    "gemini": "gemini-2.0-flash",
    "bedrock": "anthropic.claude-3-haiku-20240307-v1:0",
    "mistral": "mistral-small-latest",
    "ollama": "llama3.2:latest",
    "openai-compatible": "meta-llama/Llama-3.1-8B-Instruct",
}
EMBEDDING_MODELS = {
    "openai": "text-embedding-3-small",
    "azure-openai": "embedding-deployment",
    "gemini": "text-embedding-004",
    "bedrock": "amazon.titan-embed-text-v2:0",
    "mistral": "mistral-embed",
    "ollama": "nomic-embed-text:latest",
    "openai-compatible": "BAAI/bge-small-en-v1.5",
}

__all__ = [
    "AWS",
    "EMBEDDING_MODELS",
    "KEYS",
    "MODELS",
    "PROVIDER_TYPES",
    "MockProviders",
    "MockRequest",
]


class MockProviders:
    """Every provider mock on one server; ``start()`` / ``stop()`` or use as a context."""

    def __init__(self) -> None:
        def flavor(name: str, owned_by: str = "system") -> OpenAILike:
            models = (MODELS[name], EMBEDDING_MODELS[name])
            return OpenAILike(Flavor(name, KEYS.get(name), models, owned_by))

        self.handlers: dict[str, OpenAILike | Anthropic | Gemini | Bedrock] = {
            "openai": flavor("openai"),
            "azure-openai": flavor("azure-openai"),
            "anthropic": Anthropic(KEYS["anthropic"]),
            "gemini": Gemini(KEYS["gemini"]),
            "bedrock": Bedrock(
                AWS["aws_access_key_id"], AWS["aws_secret_access_key"], AWS["region"]
            ),
            "mistral": flavor("mistral", "mistralai"),
            "ollama": flavor("ollama", "library"),
            "openai-compatible": flavor("openai-compatible", "vllm"),
        }
        self.server = MockServer(self._dispatch)

    async def _dispatch(self, request: MockRequest) -> Reply | StreamReply:
        for provider, prefix in PREFIXES.items():
            if request.target == prefix or request.target.startswith((prefix + "/", prefix + "?")):
                request.provider = provider
                request.path = request.target[len(prefix) :] or "/"
                return await self.handlers[provider].handle(request)
        return json_reply(404, {"error": f"no mock provider serves {request.target}"})

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> MockProviders:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> MockProviders:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def base_url(self, provider: str) -> str:
        """The ``base_url`` a client (or Quiver's config) gives for ``provider``."""
        return self.origin + PREFIXES[provider] + BASE_SUFFIX.get(provider, "")

    @property
    def base_urls(self) -> dict[str, str]:
        return {provider: self.base_url(provider) for provider in PROVIDER_TYPES}

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[MockRequest]:
        return self.server.requests

    def received(
        self, provider: str | None = None, containing: str | None = None
    ) -> list[MockRequest]:
        """The requests a provider got (all providers when None), those whose body
        contains ``containing`` when given, oldest first."""
        return [
            r
            for r in list(self.server.requests)
            if (provider is None or r.provider == provider)
            and (containing is None or containing.encode() in r.body)
        ]

    def last(self, provider: str | None = None, containing: str | None = None) -> MockRequest:
        found = self.received(provider, containing)
        assert found, f"no request reached {provider or 'any provider'} containing {containing!r}"
        return found[-1]
