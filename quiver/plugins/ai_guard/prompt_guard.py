"""``ai-prompt-guard``: deny (and allow) lists of regular expressions and keywords
on prompts, and a deny list on answers, whole or streamed (``streams``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from quiver.plugins.ai_guard.bodies import HeldAnswers, read_prompt
from quiver.plugins.ai_guard.problems import PromptRefused
from quiver.plugins.ai_guard.rules import GuardRule, Rules, check_names
from quiver.plugins.ai_guard.streams import StreamGuard
from quiver.plugins.ai_guard.texts import (
    Role,
    completion_texts,
    last_turn,
    prompt_texts,
    withheld_message,
    withhold,
)
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.json_body import is_identity
from quiver.plugins.response import ResponseHead
from quiver.plugins.sse import is_event_stream

RuleList = Annotated[list[GuardRule], AfterValidator(check_names)]


class PromptGuardConfig(PluginConfig):
    deny: RuleList = Field(
        default_factory=list,
        description="Rules no checked prompt text may match: `[{name: secrets, regex: "
        "'(?i)password'}, {keywords: [acme]}]`; the first that matches refuses the request.",
    )
    allow: RuleList = Field(
        default_factory=list,
        description="When set, every checked prompt text must match one of these rules "
        "(deny rules are still applied first).",
    )
    completion_deny: RuleList = Field(
        default_factory=list,
        description="Rules no text of an answer may match; a match withholds a "
        "non-streamed answer and ends a streamed one with an error event (see above).",
    )
    stream_window: int = Field(
        64,
        ge=0,
        le=65536,
        description="Characters of a streamed answer's text held back before they go "
        "to the client: a match no longer than this is caught before any of it is sent "
        "(longer ones are looked for over the last max(stream_window, 64) characters); "
        "0 sends every event at once and only cuts the stream after a match.",
    )
    roles: list[Role] = Field(
        default_factory=lambda: list[Role](["user"]),
        min_length=1,
        description="Whose prompt texts are checked: any of system (also Responses "
        "instructions, Anthropic system), user, assistant, tool (tool results).",
    )
    whole_conversation: bool = Field(
        True,
        description="Check every message of those roles; false: only the last one, all "
        "its parts (earlier ones passed when they were sent).",
    )

    @model_validator(mode="after")
    def _something(self) -> PromptGuardConfig:
        if not (self.deny or self.allow or self.completion_deny):
            raise ValueError("give at least one rule in deny, allow or completion_deny")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError("a role is listed twice")
        return self


class PromptGuard(Plugin[PromptGuardConfig]):
    """Refuses prompts that match a deny rule, or no allow rule, with 400 (a problem
    document of type urn:quiver:problem:prompt-refused whose `rule` member names the
    rule; the text is never repeated). Rules are regular expressions (searched) or
    keywords (whole words, any case by default), e.g. `{deny: [{name: secrets, regex:
    "(?i)api[_ ]?key"}, {name: rivals, keywords: [acme corp]}], completion_deny:
    [{name: internal, keywords: [project falcon]}]}`. Prompts are read from the JSON
    request bodies of OpenAI Chat Completions (`messages`, text or parts), OpenAI
    Responses (`input`, `instructions`), Anthropic Messages (`system`, `messages`
    content blocks, tool results), of `prompt`/`input` strings (completions,
    embeddings), and every string of any other JSON object (a prompt API's
    variables); a body that says it is JSON but does not parse, or is compressed, is
    refused (400, unreadable-prompt), since it cannot be checked. A non-streamed
    answer (2xx application/json) whose text matches a `completion_deny` rule is
    withheld: its head has gone out already, so the answer is replaced in its own
    format by a refusal naming the rule (OpenAI `finish_reason: content_filter` with
    the message's `refusal`; Anthropic `stop_reason: refusal`; Responses `status:
    incomplete`, reason content_filter). Answers larger than
    `limits.max_buffered_body` go unchecked (logged once per route). A streamed
    answer (2xx text/event-stream) is checked as it goes: its events are held until
    `stream_window` characters of text follow them, and a match drops what is held
    and ends the stream with the API's error event naming the rule (code
    completion_refused)."""

    name = "ai-prompt-guard"
    priority = 780
    Config = PromptGuardConfig
    reads_body = True

    def __init__(self, config: PromptGuardConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.deny = Rules(config.deny, "deny")
        self.allow = Rules(config.allow, "allow")
        self.completion_deny = Rules(config.completion_deny, "completion_deny")
        self.roles = frozenset(config.roles)
        self.whole = config.whole_conversation
        self.held = HeldAnswers(self.name, context.limits.max_buffered_body, self._check_answer)
        self.window = config.stream_window
        self._stream = self.name + ":stream"
        # phases without rules are dropped: the route keeps streaming its bodies
        if not self.completion_deny:
            self.response_headers = None  # type: ignore[method-assign, assignment]
            self.response_body = None  # type: ignore[method-assign, assignment]
        if not (self.deny or self.allow):
            self.reads_body = False
            self.access = None  # type: ignore[method-assign, assignment]

    def access(self, request: PluginRequest) -> None:
        texts = [text for text in prompt_texts(read_prompt(request)) if text.role in self.roles]
        if not self.whole:
            texts = last_turn(texts)
        for text in texts:
            value = text.value
            rule = self.deny.first_match(value)
            if rule is not None:
                raise PromptRefused(f"the prompt matches the deny rule {rule!r}", rule)
            if self.allow and self.allow.first_match(value) is None:
                raise PromptRefused("the prompt matches no allow rule", None)

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        if (
            is_event_stream(response.get(b"content-type"))
            and 200 <= response.status < 300
            and request.method != b"HEAD"
            and is_identity(response.get(b"content-encoding"))
        ):
            request.ctx[self._stream] = StreamGuard(
                self.completion_deny, self.window, self.context.limits.max_buffered_body
            )
        else:
            self.held.response_headers(request, response)

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        stream: StreamGuard | None = request.ctx.get(self._stream)
        if stream is None:
            return self.held.response_body(request, chunk, last)
        if last:
            del request.ctx[self._stream]
        return stream.feed(chunk, last)

    def _check_answer(self, request: PluginRequest, answer: Any) -> bool:
        for text in completion_texts(answer):
            rule = self.completion_deny.first_match(text.value)
            if rule is not None:
                withhold(answer, withheld_message(rule))
                return True
        return False
