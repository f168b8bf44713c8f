"""The ``ai`` section: model providers, the models clients ask for, and what AI routes serve.

A provider is an account at one API (``type`` says which wire format it speaks); a
model is the name clients send in ``model`` and maps to one or more *deployments*
(a provider and that provider's own model name).  A route with ``ai: {}`` answers
the OpenAI- and Anthropic-compatible APIs for those models (docs/ai.md)::

    ai:
      providers:
        - {name: openai, type: openai, api_key: "${OPENAI_API_KEY}"}
      models:
        - name: gpt-4o-mini
          deployments: [{provider: openai, model: gpt-4o-mini}]
    routes:
      - {name: ai, paths: ["/v1"], ai: {}}

The declaration compiles the section into ordinary targets (:func:`expand`): one
``http`` target per provider (so that provider calls get the proxy's pools, health
checks and breakers) and one in-process target of type ``ai`` per AI route.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, Self, TypeVar

from pydantic import Field, field_validator, model_validator

from quiver.config.ai_accounting import AccountingSettings
from quiver.config.ai_prompt import AIPrompt
from quiver.config.base import Duration, Strict
from quiver.config.document import mappings, named
from quiver.config.upstream import NAME_PATTERN, Pool, Timeouts, check_target_url

ProviderType = Literal[
    "openai",
    "azure-openai",
    "anthropic",
    "gemini",
    "bedrock",
    "mistral",
    "ollama",
    "openai-compatible",
]

#: where a provider type is reached when ``base_url`` is not written (None: required)
DEFAULT_BASE_URLS: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "azure-openai": None,
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "bedrock": "https://bedrock-runtime.{region}.amazonaws.com",
    "mistral": "https://api.mistral.ai/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "openai-compatible": None,
}
#: provider types that cannot be called without an API key
_KEY_REQUIRED = ("openai", "azure-openai", "anthropic", "gemini", "mistral")
_AWS_KEYS = ("region", "aws_access_key_id", "aws_secret_access_key")

#: the targets the section compiles into are named after it with these prefixes
PROVIDER_TARGET_PREFIX = "ai-provider-"
ROUTE_TARGET_PREFIX = "ai-route-"
AI_TARGET_TYPE = "ai"


class AIProvider(Strict):
    """One account at a model provider."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name deployments refer to.")
    type: ProviderType = Field(
        description="The API it speaks: openai, azure-openai, anthropic, gemini, bedrock, "
        "mistral, ollama or openai-compatible (vLLM, Groq, Together, DeepSeek, OpenRouter, "
        "LM Studio...)."
    )
    base_url: str | None = Field(
        None,
        description="Where the API is: defaults per type (https://api.openai.com/v1, "
        "https://api.anthropic.com, ...); required for azure-openai "
        "(https://RESOURCE.openai.azure.com) and openai-compatible.",
    )
    api_key: str | None = Field(
        None,
        description='The provider\'s key, e.g. "${OPENAI_API_KEY}"; sent upstream in the '
        "provider's own header, never the client's. Required for openai, azure-openai, "
        "anthropic, gemini and mistral.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="More header fields sent with every call."
    )
    timeouts: Timeouts | None = Field(
        None,
        description="Overrides the global upstream timeouts (a long `read` suits slow "
        "models: it is the longest wait between two reads).",
    )
    pool: Pool | None = Field(None, description="Overrides the global connection pool settings.")
    api_version: str | None = Field(
        None, description='azure-openai only (required there): the api-version, e.g. "2024-10-21".'
    )
    region: str | None = Field(
        None, description='bedrock only (required there): the AWS region, e.g. "us-east-1".'
    )
    aws_access_key_id: str | None = Field(
        None, description="bedrock only (required there): the access key id signing calls."
    )
    aws_secret_access_key: str | None = Field(
        None, description="bedrock only (required there): the secret access key."
    )
    aws_session_token: str | None = Field(
        None, description="bedrock only: the session token of temporary credentials."
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_target_url(value)
        return value

    @model_validator(mode="after")
    def _fields_of_type(self) -> AIProvider:
        kind = self.type
        if DEFAULT_BASE_URLS[kind] is None and self.base_url is None:
            raise ValueError(f"a provider of type {kind!r} needs 'base_url'")
        if kind in _KEY_REQUIRED and not self.api_key:
            raise ValueError(f"a provider of type {kind!r} needs 'api_key'")
        if kind == "azure-openai":
            if self.api_version is None:
                raise ValueError("a provider of type 'azure-openai' needs 'api_version'")
        elif self.api_version is not None:
            raise ValueError("'api_version' is for providers of type 'azure-openai'")
        aws = (*_AWS_KEYS, "aws_session_token")
        if kind == "bedrock":
            missing = [key for key in _AWS_KEYS if getattr(self, key) is None]
            if missing:
                listed = ", ".join(f"'{key}'" for key in missing)
                raise ValueError(f"a provider of type 'bedrock' needs {listed}")
        elif any(getattr(self, key) is not None for key in aws):
            written = next(key for key in aws if getattr(self, key) is not None)
            raise ValueError(f"'{written}' is for providers of type 'bedrock'")
        return self

    @property
    def url(self) -> str:
        """The base URL calls go to (the type's default when none is written)."""
        if self.base_url is not None:
            return self.base_url.rstrip("/")
        default = DEFAULT_BASE_URLS[self.type] or ""
        return default.format(region=self.region or "")


class AIDeployment(Strict):
    """A provider's model serving a client-facing model."""

    provider: str = Field(description="Name of the provider (in `ai.providers`).")
    model: str = Field(
        min_length=1,
        description="The provider's name of the model (Azure: the deployment name; "
        "Bedrock: the model id).",
    )
    weight: int = Field(
        1, ge=0, le=1000, description="Share of traffic relative to the other deployments."
    )
    rpm: int = Field(
        0, ge=0, description="Requests per minute this deployment takes at most; 0: no limit."
    )
    tpm: int = Field(
        0, ge=0, description="Tokens per minute this deployment takes at most; 0: no limit."
    )
    max_context: int | None = Field(
        None,
        gt=0,
        description="Largest prompt plus output (tokens) it accepts; a longer request goes "
        "to a fallback without being sent.",
    )
    max_output: int | None = Field(None, gt=0, description="Most output tokens it can produce.")


class AIPrice(Strict):
    input: float = Field(ge=0, description="USD per million prompt tokens.")
    output: float = Field(ge=0, description="USD per million completion tokens.")


class AIModel(Strict):
    """A model name clients send, and the deployments that answer it."""

    name: str = Field(min_length=1, description="The name clients send as `model`.")
    deployments: list[AIDeployment] = Field(
        min_length=1, description="Where calls go, chosen by `routing`."
    )
    routing: Literal["weighted", "least-busy", "latency"] = Field(
        "weighted",
        description="How a deployment is chosen: weighted (random by weight), least-busy "
        "(fewest calls in flight in the worker) or latency (lowest recent average).",
    )
    fallbacks: list[str] = Field(
        default_factory=list,
        description="Other models tried in order when every deployment failed with 429, "
        "5xx, a timeout or a context-window error (before anything was streamed).",
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description="More tries on another (or the same) deployment after a retryable "
        "failure; a Retry-After shorter than `max_retry_wait` is waited for.",
    )
    max_retry_wait: Duration = Field(
        5.0, description="Longest Retry-After waited for before a retry; longer ones skip it."
    )
    cooldown: Duration = Field(
        30.0,
        description="A deployment that failed (429, 5xx, unreachable) is left out this long "
        "(or for its Retry-After), unless every deployment is.",
    )
    price: AIPrice | None = Field(
        None, description="USD per million tokens; overrides Quiver's shipped price table."
    )
    embeddings: bool = Field(
        False, description="An embedding model (served by /embeddings, not chat)."
    )


class AIConfig(AccountingSettings):
    """Model providers and the models clients ask for (docs/ai.md), and the budgets
    and limits of their use (:mod:`quiver.config.ai_accounting`)."""

    providers: list[AIProvider] = Field(
        default_factory=list, description="Accounts at model providers."
    )
    models: list[AIModel] = Field(
        default_factory=list, description="The model names clients send, and their deployments."
    )


class AIRoute(Strict):
    """The ``ai`` option of a route: it serves the AI APIs under its paths."""

    models: list[str] | None = Field(
        None, description="The models this route serves (names in `ai.models`); all when unset."
    )
    prompt: AIPrompt | None = Field(
        None,
        description="Serve a prompt template as `POST <path> {variables}` instead of the AI "
        "APIs: `{model, template, input_schema, output_schema}` (see docs/ai.md, "
        '"Prompt APIs").',
    )


Where = tuple[str | int, ...]


def reference_issues(data: Mapping[str, object]) -> list[tuple[Where, str]]:
    """Names the ``ai`` section and AI routes refer to that are not defined, duplicates,
    and AI routes without the section, as (where, message) pairs read from plain data."""
    issues: list[tuple[Where, str]] = []
    ai = data.get("ai")
    section = ai if isinstance(ai, dict) else {}
    providers = named(section.get("providers"))
    models = named(section.get("models"))
    for kind, items in (("provider", providers), ("model", models)):
        seen: set[str] = set()
        for index, name in items:
            if name in seen:
                issues.append((("ai", f"{kind}s", index, "name"), f"duplicate {kind} '{name}'"))
            seen.add(name)
    provider_names = [name for _, name in providers]
    model_names = [name for _, name in models]
    for index, model in mappings(section.get("models")):
        for position, deployment in mappings(model.get("deployments")):
            provider = deployment.get("provider")
            if isinstance(provider, str) and provider not in provider_names:
                where: Where = ("ai", "models", index, "deployments", position, "provider")
                issues.append((where, _unknown("provider", provider, provider_names)))
        fallbacks = model.get("fallbacks")
        for position, fallback in enumerate(fallbacks if isinstance(fallbacks, list) else []):
            if isinstance(fallback, str) and fallback not in model_names:
                where = ("ai", "models", index, "fallbacks", position)
                issues.append((where, _unknown("model", fallback, model_names)))
    targets = {name for _, name in named(data.get("targets"))}
    for index, route in mappings(data.get("routes")):
        if not isinstance(route.get("ai"), dict):
            continue
        if not isinstance(ai, dict):
            issues.append((("routes", index, "ai"), "an AI route needs the top-level 'ai' section"))
        allowed = route["ai"].get("models")
        for position, name in enumerate(allowed if isinstance(allowed, list) else []):
            if isinstance(name, str) and name not in model_names:
                where = ("routes", index, "ai", "models", position)
                issues.append((where, _unknown("model", name, model_names)))
        prompt = route["ai"].get("prompt")
        wanted = prompt.get("model") if isinstance(prompt, dict) else None
        if isinstance(wanted, str) and wanted not in model_names:
            where = ("routes", index, "ai", "prompt", "model")
            issues.append((where, _unknown("model", wanted, model_names)))
        route_name = route.get("name")
        if isinstance(route_name, str) and ROUTE_TARGET_PREFIX + route_name in targets:
            message = f"a target named '{ROUTE_TARGET_PREFIX}{route_name}' is taken"
            issues.append((("routes", index, "name"), message))
    for index, name in providers:
        if PROVIDER_TARGET_PREFIX + name in targets:
            where = ("ai", "providers", index, "name")
            issues.append((where, f"a target named '{PROVIDER_TARGET_PREFIX}{name}' is taken"))
    return issues


def _unknown(noun: str, name: str, known: list[str]) -> str:
    if not known:
        return f"unknown {noun} '{name}': none is defined"
    listed = ", ".join(f"'{each}'" for each in known)
    return f"unknown {noun} '{name}' (defined: {listed})"


def provider_targets(ai: AIConfig) -> list[dict[str, Any]]:
    """The ``http`` targets the providers compile into (plain data for ``Target``).

    Retries are the AI router's (it knows which failures another deployment may take
    and honours Retry-After), so the targets themselves do not retry."""
    targets: list[dict[str, Any]] = []
    for provider in ai.providers:
        target: dict[str, Any] = {
            "name": PROVIDER_TARGET_PREFIX + provider.name,
            "url": provider.url,
            "retries": None,
        }
        if provider.timeouts is not None:
            target["timeouts"] = provider.timeouts
        if provider.pool is not None:
            target["pool"] = provider.pool
        targets.append(target)
    return targets


def route_target(
    route_name: str, route: AIRoute, ai: AIConfig, read: float = 60.0
) -> dict[str, Any]:
    """The in-process target an AI route is answered by (plain data for ``Target``).

    Its read timeout bounds the wait for its answer (and between two pieces of a
    stream): the longest read timeout of the providers (``read``: the global one)
    times the tries a call may make, retries and fallbacks included."""
    reads = [
        provider.timeouts.read
        if provider.timeouts is not None and "read" in provider.timeouts.model_fields_set
        else read
        for provider in ai.providers
    ]
    tries = max(((m.retries + 1) * (1 + len(m.fallbacks)) for m in ai.models), default=1)
    return {
        "name": ROUTE_TARGET_PREFIX + route_name,
        "type": AI_TARGET_TYPE,
        "timeouts": {"read": max(reads, default=read) * tries},
        "options": {"route": route_name, "models": route.models, "ai": ai, "prompt": route.prompt},
    }


class RouteLike(Protocol):
    """What :func:`expand` reads of a route (``quiver.config.models.Route``)."""

    @property
    def name(self) -> str: ...
    @property
    def ai(self) -> AIRoute | None: ...
    @property
    def plugins(self) -> dict[str, dict[str, Any]]: ...
    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self: ...


RouteT = TypeVar("RouteT", bound=RouteLike)

#: the key-auth option that reads the key from ``Authorization: Bearer``
_KEY_AUTH, _BEARER = "key-auth", "bearer"


def expand(
    ai: AIConfig,
    routes: Sequence[RouteT],
    plugins: Mapping[str, dict[str, Any]],
    read: float = 60.0,
) -> tuple[list[dict[str, Any]], list[RouteT]]:
    """The targets the section compiles into, and the routes with AI routes pointed at
    theirs (``read``: the global read timeout).  On an AI route key-auth reads
    ``Authorization: Bearer`` keys unless its config says otherwise (the OpenAI and
    Anthropic SDKs send their key that way)."""
    targets = provider_targets(ai)
    expanded: list[RouteT] = []
    for route in routes:
        option = route.ai
        if option is None:
            expanded.append(route)
            continue
        targets.append(route_target(route.name, option, ai, read))
        update: dict[str, Any] = {"target": ROUTE_TARGET_PREFIX + route.name}
        own = route.plugins
        key_auth = own.get(_KEY_AUTH, plugins.get(_KEY_AUTH))
        if key_auth is not None and _BEARER not in key_auth:
            update["plugins"] = {**own, _KEY_AUTH: {**key_auth, _BEARER: True}}
        expanded.append(route.model_copy(update=update))
    return targets, expanded
