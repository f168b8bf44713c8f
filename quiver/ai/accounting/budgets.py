"""Budgets and TPM/RPM limits: reserve before the call, settle after.

A call is admitted only once what it **may** use is taken from every budget and
limit that applies to it, on the traffic-control counter stores (``local``:
exact across the node's workers; ``redis``: across every node).  What it may use
is an upper bound: the prompt's bound (:func:`.tokens.prompt_upper_bound`) plus
the most output tokens the provider may return, which is the client's
``max_tokens`` or, when it gave none, a cap Quiver sets on the request itself so
the provider cannot return more.  Once the call is over,
:meth:`Reservation.settle` gives back what the call did not use.  Since every
unit a call can use is held before it starts, concurrent calls never spend more
than a budget, however many race for it and whichever worker or node they reach.

Each budget or limit is its own counter key, so a call takes them one after
another; when one refuses, those already taken are given back before the 429.
When the client set no ``max_tokens`` and a token or cost budget has less left
than the default cap, the call is admitted with a smaller cap that fits (at
least :data:`MIN_OUTPUT` tokens), so the end of a budget can still be used.

Units: tokens; micro-dollars for cost budgets (counters keep integers); requests
for RPM.  Budgets use fixed windows (a calendar day, week or month in a time zone,
as the ``quota`` plugin's; or one window that never ends for ``total``); TPM and
RPM use token buckets of ``tpm``/``rpm`` units refilled over a minute.

The local store answers at once and the Redis store asynchronously: ``admit``
and ``settle`` return plain values with the first and awaitables with the second
(the logic is written once, as coroutines, and run to completion at once for the
local store).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from quiver.ai.accounting.prices import Price, Prices, tokens_of
from quiver.ai.accounting.rules import (
    MICRO,
    BudgetExceeded,
    Held,
    RateLimited,
    Rule,
    budget_rule,
    limit_rules,
    refusal,
)
from quiver.ai.accounting.tokens import output_cap, prompt_estimate, prompt_upper_bound
from quiver.config.ai_accounting import AccountingSettings
from quiver.errors import LimitUnavailable
from quiver.observe.limits_reached import BUDGET_REACHED, timestamp
from quiver.plugins.counters import Counters, StoreUnavailable, Window, resolved
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.stores import Stores
from quiver.plugins.traffic.reached import reached_notes

log = logging.getLogger("quiver.ai.accounting")

T = TypeVar("T")

#: the output reserved when the client set no max_tokens and no deployment of the
#: model states a `max_output`
DEFAULT_OUTPUT = 4096
#: the smallest output cap a call is admitted with when a budget is nearly spent
MIN_OUTPUT = 16
AI_COUNTERS_FILE = "ai-counters.table"  # beside the quotas' table, kept across restarts


class Reservation:
    """What one call holds under budgets and limits until :meth:`settle`.

    ``tokens`` is the prompt bound plus output cap reserved (0 when no token or
    cost rule applies), ``max_tokens`` the output cap Quiver set on the request
    (None: the client's own, or none was needed).
    """

    __slots__ = ("_accounting", "_held", "max_tokens", "model", "prompt_bound", "tokens")

    def __init__(
        self,
        accounting: Accounting | None,
        held: list[Held],
        model: str,
        tokens: int = 0,
        prompt_bound: int = 0,
        max_tokens: int | None = None,
    ) -> None:
        self._accounting = accounting
        self._held = held
        self.model = model
        self.tokens = tokens
        self.prompt_bound = prompt_bound
        self.max_tokens = max_tokens

    @property
    def empty(self) -> bool:
        """Nothing is held (no rule applied): settling is free."""
        return not self._held

    def settle(
        self, usage: dict[str, Any] | None, provider_model: str | None = None
    ) -> Awaitable[None] | None:
        """Correct every count to the call's real ``usage`` ({prompt_tokens,
        completion_tokens}); None: the call failed before the provider counted, so
        everything is given back.  ``provider_model`` prices a cost budget's share
        (the deployment that answered).  Only the first call counts."""
        held, self._held = self._held, []
        if not held or self._accounting is None:
            return None
        return self._accounting._settle(held, usage, self.model, provider_model)


class Accounting:
    """The budgets and limits of one AI config, on one counter store.

    ``ai_config`` is the ``ai`` section (its ``budgets``, ``limits``, ``counters``,
    and ``models`` for prices and output caps); ``counters`` the worker's
    :class:`~quiver.plugins.stores.Stores` (the store is chosen from
    ``ai.counters``) or a counter store itself (tests)::

        accounting = Accounting(ai_config, context.stores)
        reservation = await resolved(accounting.admit("alice", "data", "gpt-4o", chat))
        ...  # call the provider with `chat` (max_tokens may have been set)
        await maybe(reservation.settle(completion["usage"], provider_model="gpt-4o"))
    """

    def __init__(
        self, ai_config: AccountingSettings, counters: Stores | Counters, clock: Any = None
    ) -> None:
        self.config = ai_config
        self.clock = clock or (counters.clock if isinstance(counters, Stores) else time.time)
        #: where budgets reached are noted for their webhook event (None: nowhere)
        self.notes = reached_notes(counters) if isinstance(counters, Stores) else None
        self.deny = ai_config.counters.on_store_error == "deny"
        self.store, self.sync = _store_of(ai_config, counters)
        models = {model.name: model for model in getattr(ai_config, "models", ()) or ()}
        self.models = models
        overrides = {
            name: Price(float(_field(model.price, "input")), float(_field(model.price, "output")))
            for name, model in models.items()
            if getattr(model, "price", None) is not None
        }
        self.prices = Prices(overrides)
        self._budgets = [
            budget_rule(index, budget) for index, budget in enumerate(ai_config.budgets)
        ]
        self._limits = [
            rule
            for index, limit in enumerate(ai_config.limits)
            for rule in limit_rules(index, limit)
        ]
        self._rules: dict[tuple[str | None, str | None], tuple[Rule, ...]] = {}
        self._deployments: dict[
            tuple[str, int], tuple[bytes, tuple[Window, ...], int, int] | None
        ] = {}
        self._unpriced: set[str] = set()

    # -- what applies -------------------------------------------------------------

    def rules(self, consumer: str | None, team: str | None) -> tuple[Rule, ...]:
        """The rules that apply to a call of ``consumer`` in ``team``: per kind
        (budgets or limits) and per whom (consumer or team), those naming it, else
        those for "*"; requests first, then tokens, then cost."""
        key = (consumer, team)
        found = self._rules.get(key)
        if found is None:
            chosen: list[Rule] = []
            for rules in (self._limits, self._budgets):
                for who, name in (("consumer", consumer), ("team", team)):
                    if who == "team" and name is None:
                        continue
                    mine = [rule for rule in rules if rule.who == who]
                    named = [rule for rule in mine if rule.name == (name or "")]
                    chosen += named or [rule for rule in mine if rule.name == "*"]
            order = {"requests": 0, "tokens": 1, "cost": 2}
            found = tuple(sorted(chosen, key=lambda rule: order[rule.unit]))
            if len(self._rules) > 10000:
                self._rules.clear()
            self._rules[key] = found
        return found

    def output_default(self, model: str) -> int:
        """The output reserved for ``model`` when the client sets no cap: the least
        `max_output` of its deployments, else :data:`DEFAULT_OUTPUT`."""
        entry = self.models.get(model)
        caps = [
            cap
            for deployment in (getattr(entry, "deployments", ()) or ())
            if isinstance(cap := getattr(deployment, "max_output", None), int) and cap > 0
        ]
        return min(caps) if caps else DEFAULT_OUTPUT

    def price_bound(self, model: str) -> Price | None:
        """The highest price a call to ``model`` may be charged at: over its
        deployments and the models it falls back to."""
        prices: list[Price] = []
        seen: set[str] = set()
        pending = [model]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            entry = self.models.get(name)
            deployments = getattr(entry, "deployments", ()) or ()
            found = [self.prices.price(name, getattr(d, "model", None)) for d in deployments]
            if not deployments:
                found = [self.prices.price(name)]
            prices += [price for price in found if price is not None]
            pending += list(getattr(entry, "fallbacks", ()) or ())
        if not prices:
            return None
        return Price(max(p.input for p in prices), max(p.output for p in prices))

    def cost(
        self, model: str, usage: dict[str, Any], provider_model: str | None = None
    ) -> float | None:
        """The USD of a call to ``model`` (answered by ``provider_model``)."""
        return self.prices.cost(model, usage, provider_model)

    prompt_tokens_estimate = staticmethod(prompt_estimate)

    # -- admission ----------------------------------------------------------------

    def admit(
        self, consumer: str | None, team: str | None, model: str, chat: dict[str, Any]
    ) -> Reservation | Awaitable[Reservation]:
        """Reserve what the call may use under every rule that applies, or raise
        :class:`BudgetExceeded` / :class:`RateLimited` (429 with Retry-After), or
        :class:`~quiver.errors.LimitUnavailable` (503) when the store is down and
        ``on_store_error`` is deny.  Sets ``chat["max_tokens"]`` (or
        ``max_completion_tokens``) to the reserved output when the client set none."""
        rules = self.rules(consumer, team)
        if not rules:
            return Reservation(None, [], model)
        work = self._admit(rules, consumer, team, model, chat)
        return _drive(work) if self.sync else work

    async def _admit(
        self,
        rules: tuple[Rule, ...],
        consumer: str | None,
        team: str | None,
        model: str,
        chat: dict[str, Any],
    ) -> Reservation:
        metered = any(rule.unit != "requests" for rule in rules)
        prompt = prompt_upper_bound(chat) if metered else 0
        given = output_cap(chat)
        output = given if given is not None else self.output_default(model)
        price = self.price_bound(model) if any(r.unit == "cost" for r in rules) else None
        if price is None and any(r.unit == "cost" for r in rules) and model not in self._unpriced:
            self._unpriced.add(model)
            log.warning("ai model %r has no known price: its cost budgets cannot apply", model)
        while True:
            held: list[Held] = []
            shrink_to: int | None = None
            for rule in rules:
                amount = rule.amount(prompt + output, price, prompt, output)
                if amount <= 0:
                    continue
                key = rule.key(consumer, team)
                try:
                    verdict = await resolved(self.store.take(key, (rule.window,), amount))
                except StoreUnavailable as exc:
                    if self.deny:
                        await self._give_back(held)
                        raise LimitUnavailable(
                            "AI budgets and limits cannot be checked now", internal=str(exc)
                        ) from exc
                    log.warning("ai counters unavailable (%s): call let through uncounted", exc)
                    continue
                if verdict.allowed:
                    held.append(Held(rule, key, amount))
                    continue
                await self._give_back(held)
                if given is None and rule.unit != "requests":
                    shrink_to = self._fitting_output(
                        rule, verdict.usage[0].remaining, prompt, price
                    )
                    if shrink_to is not None and MIN_OUTPUT <= shrink_to < output:
                        break
                if rule.budget and not math.isinf(verdict.retry_after):
                    self._reached(rule, key, consumer, team, verdict.usage[0].remaining)
                raise refusal(rule, verdict.retry_after, prompt + output)
            else:
                reservation = Reservation(
                    self, held, model, prompt + output if metered else 0, prompt
                )
                if metered and given is None:
                    reservation.max_tokens = output
                    _cap(chat, output, self._completion_key(model))
                return reservation
            assert shrink_to is not None
            output = shrink_to

    def _reached(
        self, rule: Rule, key: bytes, consumer: str | None, team: str | None, remaining: int
    ) -> None:
        """Note a budget's refusal for a ``budget.reached`` event: one per budget,
        consumer or team, and period."""
        if self.notes is None or self.notes.quiet(BUDGET_REACHED, key):
            return
        end = rule.window.bounds(self.clock())[1]
        cost = rule.unit == "cost"
        data = {
            "consumer": consumer,
            "team": team,
            "budget": rule.text,
            "who": rule.who,
            "unit": "usd" if cost else rule.unit,
            "limit": rule.window.limit / MICRO if cost else rule.window.limit,
            "remaining": max(remaining, 0) / MICRO if cost else max(remaining, 0),
            "period": rule.period,
            "resets_at": None if rule.period == "total" else timestamp(end),
        }
        self.notes.note(BUDGET_REACHED, key, end, end, data)

    @staticmethod
    def _fitting_output(rule: Rule, remaining: int, prompt: int, price: Price | None) -> int | None:
        """The most output tokens that fit in ``remaining`` units of ``rule``."""
        if rule.unit == "tokens":
            return remaining - prompt
        if price is None or price.output <= 0:
            return None
        left = remaining / MICRO - prompt * price.input / 1_000_000
        return math.floor(left * 1_000_000 / price.output) - 1

    def _completion_key(self, model: str) -> str:
        """``max_completion_tokens`` when every deployment of ``model`` is on an OpenAI
        or Azure OpenAI provider (their reasoning models refuse ``max_tokens``), else
        ``max_tokens`` (what every other provider reads)."""
        entry = self.models.get(model)
        deployments = getattr(entry, "deployments", ()) or ()
        types = {
            getattr(provider, "name", None): getattr(provider, "type", None)
            for provider in getattr(self.config, "providers", ()) or ()
        }
        kinds = {types.get(getattr(d, "provider", None)) for d in deployments}
        if kinds and kinds <= {"openai", "azure-openai"}:
            return "max_completion_tokens"
        return "max_tokens"

    async def _give_back(self, held: list[Held]) -> None:
        for item in held:
            try:
                result = self.store.settle(item.key, (item.rule.window,), -item.amount)
                if result is not None:
                    await result
            except StoreUnavailable as exc:
                log.warning("ai counters: %d units not given back (%s)", item.amount, exc)

    # -- settling -----------------------------------------------------------------

    def _settle(
        self, held: list[Held], usage: dict[str, Any] | None, model: str, provider_model: str | None
    ) -> Awaitable[None] | None:
        work = self._correct(held, usage, model, provider_model)
        if self.sync:
            _drive(work)
            return None
        return work

    async def _correct(
        self, held: list[Held], usage: dict[str, Any] | None, model: str, provider_model: str | None
    ) -> None:
        if usage is None:
            await self._give_back(held)
            return
        prompt, completion = tokens_of(usage)
        price = self.prices.price(model, provider_model)
        for item in held:
            rule = item.rule
            if rule.unit == "requests":
                continue
            used = rule.amount(prompt + completion, price, prompt, completion)
            delta = used - item.amount
            if not delta:
                continue
            try:
                result = self.store.settle(item.key, (rule.window,), delta)
                if result is not None:
                    await result
            except StoreUnavailable as exc:
                log.warning("ai counters: a call's usage not settled (%s)", exc)

    # -- deployments --------------------------------------------------------------

    def deployment_admit(
        self, model: str, index: int, chat: dict[str, Any], tokens: int | None = None
    ) -> Reservation | Awaitable[Reservation | None] | None:
        """Reserve a call on deployment ``index`` of ``model`` under its `rpm` and
        `tpm`: a :class:`Reservation` to settle after the call, or None when the
        deployment is full now (the router tries another).  ``tokens``: what the call
        may use (the model's reservation's ``tokens``); computed from ``chat`` when
        None.  A deployment without rpm or tpm takes nothing."""
        found = self._deployment(model, index)
        if found is None:
            return Reservation(None, [], model)
        work = self._deployment_admit(found, model, chat, tokens)
        return _drive(work) if self.sync else work

    def _deployment(
        self, model: str, index: int
    ) -> tuple[bytes, tuple[Window, ...], int, int] | None:
        key = (model, index)
        if key not in self._deployments:
            entry = self.models.get(model)
            deployments = getattr(entry, "deployments", ()) or ()
            found = None
            if 0 <= index < len(deployments):
                deployment = deployments[index]
                rpm = int(getattr(deployment, "rpm", 0) or 0)
                tpm = int(getattr(deployment, "tpm", 0) or 0)
                if rpm or tpm:
                    provider = getattr(deployment, "provider", "")
                    name = getattr(deployment, "model", "")
                    label = f"ai|d|{provider}|{name}|".encode()
                    windows = tuple(
                        Window(limit, 60.0, "token_bucket") for limit in (rpm, tpm) if limit
                    )
                    found = (label, windows, rpm, tpm)
            self._deployments[key] = found
        return self._deployments[key]

    async def _deployment_admit(
        self,
        found: tuple[bytes, tuple[Window, ...], int, int],
        model: str,
        chat: dict[str, Any],
        tokens: int | None,
    ) -> Reservation | None:
        label, windows, rpm, tpm = found
        if tokens is None and tpm:
            cap = output_cap(chat)
            if cap is None:
                cap = self.output_default(model)
                _cap(chat, cap, self._completion_key(model))
            tokens = prompt_upper_bound(chat) + cap
        held: list[Held] = []
        for unit, window in zip(
            [u for u, limit in (("requests", rpm), ("tokens", tpm)) if limit], windows, strict=True
        ):
            rule = Rule(unit, window, label + unit[0].encode(), "consumer", "", "", False)  # type: ignore[arg-type]
            amount = 1 if unit == "requests" else (tokens or 0)
            try:
                verdict = await resolved(self.store.take(rule.label, (window,), amount))
            except StoreUnavailable:
                continue  # (the provider's own limit is the backstop)
            if not verdict.allowed:
                await self._give_back(held)
                return None
            held.append(Held(rule, rule.label, amount))
        return Reservation(self, held, model, tokens or 0)


def _field(value: Any, name: str) -> Any:
    return value[name] if isinstance(value, dict) else getattr(value, name)


def _cap(chat: dict[str, Any], output: int, key: str) -> None:
    """Set the output cap on the request: per choice when ``n`` asks for several."""
    choices = chat.get("n")
    per_choice = output // choices if type(choices) is int and choices > 1 else output
    chat[key] = per_choice


def _store_of(ai_config: AccountingSettings, counters: Stores | Counters) -> tuple[Counters, bool]:
    """The counter store ``ai.counters`` names, and whether it answers at once."""
    if not isinstance(counters, Stores):
        return counters, isinstance(counters, LocalCounters)
    settings = ai_config.counters
    if settings.backend == "redis" and settings.url is not None:
        store = counters.redis_counters(
            settings.url, timeout=settings.timeout, prefix=settings.prefix
        )
        return store, False
    path = counters.run_dir / AI_COUNTERS_FILE if counters.run_dir is not None else None
    local = counters.keep(("ai-counters", path), lambda: LocalCounters(path, clock=counters.clock))
    return local, True


def _drive(work: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never suspends (the local store's answers)."""
    try:
        work.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    work.close()
    raise RuntimeError("a counter store that answers at once was awaited")


async def settled(value: Awaitable[None] | None) -> None:
    """Await a ``settle`` result when there is one to await."""
    if value is not None:
        await value


__all__ = [
    "AI_COUNTERS_FILE",
    "Accounting",
    "BudgetExceeded",
    "RateLimited",
    "Reservation",
    "settled",
]
