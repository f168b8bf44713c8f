"""``/analytics/ai/*``: tokens and cost of the calls that went to models.

Shaped like the call analytics (quiver.admin.analytics): the same token rules (a
team-scoped token sees its team's spend only: on its routes and by its consumers),
ranges (`from`, `to`), buckets and CSV.  Sums are read from the spend rollups and are exact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from quiver.admin.analytics import (
    _BUCKET_MS,
    _CSV,
    Consumer,
    Format,
    From,
    Scope,
    To,
    _csv,
    _iso,
    _range,
    _series_range,
    _store,
    _wants_csv,
    readable_parameters,
)
from quiver.admin.responses import problems
from quiver.calls.spend_queries import Order, SpendBy, SpendDimension, spend_series, spend_top

api = APIRouter(tags=["analytics"], dependencies=[Depends(readable_parameters)])


class Spend(BaseModel):
    calls: int = Field(description="Calls that went to a model.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float = Field(description="US dollars, at the models' prices.")


class SpendPointDoc(Spend):
    time: datetime
    key: str | None = Field(description="The `by` value; null without `by`.")


class SpendSeriesDoc(BaseModel):
    bucket: Literal["minute", "hour", "day"]
    by: str | None
    from_: datetime = Field(alias="from")
    to: datetime
    data: list[SpendPointDoc]


class SpendTopItem(Spend):
    name: str | None


class SpendTopDoc(BaseModel):
    dimension: str
    order: str
    data: list[SpendTopItem]


@api.get(
    "/analytics/ai/spend",
    response_model=SpendSeriesDoc,
    response_model_by_alias=True,
    responses={**_CSV, **problems()},
    summary="Tokens and cost of AI calls over time",
)
def get_spend(
    request: Request,
    team: Scope,
    start: From = None,
    to: To = None,
    bucket: Literal["minute", "hour", "day"] = "hour",
    by: Annotated[SpendBy | None, Query(description="Split each bucket by this.")] = None,
    format: Format = None,
    consumer: Consumer = None,
) -> Any:
    start_ms, end_ms = _series_range(start, to, bucket)
    with _store(request).engine.connect() as connection:
        first, last, points = spend_series(
            connection, start_ms, end_ms, _BUCKET_MS[bucket], by, team, consumer
        )
    data = [{"time": _iso(p.time_ms), "key": p.key, **p.spent.document()} for p in points]
    if _wants_csv(request, format):
        return _csv(data, ["time", "key", *Spend.model_fields])
    return {"bucket": bucket, "by": by, "from": _iso(first), "to": _iso(last), "data": data}


@api.get(
    "/analytics/ai/top",
    response_model=SpendTopDoc,
    responses=problems(),
    summary="The consumers, teams, models, providers or routes that spent the most",
)
def get_spend_top(
    request: Request,
    team: Scope,
    dimension: SpendDimension = "consumers",
    order: Order = "cost",
    n: Annotated[int, Query(ge=1, le=1000)] = 10,
    start: From = None,
    to: To = None,
) -> dict[str, Any]:
    start_ms, end_ms = _range(start, to)
    with _store(request).engine.connect() as connection:
        found = spend_top(connection, start_ms, end_ms, dimension, order, n, team)
    return {
        "dimension": dimension,
        "order": order,
        "data": [{"name": name, **spent.document()} for name, spent in found],
    }
