"""The rules of budgets and limits as counted: one counter key and window each, and
the refusal a rule answers when a call does not fit."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from quiver.ai.accounting.prices import Price
from quiver.config.ai_accounting import Budget, Limit
from quiver.errors import TooManyRequests
from quiver.plugins.counters import Window
from quiver.plugins.quota.periods import NOMINAL, calendar

Unit = Literal["tokens", "cost", "requests"]

#: the end of the one window of a `total` budget (Unix seconds, about 36,800 AD):
#: finite so that Redis can set an expiry
_FOREVER = float(2**40)
#: a Retry-After beyond this is no advice (a spent `total` budget): none is sent
_MOST_RETRY_AFTER = 366 * 86400.0
MICRO = 1_000_000


class BudgetExceeded(TooManyRequests):
    """A token or cost budget has too little left for the call."""

    slug = "budget-exceeded"
    code = "budget_exceeded"


class RateLimited(TooManyRequests):
    """A tokens-per-minute or requests-per-minute limit has too little left now."""

    code = "rate_limit_exceeded"


@dataclass(frozen=True, slots=True)
class Rule:
    """One budget or limit as it applies to one consumer or team."""

    unit: Unit
    window: Window
    label: bytes  # the counter key without the name it applies to
    who: Literal["consumer", "team"]
    name: str  # a consumer or team name, or "*"
    text: str  # for messages: "token budget of 1000 per day"
    budget: bool
    period: str = ""  # a budget's: "day@UTC" (a calendar period in a time zone) or "total"

    def key(self, consumer: str | None, team: str | None) -> bytes:
        named = consumer if self.who == "consumer" else team
        return self.label + (named or "").encode()

    def amount(self, tokens: int, price: Price | None, prompt: int, output: int) -> int:
        """Units a call of ``tokens`` (prompt + output) takes under this rule."""
        if self.unit == "tokens":
            return tokens
        if self.unit == "requests":
            return 1
        if price is None:
            return 0
        return micro(price.cost(prompt, output))


def micro(dollars: float) -> int:
    return max(math.ceil(dollars * MICRO - 1e-6), 0)


@dataclass(slots=True)
class Held:
    rule: Rule
    key: bytes
    amount: int


def budget_rule(index: int, budget: Budget) -> Rule:
    unit: Unit = "tokens" if budget.tokens is not None else "cost"
    limit = budget.tokens if budget.tokens is not None else micro(budget.cost or 0.0)
    if budget.period == "total":
        window = Window(limit, _FOREVER, "fixed_window", period=_forever)
        period = "total"
    else:
        window = Window(
            limit,
            NOMINAL[budget.period],
            "fixed_window",
            period=calendar(budget.period, ZoneInfo(budget.time_zone)),
        )
        period = f"{budget.period}@{budget.time_zone}"
    who, name = ("team", budget.team) if budget.team is not None else ("consumer", budget.consumer)
    # (a change of unit, period or time zone starts a fresh count; a change of amount not)
    label = f"ai|b{index}|{unit}|{period}|{who}|".encode()
    text = f"token budget of {budget.tokens}" if unit == "tokens" else f"budget of ${budget.cost:g}"
    text += " in total" if budget.period == "total" else f" per {budget.period}"
    return Rule(unit, window, label, who, name or "*", text, True, period)  # type: ignore[arg-type]


def limit_rules(index: int, limit: Limit) -> list[Rule]:
    who, name = limit.scope
    rules = []
    for unit, amount, short in (("requests", limit.rpm, "rpm"), ("tokens", limit.tpm, "tpm")):
        if amount:
            window = Window(amount, 60.0, "token_bucket")
            label = f"ai|l{index}|{short}|{who}|".encode()
            text = f"limit of {amount} {'requests' if short == 'rpm' else 'tokens'} per minute"
            rules.append(Rule(unit, window, label, who, name, text, False))  # type: ignore[arg-type]
    return rules


def _forever(now: float) -> tuple[float, float]:
    return 0.0, _FOREVER


def refusal(rule: Rule, retry_after: float, tokens: int) -> TooManyRequests:
    whose = f"{rule.who} {rule.name}" if rule.name != "*" else f"each {rule.who}"
    if math.isinf(retry_after):
        detail = (
            f"this call may use up to {tokens} tokens, more than the {rule.text} of {whose} "
            "allows at all: lower max_tokens or shorten the prompt"
        )
    elif rule.budget:
        detail = f"the {rule.text} of {whose} has too little left for this call"
    else:
        detail = f"the {rule.text} of {whose} is spent for now"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    if 0.0 < retry_after <= _MOST_RETRY_AFTER:
        headers = ((b"Retry-After", b"%d" % max(1, math.ceil(retry_after))),)
    kind = BudgetExceeded if rule.budget else RateLimited
    return kind(detail, headers=headers)
