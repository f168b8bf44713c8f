"""``ai-moderation``: the prompt is sent to a moderation endpoint (OpenAI's
``/moderations`` wire format) before the request goes on."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration
from quiver.errors import HTTPError
from quiver.http.fields import TOKEN
from quiver.plugins.ai_guard.bodies import read_prompt
from quiver.plugins.ai_guard.problems import ModerationUnavailable, PromptFlagged
from quiver.plugins.ai_guard.texts import Role, prompt_texts
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest

log = logging.getLogger("quiver.plugins")

#: a failing endpoint is reported at most once per this many seconds
WARN_INTERVAL = 60.0
#: the largest moderation answer read
MAX_ANSWER = 1 << 20


class ModerationConfig(PluginConfig):
    url: str = Field(
        description="The moderation endpoint: https://api.openai.com/v1/moderations, any "
        "server speaking that format, or target://NAME/path to reach a target of the "
        "config through its balancer and health checks."
    )
    api_key: str | None = Field(
        None,
        description='Sent as "Authorization: Bearer <key>", e.g. "${OPENAI_API_KEY}".',
    )
    model: str | None = Field(
        None,
        min_length=1,
        description="The `model` of the moderation request, e.g. omni-moderation-latest "
        "(left out when unset: the endpoint's default).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="More request headers for the endpoint."
    )
    timeout: Duration = Field(
        5.0, gt=0, description="How long the endpoint may take before on_error decides."
    )
    on_error: Literal["allow", "deny"] = Field(
        description="When the endpoint fails (unreachable, too slow, not 200, an answer "
        "that does not parse): 'allow' lets the request through unchecked, 'deny' "
        "refuses it with 503. Required: the choice is the operator's."
    )
    categories: list[str] | None = Field(
        None,
        description="Only these categories refuse (e.g. [violence, self-harm]); by default "
        "every category the endpoint flags.",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Refuse when a category's score reaches this value, flagged or not, "
        "e.g. {harassment: 0.5}.",
    )
    roles: list[Role] = Field(
        default_factory=lambda: list[Role](["user"]),
        min_length=1,
        description="Whose prompt texts are sent for moderation: any of system, user, "
        "assistant, tool.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://", "target://")):
            raise ValueError("url must start with http://, https:// or target://")
        return url

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"the value of {name!r} has a line break")
        return headers

    @model_validator(mode="after")
    def _scores(self) -> ModerationConfig:
        for category, score in self.thresholds.items():
            if not 0 <= score <= 1:
                raise ValueError(f"the threshold of {category!r} must be between 0 and 1")
        return self


class Moderation(Plugin[ModerationConfig]):
    """Sends the prompt's texts (those of `roles`, read from the JSON bodies of OpenAI
    Chat Completions, OpenAI Responses, Anthropic Messages, `prompt`/`input`
    strings, and every string of any other JSON object, such as a prompt API's
    variables) to a moderation endpoint in OpenAI's /moderations format (`{"input":
    [texts], "model": ...}` answered with `results[].flagged`, `categories` and
    `category_scores`), through the gateway's own HTTP client, before the request
    goes on. A flagged prompt is refused with 400 (a problem document of type
    urn:quiver:problem:prompt-flagged whose `categories` member names the categories
    that flagged it), e.g. `{url: "https://api.openai.com/v1/moderations", api_key:
    "${OPENAI_API_KEY}", model: omni-moderation-latest, on_error: deny}`. When the
    endpoint fails, `on_error` decides: allow (logged at most once a minute) or deny
    (503, moderation-unavailable). It runs after ai-pii, so masked data is what the
    endpoint sees. A request with no prompt text is not sent."""

    name = "ai-moderation"
    priority = 760
    Config = ModerationConfig
    reads_body = True

    def __init__(self, config: ModerationConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.roles = frozenset(config.roles)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if config.api_key:
            self.headers["Authorization"] = f"Bearer {config.api_key}"
        self.headers.update(config.headers)
        self.categories = frozenset(config.categories) if config.categories is not None else None
        self.warned_at = -WARN_INTERVAL

    def access(self, request: PluginRequest) -> Any:
        texts = [t.value for t in prompt_texts(read_prompt(request)) if t.role in self.roles]
        texts = [text for text in texts if text.strip()]
        if not texts:
            return None
        return self._moderate(texts)

    async def _moderate(self, texts: list[str]) -> None:
        document: dict[str, Any] = {"input": texts}
        if self.config.model is not None:
            document["model"] = self.config.model
        try:
            results = await self._ask(orjson.dumps(document))
        except (HTTPError, OSError, ValueError, TimeoutError) as exc:
            self._failed(exc)
            return
        flagged = self._flagged(results)
        if flagged is not None:
            raise PromptFlagged(flagged)

    async def _ask(self, body: bytes) -> list[Any]:
        outbound = self.context.outbound
        if outbound is None:
            raise ValueError("no HTTP client where nothing is served")
        config = self.config
        response = await outbound.request(
            "POST", config.url, headers=self.headers, body=body, timeout=config.timeout
        )
        async with response:
            data = await response.read(limit=MAX_ANSWER)
        if response.status != 200:
            raise ValueError(f"the endpoint answered {response.status}")
        answer = orjson.loads(data)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise ValueError("the answer has no results list")
        return results

    def _flagged(self, results: list[dict[str, Any]]) -> list[str] | None:
        """The categories that refuse the prompt (sorted; [] when flagged without
        any named), or None when it passes."""
        named: set[str] = set()
        refused = False
        wanted = self.categories
        for result in results:
            categories = result.get("categories")
            scores = result.get("category_scores")
            if isinstance(categories, dict):
                named.update(
                    name
                    for name, on in categories.items()
                    if on is True and (wanted is None or name in wanted)
                )
            if isinstance(scores, dict):
                for name, threshold in self.config.thresholds.items():
                    score = scores.get(name)
                    if isinstance(score, int | float) and score >= threshold:
                        named.add(name)
            if wanted is None and result.get("flagged") is True:
                refused = True
        if named or refused:
            return sorted(named)
        return None

    def _failed(self, exc: BaseException) -> None:
        deny = self.config.on_error == "deny"
        now = time.monotonic()
        if now - self.warned_at >= WARN_INTERVAL:
            self.warned_at = now
            log.warning(
                "%s: the moderation endpoint failed (%s); requests are %s "
                "(reported at most once a minute)",
                self.name,
                exc,
                "refused" if deny else "let through unchecked",
            )
        if deny:
            raise ModerationUnavailable("the prompt could not be moderated; try again shortly")
