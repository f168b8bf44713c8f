"""Budgets and limits, call by call: what is reserved, refused, capped and settled."""

from __future__ import annotations

import inspect
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from quiver.ai.accounting import Accounting, BudgetExceeded, RateLimited
from quiver.ai.accounting.budgets import DEFAULT_OUTPUT, MIN_OUTPUT
from quiver.ai.accounting.tokens import prompt_upper_bound
from quiver.config.ai_accounting import AccountingSettings, Budget, Limit
from quiver.config.consumers import Consumer
from quiver.errors import LimitUnavailable
from quiver.observe.limits_reached import BUDGET_REACHED, read_notes
from quiver.plugins.counters import StoreUnavailable, Verdict
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.stores import Stores
from tests.ai.accounting.race import AISettings, settings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


PARIS = ZoneInfo("Europe/Paris")
NOON = datetime(2026, 3, 28, 12, 0, tzinfo=PARIS).timestamp()  # the eve of a DST change


def accounting(document: dict[str, Any], clock: Clock | None = None) -> Accounting:
    return Accounting(settings(document), LocalCounters(clock=clock or Clock(NOON)))


def now(value: object) -> Any:
    """What the local store answered at once."""
    assert not inspect.isawaitable(value)
    return value


def chat(words: int = 10, **more: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": " ".join(["w"] * words)}], **more}


def admit(
    account: Accounting, request: dict[str, Any], consumer: str = "alice", team: str | None = "data"
) -> Any:
    return account.admit(consumer, team, "m", request)


@pytest.mark.parametrize(
    "document",
    [
        {"consumer": "alice"},  # neither tokens nor cost
        {"consumer": "alice", "tokens": 5, "cost": 1.0},
        {"tokens": 5},  # nobody
        {"consumer": "alice", "team": "data", "tokens": 5},
        {"consumer": "alice", "tokens": 0},
        {"consumer": "alice", "tokens": 5, "period": "year"},
        {"consumer": "alice", "tokens": 5, "time_zone": "Mars/Olympus"},
        {"consumer": "alice", "tokens": 5, "period": "total", "time_zone": "UTC"},
        {"consumer": "al ice", "tokens": 5},
        {"consumer": "alice", "tokens": 5, "extra": 1},
    ],
)
def test_invalid_budgets_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Budget.model_validate(document)


@pytest.mark.parametrize(
    "document",
    [{}, {"tpm": 0, "rpm": 0}, {"consumer": "a", "team": "b", "tpm": 1}, {"tpm": -1}],
)
def test_invalid_limits_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Limit.model_validate(document)


def test_counters_settings_and_the_consumers_team() -> None:
    assert AccountingSettings.model_validate({}).counters.on_store_error == "deny"
    with pytest.raises(ValidationError, match="needs a `url`"):
        AccountingSettings.model_validate({"counters": {"backend": "redis"}})
    with pytest.raises(ValidationError, match="must start with"):
        AccountingSettings.model_validate({"counters": {"backend": "redis", "url": "http://x"}})
    with pytest.raises(ValidationError, match="backend is 'local'"):
        AccountingSettings.model_validate({"counters": {"url": "redis://x"}})
    assert Consumer.model_validate({"name": "alice", "team": "data"}).team == "data"


def test_the_reservation_is_the_prompt_bound_plus_the_output_cap() -> None:
    account = accounting({"budgets": [{"consumer": "alice", "tokens": 10_000}]})
    request = chat(max_tokens=100)
    reservation = admit(account, request)
    assert reservation.tokens == prompt_upper_bound(request) + 100
    assert reservation.max_tokens is None and request["max_tokens"] == 100


def test_without_max_tokens_the_cap_is_set_on_the_request() -> None:
    account = accounting({"budgets": [{"consumer": "alice", "tokens": 10_000}]})
    request = chat()
    reservation = admit(account, request)
    assert reservation.max_tokens == request["max_tokens"] == 256  # the deployment's max_output
    plain = Accounting(
        AISettings.model_validate({"budgets": [{"consumer": "*", "tokens": 99_999}]}),
        LocalCounters(),
    )
    other = chat(n=2)
    assert now(plain.admit("bob", None, "unknown", other)).max_tokens == DEFAULT_OUTPUT
    assert other["max_tokens"] == DEFAULT_OUTPUT // 2  # per choice


def test_openai_deployments_get_max_completion_tokens() -> None:
    document = {
        "providers": [{"name": "oa", "type": "openai"}],
        "models": [{"name": "m", "deployments": [{"provider": "oa"}]}],
        "limits": [{"tpm": 100_000}],
    }

    class Provider(BaseModel):
        name: str
        type: str

    class WithProviders(AISettings):
        providers: list[Provider] = []

    account = Accounting(WithProviders.model_validate(document), LocalCounters())
    request = chat()
    account.admit("alice", None, "m", request)
    assert request == {**chat(), "max_completion_tokens": DEFAULT_OUTPUT}


def test_a_spent_budget_refuses_with_429_and_settling_gives_back_the_rest() -> None:
    account = accounting(
        {
            "budgets": [
                {"consumer": "alice", "tokens": 1000, "period": "day", "time_zone": "Europe/Paris"}
            ]
        }
    )
    first = admit(account, chat(max_tokens=400))
    with pytest.raises(BudgetExceeded) as refused:
        admit(account, chat(max_tokens=900))
    assert refused.value.status_code == 429
    assert "token budget of 1000 per day of consumer alice" in refused.value.detail
    # the day ends at midnight in Paris: 12 hours from noon
    assert dict(refused.value.headers)[b"Retry-After"] == b"43200"
    first.settle({"prompt_tokens": 10, "completion_tokens": 20})
    first.settle({"prompt_tokens": 999, "completion_tokens": 999})  # only the first counts
    admit(account, chat(max_tokens=900))  # fits now that the first gave back the rest


def test_a_failed_call_gives_everything_back() -> None:
    account = accounting({"limits": [{"consumer": "alice", "rpm": 1, "tpm": 1000}]})
    reservation = admit(account, chat(max_tokens=100))
    with pytest.raises(RateLimited) as refused:
        admit(account, chat(max_tokens=100))
    assert "limit of 1 requests per minute of consumer alice" in refused.value.detail
    assert dict(refused.value.headers)[b"Retry-After"] == b"60"
    reservation.settle(None)
    admit(account, chat(max_tokens=100))


def test_the_end_of_a_budget_is_used_with_a_smaller_cap() -> None:
    account = accounting({"budgets": [{"consumer": "alice", "tokens": 300, "period": "total"}]})
    request = chat()
    reservation = admit(account, request)
    assert MIN_OUTPUT <= request["max_tokens"] < 256
    assert reservation.tokens == 300
    with pytest.raises(BudgetExceeded) as refused:
        admit(account, chat())
    assert b"Retry-After" not in dict(refused.value.headers)  # a total budget never renews
    with pytest.raises(BudgetExceeded, match="lower max_tokens"):
        admit(accounting({"budgets": [{"consumer": "alice", "tokens": 100}]}), chat(max_tokens=500))


def test_a_calendar_day_renews_at_local_midnight() -> None:
    clock = Clock(NOON)
    account = accounting(
        {
            "budgets": [
                {"consumer": "*", "tokens": 500, "period": "day", "time_zone": "Europe/Paris"}
            ]
        },
        clock,
    )
    admit(account, chat(max_tokens=400))
    with pytest.raises(BudgetExceeded):
        admit(account, chat(max_tokens=400))
    admit(account, chat(max_tokens=400), consumer="bob")  # "*": each consumer its own budget
    clock.now = datetime(2026, 3, 29, 0, 0, 1, tzinfo=PARIS).timestamp()
    admit(account, chat(max_tokens=400))


def test_named_rules_replace_the_star_and_teams_share_theirs() -> None:
    account = accounting(
        {
            "budgets": [
                {"consumer": "*", "tokens": 100},
                {"consumer": "alice", "tokens": 5000},
                {"team": "data", "tokens": 1000},
            ]
        }
    )
    assert {rule.text for rule in account.rules("alice", "data")} == {
        "token budget of 5000 per month",
        "token budget of 1000 per month",
    }
    admit(account, chat(max_tokens=900), consumer="alice")
    with pytest.raises(BudgetExceeded, match="team data"):
        admit(account, chat(max_tokens=30), consumer="bob")
    assert [rule.text for rule in account.rules("dave", None)] == ["token budget of 100 per month"]


def test_cost_budgets_reserve_at_the_highest_price_and_settle_at_the_real_one() -> None:
    document = {
        "models": [
            {"name": "m", "deployments": [{"model": "gpt-4o-mini"}], "fallbacks": ["big"]},
            {"name": "big", "deployments": [{"model": "gpt-4o"}]},
        ],
        "budgets": [{"consumer": "alice", "cost": 0.01, "period": "total"}],
    }
    account = Accounting(AISettings.model_validate(document), LocalCounters())
    request = chat(max_tokens=100)
    price = account.price_bound("m")
    assert price is not None and (price.input, price.output) == (2.5, 10.0)
    reservation = now(account.admit("alice", None, "m", request))
    held = reservation._held[0].amount
    assert held == -(-(prompt_upper_bound(request) * 2.5 + 100 * 10.0) // 1)  # micro-dollars
    reservation.settle({"prompt_tokens": 10, "completion_tokens": 10}, provider_model="gpt-4o-mini")
    key = b"ai|b0|cost|total|consumer|alice"
    window = account.rules("alice", None)[0].window
    left = account.store.take(key, (window,), 0)
    assert isinstance(left, Verdict) and left.usage[0].remaining == 10_000 - 8  # 7.5 rounded up


def test_deployment_limits_skip_a_full_deployment() -> None:
    document = {"models": [{"name": "m", "deployments": [{"rpm": 1}, {"tpm": 10_000}, {}]}]}
    account = Accounting(AISettings.model_validate(document), LocalCounters())
    first = now(account.deployment_admit("m", 0, chat(max_tokens=10)))
    assert first is not None and not first.empty
    assert account.deployment_admit("m", 0, chat(max_tokens=10)) is None
    assert now(account.deployment_admit("m", 2, chat())).empty  # no limits: nothing held
    request = chat()
    second = now(account.deployment_admit("m", 1, request))
    assert second is not None and request["max_tokens"] == DEFAULT_OUTPUT
    first.settle(None)
    assert account.deployment_admit("m", 0, chat(max_tokens=10)) is not None


class Down:
    """A counter store that cannot answer."""

    def take(self, key: bytes, windows: Any, cost: int = 1) -> Verdict:
        raise StoreUnavailable("redis at redis://x: down")

    def settle(self, key: bytes, windows: Any, delta: int) -> None:
        raise StoreUnavailable("redis at redis://x: down")


def test_a_store_that_is_down_refuses_or_lets_through_as_configured() -> None:
    deny = Accounting(settings({"limits": [{"tpm": 10}]}), Down())
    deny.sync = True
    with pytest.raises(LimitUnavailable):
        deny.admit("alice", None, "m", chat())
    allow = Accounting(
        settings({"limits": [{"tpm": 10}], "counters": {"on_store_error": "allow"}}), Down()
    )
    allow.sync = True
    assert now(allow.admit("alice", None, "m", chat())).empty


def test_the_stores_table_is_kept_in_the_run_directory(tmp_path: Any) -> None:
    stores = Stores(tmp_path)
    account = Accounting(settings({"limits": [{"rpm": 1}]}), stores)
    account.admit("alice", None, "m", chat())
    again = Accounting(settings({"limits": [{"rpm": 1}]}), Stores(tmp_path))
    with pytest.raises(RateLimited):
        again.admit("alice", None, "m", chat())
    assert (tmp_path / "ai-counters.table").exists()
    stores.close()


def test_the_ai_sections_models_give_prices_caps_and_deployment_limits() -> None:
    from quiver.config.ai import AIConfig

    config = AIConfig.model_validate(
        {
            "providers": [{"name": "oa", "type": "openai", "api_key": "sk-test"}],
            "models": [
                {
                    "name": "mini",
                    "deployments": [
                        {"provider": "oa", "model": "gpt-4o-mini", "rpm": 1, "max_output": 500}
                    ],
                    "price": {"input": 1.0, "output": 2.0},
                }
            ],
            "budgets": [{"consumer": "alice", "cost": 1.0}],
        }
    )
    account = Accounting(config, LocalCounters())
    request = chat()
    reservation = now(account.admit("alice", None, "mini", request))
    assert request["max_completion_tokens"] == 500 == reservation.max_tokens
    assert account.cost("mini", {"prompt_tokens": 1_000_000, "completion_tokens": 0}) == 1.0
    assert now(account.deployment_admit("mini", 0, request)) is not None
    assert now(account.deployment_admit("mini", 0, request)) is None


def test_a_spent_budget_leaves_one_note_for_its_webhook_event(tmp_path: Path) -> None:
    clock = Clock(NOON)
    stores = Stores(tmp_path, clock=clock)
    document = {
        "budgets": [
            {"consumer": "alice", "tokens": 400, "period": "day", "time_zone": "Europe/Paris"}
        ]
    }
    account = Accounting(settings(document), stores)
    now(admit(account, chat(max_tokens=200)))
    smaller = chat()
    now(admit(account, smaller))  # admitted with a smaller cap: the budget is not spent yet
    assert MIN_OUTPUT <= smaller["max_tokens"] < 256
    assert list(read_notes(tmp_path)) == []
    for _ in range(2):  # refused twice: noted once
        with pytest.raises(BudgetExceeded):
            admit(account, chat(max_tokens=200))
    [note] = read_notes(tmp_path)
    assert note.type == BUDGET_REACHED
    assert note.time_ms == int(NOON * 1000)
    assert note.data == {
        "consumer": "alice",
        "team": "data",
        "budget": "token budget of 400 per day",
        "who": "consumer",
        "unit": "tokens",
        "limit": 400,
        "remaining": note.data["remaining"],
        "period": "day@Europe/Paris",
        "resets_at": "2026-03-28T23:00:00Z",  # midnight in Paris
    }
    assert 0 <= note.data["remaining"] < 249
