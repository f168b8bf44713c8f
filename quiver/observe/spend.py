"""What a call to a model used, as the record carries it: the AI target puts it in
``request.ctx["ai"]`` and the proxy hands it to the exchange's record
(``ExchangeRecord.ai``); the call spool writes it as the line's ``"ai"`` member,
and the metrics count it.

Keys (any may be missing; unknown ones are dropped):

- ``model``: the model name the client asked for (``ai.models[].name``);
- ``provider``: the provider that answered (``ai.providers[].name``);
- ``deployment``: the provider's model name that answered;
- ``team``: the consumer's team (added by the proxy from the consumer);
- ``operation``: ``chat`` (the default), ``embeddings``, ``responses``, ...;
- ``prompt_tokens``, ``completion_tokens``: the usage (the provider's, or counted);
- ``cost``: US dollars, at the model's price;
- ``ttft_ms``: milliseconds to the first token of a streamed answer.
"""

from __future__ import annotations

from typing import Any

_TEXTS = ("model", "provider", "deployment", "team", "operation")
_NUMBERS = ("prompt_tokens", "completion_tokens", "cost", "ttft_ms")


def spend_document(ai: dict[str, Any]) -> dict[str, Any]:
    """The known members of ``ai``, with values of the right types only."""
    document: dict[str, Any] = {}
    for key in _TEXTS:
        value = ai.get(key)
        if isinstance(value, str) and value:
            document[key] = value
    for key in _NUMBERS:
        value = ai.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            document[key] = value
    return document
