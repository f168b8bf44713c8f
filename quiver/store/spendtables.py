"""The AI spend tables: one lean row per AI call, and per-minute and hourly sums.

A spend row is written beside the call's row (quiver.calls) when the call went to
a model: the same ``request_id`` and time, then numbers only.  Model, provider,
deployment (the provider's model name), consumer, team and route are ids into
``call_names`` (kinds below), so a model's name is stored once however many calls
it answered.  Cost is in nano-dollars (an integer: a cheap model's call costs a
few millionths of a dollar), time to first token in microseconds (null when the
answer was not streamed).

Rollups sum the spend rows of one minute (or hour) with one route, consumer, team,
model and provider: calls, prompt and completion tokens, cost.  Sums are exact, so
analytics read them for any range.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from quiver.store.models import Base

#: more kinds of ``call_names.kind`` (after quiver.store.calltables' five)
MODEL, PROVIDER, DEPLOYMENT, AI_TEAM = 6, 7, 8, 9
#: nano-dollars per dollar
NANO = 1_000_000_000

_Id = BigInteger().with_variant(Integer(), "sqlite")

ai_spend = Table(
    "ai_spend",
    Base.metadata,
    Column("id", _Id, primary_key=True),
    Column("request_id", String, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("route_id", Integer, nullable=False),
    Column("consumer_id", Integer, nullable=False),
    Column("team_id", Integer, nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("provider_id", Integer, nullable=False),
    Column("deployment_id", Integer, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost_nusd", BigInteger, nullable=False),
    Column("ttft_us", BigInteger, nullable=True),
    Index("ix_ai_spend_time", "time_ms"),
    Index("ix_ai_spend_request_id", "request_id"),
)

#: the sums of a rollup row, in this order
SPEND_SUMS = ("calls", "prompt_tokens", "completion_tokens", "cost_nusd")
#: the key of a rollup row after its period
SPEND_KEY = ("route_id", "consumer_id", "team_id", "model_id", "provider_id")


def _rollups(name: str, period: str) -> Table:
    return Table(
        name,
        Base.metadata,
        Column(period, BigInteger, nullable=False),  # epoch minutes or hours
        *(Column(column, Integer, nullable=False) for column in SPEND_KEY),
        *(Column(column, BigInteger, nullable=False) for column in SPEND_SUMS),
        Index(f"ux_{name}_key", period, *SPEND_KEY, unique=True),
    )


#: per minute
ai_spend_rollups = _rollups("ai_spend_rollups", "minute")
#: per hour: ranges in hour or day buckets read 60 times fewer rows
ai_spend_rollups_hourly = _rollups("ai_spend_rollups_hourly", "hour")
