"""What a call costs: USD per million input and output tokens, by model.

Quiver ships a table of the providers' list prices (``prices.json`` beside this
module); ``ai.models[].price`` overrides it for a client-facing model name.  A
provider's model name finds its entry exactly or, failing that, through the
longest entry it extends with a version suffix (``gpt-4o-2024-08-06`` is priced
as ``gpt-4o``, ``claude-3-5-sonnet-20241022`` as ``claude-3-5-sonnet``), after
dropping what providers put in front of a name: ``models/`` (Gemini), a Bedrock
region (``us.``, ``eu.``, ``apac.``, ``global.``) and vendor (``anthropic.``...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

MILLION = 1_000_000
_SUFFIX_STARTS = "-@:"
_REGIONS = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
_VENDORS = ("anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "google.")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The USD of a call with that usage."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / MILLION


def shipped() -> dict[str, Price]:
    """The table that ships with Quiver."""
    document = json.loads(files(__package__).joinpath("prices.json").read_text())
    return {name: Price(*pair) for name, pair in document["prices"].items()}


def canonical(model: str) -> str:
    """``model`` without what providers put in front of a name, in lower case."""
    name = model.strip().lower().removeprefix("models/")
    for prefix in _REGIONS:
        if name.startswith(prefix) and "." in name[len(prefix) :]:
            name = name[len(prefix) :]
            break
    for prefix in _VENDORS:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def lookup(table: Mapping[str, Price], model: str) -> Price | None:
    """The price of ``model`` in ``table``: its own entry, or the longest entry it
    extends with a suffix starting with ``-``, ``@`` or ``:``."""
    name = canonical(model)
    found = table.get(name)
    if found is not None:
        return found
    best = ""
    for entry in table:
        if len(entry) > len(best) and name.startswith(entry) and name[len(entry)] in _SUFFIX_STARTS:
            best = entry
    return table[best] if best else None


def tokens_of(usage: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens of a usage object in OpenAI's names or Anthropic's."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return (
        prompt if type(prompt) is int and prompt > 0 else 0,
        completion if type(completion) is int and completion > 0 else 0,
    )


class Prices:
    """Prices for one config: ``overrides`` by client-facing model name (from
    ``ai.models[].price``) before the shipped table (``table``; read when None)."""

    def __init__(
        self, overrides: Mapping[str, Price] | None = None, table: Mapping[str, Price] | None = None
    ) -> None:
        self.overrides = dict(overrides or {})
        self.table = dict(table) if table is not None else shipped()
        self._found: dict[tuple[str, str | None], Price | None] = {}

    def price(self, model: str, provider_model: str | None = None) -> Price | None:
        """The price of a call to client-facing ``model`` served by the provider's
        ``provider_model``: the override of ``model``, else the shipped price of
        ``provider_model``, else that of ``model``; None when none is known."""
        key = (model, provider_model)
        if key in self._found:
            return self._found[key]
        found = self.overrides.get(model)
        if found is None and provider_model:
            found = lookup(self.table, provider_model)
        if found is None:
            found = lookup(self.table, model)
        if len(self._found) < 4096:
            self._found[key] = found
        return found

    def cost(
        self, model: str, usage: Mapping[str, Any], provider_model: str | None = None
    ) -> float | None:
        """The USD of a call with ``usage``; None when the model has no known price."""
        price = self.price(model, provider_model)
        if price is None:
            return None
        return price.cost(*tokens_of(usage))
