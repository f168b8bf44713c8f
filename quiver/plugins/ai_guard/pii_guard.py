"""``ai-pii``: personal data in prompts masked (or refused), and masked in
non-streamed answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from quiver.plugins.ai_guard.bodies import HeldAnswers, read_prompt, replace_prompt
from quiver.plugins.ai_guard.pii import ENTITIES, Entity, Finder
from quiver.plugins.ai_guard.problems import PiiRefused
from quiver.plugins.ai_guard.texts import completion_texts, prompt_texts
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.response import ResponseHead


class PiiConfig(PluginConfig):
    entities: list[Entity] = Field(
        default_factory=lambda: list(ENTITIES),
        min_length=1,
        description="Kinds of personal data looked for: email, phone, card (Luhn-checked "
        "numbers of 13 to 19 digits), iban (mod-97 checked), api_key (sk-..., AKIA/ASIA..., "
        "ghp_/gho_/ghs_..., github_pat_..., xoxb-/xoxp-...).",
    )
    action: Literal["mask", "refuse"] = Field(
        "mask",
        description="What a prompt holding any of them gets: 'mask' replaces each one "
        "with its mask before the request goes on; 'refuse' answers 400 naming the kinds.",
    )
    masks: dict[Entity, str] = Field(
        default_factory=dict,
        description="The text that replaces each kind, e.g. {email: '<email>'}; by default "
        "[EMAIL], [PHONE], [CARD], [IBAN], [API_KEY].",
    )
    completions: bool = Field(
        True,
        description="Mask them in non-streamed answers too (the texts of a 2xx JSON "
        "answer; whatever `action` says, answers are masked, never refused).",
    )

    @field_validator("entities")
    @classmethod
    def _once(cls, entities: list[Entity]) -> list[Entity]:
        if len(set(entities)) != len(entities):
            raise ValueError("an entity is listed twice")
        return entities


class Pii(Plugin[PiiConfig]):
    """Finds personal data in prompts (every role's texts, read from the JSON bodies
    of OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, and
    `prompt`/`input` strings, and every string of any other JSON object, such as a
    prompt API's variables) and masks it before the request goes upstream, or
    refuses the request with 400 (a problem document of type
    urn:quiver:problem:pii-refused whose `entities` member names the kinds, never
    the values), e.g. `{entities: [email, card, api_key], masks: {email:
    "<email>"}}`. Only the texts change: a masked body is the same JSON with those
    strings replaced, sent with a new Content-Length. Card numbers must pass the
    Luhn check and IBANs the mod-97 check, so order numbers and dates are left
    alone; phone numbers need 9 to 15 digits and a leading + or separators.
    Non-streamed answers (2xx application/json) are masked the same way in their
    completion texts (choices, Anthropic content blocks, Responses output text);
    streamed answers pass as they are, and so do answers larger than
    `limits.max_buffered_body` (logged once per route). A body that says it is JSON
    but does not parse, or is compressed, is refused (400, unreadable-prompt)."""

    name = "ai-pii"
    priority = 770
    Config = PiiConfig
    reads_body = True

    def __init__(self, config: PiiConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.finder = Finder(config.entities, config.masks)
        self.refuse = config.action == "refuse"
        self.held = HeldAnswers(self.name, context.limits.max_buffered_body, self._mask_answer)
        if not config.completions:
            self.response_headers = None  # type: ignore[method-assign, assignment]
            self.response_body = None  # type: ignore[method-assign, assignment]

    def access(self, request: PluginRequest) -> None:
        prompt = read_prompt(request)
        texts = prompt_texts(prompt)
        found: list[Entity] = []
        for text in texts:
            masked, kinds = self.finder.mask(text.value)
            if kinds:
                found += kinds
                text.replace(masked)
        if not found:
            return
        if self.refuse:
            raise PiiRefused([kind for kind in ENTITIES if kind in found])
        replace_prompt(request, prompt)

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        self.held.response_headers(request, response)

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        return self.held.response_body(request, chunk, last)

    def _mask_answer(self, request: PluginRequest, answer: Any) -> bool:
        changed = False
        for text in completion_texts(answer):
            masked, kinds = self.finder.mask(text.value)
            if kinds:
                text.replace(masked)
                changed = True
        return changed
