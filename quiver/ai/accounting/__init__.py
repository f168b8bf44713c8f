"""Accounting of AI calls: tokens, prices, budgets and limits.

- :mod:`.tokens`: counting without a tokenizer (a prompt's upper bound before a
  call, an estimate of an answer when the provider reported no usage);
- :mod:`.prices`: USD per million tokens (``prices.json`` ships with Quiver;
  ``ai.models[].price`` overrides it) and the cost of a call;
- :mod:`.budgets`: budgets per consumer and team, TPM/RPM limits per consumer, team
  and deployment, reserved before a call and settled after on the counter stores;
- :mod:`.rules`: each budget or limit as a counter key and window, and its refusal.

What a call spent reaches the call log and the metrics through the exchange's
record (``request.ctx["ai"]``, see quiver.observe.spend).
"""

from quiver.ai.accounting.budgets import (
    Accounting,
    BudgetExceeded,
    RateLimited,
    Reservation,
    settled,
)
from quiver.ai.accounting.prices import Price, Prices
from quiver.ai.accounting.tokens import prompt_estimate as prompt_tokens_estimate

__all__ = [
    "Accounting",
    "BudgetExceeded",
    "Price",
    "Prices",
    "RateLimited",
    "Reservation",
    "prompt_tokens_estimate",
    "settled",
]
