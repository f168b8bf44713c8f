"""Guardrails for AI routes, as plugins: ``ai-prompt-guard`` (deny and allow lists),
``ai-pii`` (personal data masked or refused) and ``ai-moderation`` (a moderation
endpoint asked about each prompt).

They read the JSON bodies of the OpenAI Chat Completions, OpenAI Responses and
Anthropic Messages formats themselves (``texts``), so they work on any route: one
served by the ``ai`` target or one proxied to a provider directly.  ``bodies``
reads prompts and holds answers; ``streams`` checks streamed answers as they go
(``stream_texts`` reads their events); ``rules`` compiles the prompt guard's rules;
``pii`` finds personal data; ``problems`` holds the refusals.
"""

from quiver.plugins.ai_guard.moderation import Moderation
from quiver.plugins.ai_guard.pii_guard import Pii
from quiver.plugins.ai_guard.prompt_guard import PromptGuard

__all__ = ["Moderation", "Pii", "PromptGuard"]
