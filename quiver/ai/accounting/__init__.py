"""Accounting of AI calls: tokens, prices, budgets and limits.

- :mod:`.tokens`: counting without a tokenizer (a prompt's upper bound before a
  call, an estimate of an answer when the provider reported no usage);
- :mod:`.prices`: USD per million tokens (``prices.json`` ships with Quiver;
  ``ai.models[].price`` overrides it) and the cost of a call;
- :mod:`.budgets`: budgets per consumer and team, TPM/RPM limits per consumer, team
  and deployment, reserved before a call and settled after on the counter stores;
- :mod:`.usage`: what a call's record carries to the call log and the metrics.
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
