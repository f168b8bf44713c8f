"""Provider types as data: what each ``type`` of ``ai.providers`` speaks and where.

A :class:`ProviderKind` says which wire format a provider's chat API speaks (the
front passes a request through unchanged but for ``model`` when the formats
match, and converts otherwise), how calls authenticate, and the path of each API
(``{model}`` is the deployment's model, URL-encoded; ``{version}`` Azure's
api-version).  Adding an OpenAI-like provider is adding a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from quiver.ai.dialects import Dialect, mistral
from quiver.config.ai import AIProvider

Wire = Literal["openai", "anthropic", "gemini", "bedrock"]
Auth = Literal["bearer", "api-key", "x-api-key", "x-goog-api-key", "sigv4"]

ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True, slots=True)
class ProviderKind:
    type: str
    #: the format of its chat API (and of its streams)
    wire: Wire
    auth: Auth
    chat: str
    stream: str
    embeddings: str | None
    count_tokens: str | None = None
    #: header fields every call carries
    fixed_headers: tuple[tuple[str, str], ...] = ()
    #: an OpenAI-like stream: whether the API takes ``stream_options`` (Mistral refuses
    #: it, and sends the usage on its last chunk unasked)
    stream_options: bool = True
    #: an OpenAI-like stream the client may get byte for byte (Azure's starts with a
    #: chunk of prompt filter results and no choices; Mistral's usage is misplaced)
    exact_stream: bool = True
    #: an OpenAI-like API that takes a request in its own terms (see ``dialects``)
    dialect: Dialect | None = None


_OPENAI_PATHS = ("/chat/completions", "/chat/completions", "/embeddings")

KINDS: dict[str, ProviderKind] = {
    kind.type: kind
    for kind in (
        ProviderKind("openai", "openai", "bearer", *_OPENAI_PATHS),
        ProviderKind(
            "azure-openai",
            "openai",
            "api-key",
            chat="/openai/deployments/{model}/chat/completions?api-version={version}",
            stream="/openai/deployments/{model}/chat/completions?api-version={version}",
            embeddings="/openai/deployments/{model}/embeddings?api-version={version}",
            exact_stream=False,
        ),
        ProviderKind(
            "anthropic",
            "anthropic",
            "x-api-key",
            chat="/v1/messages",
            stream="/v1/messages",
            embeddings=None,
            count_tokens="/v1/messages/count_tokens",
            fixed_headers=(("anthropic-version", ANTHROPIC_VERSION),),
        ),
        ProviderKind(
            "gemini",
            "gemini",
            "x-goog-api-key",
            chat="/v1beta/models/{model}:generateContent",
            stream="/v1beta/models/{model}:streamGenerateContent?alt=sse",
            embeddings="/v1beta/models/{model}:batchEmbedContents",
        ),
        ProviderKind(
            "bedrock",
            "bedrock",
            "sigv4",
            chat="/model/{model}/converse",
            stream="/model/{model}/converse-stream",
            embeddings="/model/{model}/invoke",
        ),
        ProviderKind(
            "mistral",
            "openai",
            "bearer",
            *_OPENAI_PATHS,
            stream_options=False,
            exact_stream=False,
            dialect=mistral,
        ),
        ProviderKind("ollama", "openai", "bearer", *_OPENAI_PATHS),
        ProviderKind("openai-compatible", "openai", "bearer", *_OPENAI_PATHS),
    )
}


def path_of(template: str, model: str, provider: AIProvider) -> str:
    """A path template of :class:`ProviderKind` filled for one deployment."""
    return template.format(model=quote(model, safe=""), version=quote(provider.api_version or ""))


def auth_headers(kind: ProviderKind, provider: AIProvider) -> dict[str, str]:
    """The header fields of every call to ``provider`` (SigV4's are added per call)."""
    headers = {"Content-Type": "application/json", **dict(kind.fixed_headers)}
    key = provider.api_key
    if key:
        if kind.auth == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif kind.auth in ("api-key", "x-api-key", "x-goog-api-key"):
            headers[kind.auth] = key
    headers.update(provider.headers)
    return headers
