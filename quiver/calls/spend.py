"""Spend rows: the ``ai`` member of spooled calls into ``ai_spend`` and its rollups.

Called by the ingester inside a batch's transaction, after the names of the batch
have ids (so a batch's spend rows commit or roll back with its calls).  Rollups are
summed in memory per minute and hour first, then upserted once per key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection

from quiver.calls.records import Record
from quiver.store.calltables import CONSUMER, ROUTE
from quiver.store.spendtables import (
    AI_TEAM,
    DEPLOYMENT,
    MODEL,
    PROVIDER,
    SPEND_KEY,
    SPEND_SUMS,
    ai_spend,
    ai_spend_rollups,
    ai_spend_rollups_hourly,
)

_COLUMNS = (
    "request_id", "time_ms", "route_id", "consumer_id", "team_id", "model_id", "provider_id",
    "deployment_id", "prompt_tokens", "completion_tokens", "cost_nusd", "ttft_us",
)  # fmt: skip


def spend_names(record: Record) -> Iterator[tuple[int, str]]:
    """The names a record's spend row refers to, by kind."""
    spend = record.spend
    if spend is None:
        return
    for kind, name in (
        (MODEL, spend.model),
        (PROVIDER, spend.provider),
        (DEPLOYMENT, spend.deployment),
        (AI_TEAM, spend.team),
    ):
        if name is not None:
            yield kind, name


def insert_spend(
    connection: Connection,
    records: list[Record],
    id_of: Callable[[int, str | None], int],
    write: Callable[[Connection, str, str, list[tuple[Any, ...]]], None],
) -> int:
    """Write the spend rows and rollup sums of ``records``; how many rows."""
    rows: list[tuple[Any, ...]] = []
    minutes: dict[tuple[int, ...], list[int]] = {}
    for r in records:
        spend = r.spend
        if spend is None:
            continue
        key = (
            id_of(ROUTE, r.route),
            id_of(CONSUMER, r.consumer),
            id_of(AI_TEAM, spend.team),
            id_of(MODEL, spend.model),
            id_of(PROVIDER, spend.provider),
        )
        rows.append(
            (
                r.request_id,
                r.time_ms,
                *key,
                id_of(DEPLOYMENT, spend.deployment),
                spend.prompt_tokens,
                spend.completion_tokens,
                spend.cost_nusd,
                spend.ttft_us,
            )
        )
        sums = minutes.setdefault((r.time_ms // 60_000, *key), [0] * len(SPEND_SUMS))
        sums[0] += 1
        sums[1] += spend.prompt_tokens
        sums[2] += spend.completion_tokens
        sums[3] += spend.cost_nusd
    if not rows:
        return 0
    hours: dict[tuple[int, ...], list[int]] = {}
    for minute_key, sums in minutes.items():
        into = hours.setdefault((minute_key[0] // 60, *minute_key[1:]), [0] * len(SPEND_SUMS))
        for index, value in enumerate(sums):
            into[index] += value
    write(connection, f"INSERT INTO {ai_spend.name} ({', '.join(_COLUMNS)})", "", rows)
    for table, period, sums_of in (
        (ai_spend_rollups, "minute", minutes),
        (ai_spend_rollups_hourly, "hour", hours),
    ):
        key_columns = (period, *SPEND_KEY)
        columns = ", ".join((*key_columns, *SPEND_SUMS))
        updates = ", ".join(
            f"{name} = {table.name}.{name} + excluded.{name}" for name in SPEND_SUMS
        )
        write(
            connection,
            f"INSERT INTO {table.name} ({columns})",
            f" ON CONFLICT ({', '.join(key_columns)}) DO UPDATE SET {updates}",
            [(*key, *sums) for key, sums in sums_of.items()],
        )
    return len(rows)
