"""The refusals of the guardrails: typed HTTP errors of Quiver's one hierarchy,
answered as problem documents whose extension members say why (never with the
text that was refused)."""

from __future__ import annotations

from collections.abc import Sequence

from quiver.errors import BadRequest, ServerError


class GuardRefusal(BadRequest):
    """400: a guardrail refused the prompt; the request was well formed, so the
    connection carries the next one."""

    close_connection = False


class UnreadablePrompt(GuardRefusal):
    """400: the body cannot be read as a prompt, so it cannot be checked."""

    slug = "unreadable-prompt"


class PromptRefused(GuardRefusal):
    """400: the prompt matches a deny rule of ``ai-prompt-guard`` (or no allow rule);
    ``rule`` names the rule."""

    slug = "prompt-refused"

    def __init__(self, detail: str, rule: str | None) -> None:
        super().__init__(detail, extensions={"rule": rule})
        self.rule = rule


class PiiRefused(GuardRefusal):
    """400: the prompt holds personal data ``ai-pii`` refuses; ``entities`` names
    their kinds."""

    slug = "pii-refused"

    def __init__(self, entities: Sequence[str]) -> None:
        kinds = ", ".join(entities)
        super().__init__(
            f"the prompt holds personal data ({kinds})", extensions={"entities": list(entities)}
        )


class PromptFlagged(GuardRefusal):
    """400: the moderation endpoint flagged the prompt; ``categories`` names why."""

    slug = "prompt-flagged"

    def __init__(self, categories: Sequence[str]) -> None:
        named = ", ".join(categories) or "unnamed categories"
        super().__init__(
            f"the prompt was flagged by moderation ({named})",
            extensions={"categories": list(categories)},
        )


class ModerationUnavailable(ServerError):
    """503: the moderation endpoint failed and ``on_error`` is ``deny``."""

    status_code = 503
    title = "Service Unavailable"
    slug = "moderation-unavailable"
