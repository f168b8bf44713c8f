"""``/analytics/*`` and ``/calls``: the call log, read for operators.

Any valid token reads them.  A team-scoped token sees only the calls of its
team's routes (names qualified ``team.``), an unscoped one everything, or one
team's with ``?team=`` (404 for a team there is not, whatever the token).  A
parameter that cannot be read (a NUL character, which no name holds and
PostgreSQL cannot compare; a time out of the calendar's range) is a 422
problem.  Series, top lists and call lists also answer CSV, with ``?format=csv``
or ``Accept: text/csv``.  How ranges are read (raw rows or
per-minute rollups) is in quiver.calls.queries.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from quiver.admin.auth import TeamQuery, _declarations, caller, is_name
from quiver.admin.declarations import Declarations
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import problems
from quiver.calls.queries import (
    By,
    CallFilter,
    Dimension,
    Totals,
    capture_of,
    list_calls,
    newest_id,
    series,
    top,
    top_causes,
)
from quiver.calls.spend_queries import spend_of_call
from quiver.store import Store
from quiver.store.tokens import TokenInfo


def readable_parameters(request: Request) -> None:
    """No query or path parameter holds a NUL character (no name does, and
    PostgreSQL's text cannot)."""
    for name, value in (*request.query_params.multi_items(), *request.path_params.items()):
        if "\x00" in str(value):
            raise ApiProblem(
                422, "invalid-request", f"`{name}` holds a NUL character, which no value can"
            )


api = APIRouter(tags=["analytics"], dependencies=[Depends(readable_parameters)])
_BUCKET_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
#: most buckets in a series: a minute series spans at most 6 hours (wider ones read
#: too many rollup rows to answer quickly; hour buckets serve them)
_MOST_POINTS = {"minute": 360, "hour": 2400, "day": 3660}
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}

From = Annotated[
    datetime | None,
    Query(alias="from", description="Start (ISO 8601); default: an hour before `to`."),
]
To = Annotated[datetime | None, Query(description="End, excluded (ISO 8601); default: now.")]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` answers text/csv (so does `Accept: text/csv`)."),
]
Consumer = Annotated[
    str | None,
    Query(
        description="Only this consumer's calls, named as the call log names it "
        "(`web.app` for app `app` of team `web`)."
    ),
]


def scope(
    token: Annotated[TokenInfo, Depends(caller)],
    declarations: Annotated[Declarations, Depends(_declarations)],
    team: TeamQuery = None,
) -> str | None:
    """The team whose calls the caller sees, or None for all of them; 404 for a team
    there is not (or that a team-scoped token may not see)."""
    if token.team is not None:
        if team is not None and team != token.team:
            raise ApiProblem(404, "team-not-found", f"there is no team {team!r}")
        return token.team
    if team is not None and not (is_name(team) and declarations.has_team(team)):
        raise ApiProblem(404, "team-not-found", f"there is no team {team!r}")
    return team


Scope = Annotated[str | None, Depends(scope)]


class Stats(BaseModel):
    requests: int
    errors: int = Field(description="Calls answered 5xx.")
    error_rate: float
    bytes_in: int
    bytes_out: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class SeriesPoint(Stats):
    time: datetime
    key: str | None = Field(description="The `by` value (a name, or `2xx`...); null without `by`.")


class SeriesDoc(BaseModel):
    source: Literal["calls", "rollups"] = Field(
        description="`calls`: raw rows, exact percentiles; `rollups`: per-minute sums, "
        "percentiles to a histogram bucket's upper bound."
    )
    bucket: Literal["minute", "hour", "day"]
    by: str | None
    from_: datetime = Field(alias="from")
    to: datetime
    data: list[SeriesPoint]


class TopItem(Stats):
    name: str | None = Field(
        description="The consumer, route or target (null: none, e.g. anonymous calls); "
        "for `causes`, the status and who answered (`429 rate-limit`)."
    )
    status: int | None = Field(
        None, description="`causes`: the status the calls ended with; null otherwise."
    )
    answered_by: str | None = Field(
        None,
        description="`causes`: who answered, the plugin that refused or answered "
        "(`key-auth`), `gateway` (no route matched, or the upstream failed: 502, 503, "
        "504), `target` (its own answer) or `client` (499: it left first); null otherwise.",
    )


class TopDoc(BaseModel):
    dimension: str
    data: list[TopItem]


class CallDoc(BaseModel):
    request_id: str
    time: datetime
    route: str | None
    target: str | None
    consumer: str | None
    node: str | None
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    latency_ms: float
    upstream_ms: float | None
    gateway_ms: float | None
    client_ip: str | None
    user_agent: str | None
    retries: int
    cache: str | None
    answered_by: str | None
    mcp_method: str | None = Field(
        None, description="An MCP message's JSON-RPC method (`tools/call`...); null otherwise."
    )
    mcp_tool: str | None = Field(
        None, description="The tool, prompt or resource (URI) an MCP message named."
    )
    mcp_outcome: str | None = Field(
        None,
        description="How an MCP message ended: `ok`, `error` (the tool answered isError), "
        "`refused` (a JSON-RPC error), `failed` (the upstream or the gateway failed); "
        "null for a notification.",
    )
    ws_messages_in: int | None = Field(
        None,
        description="A WebSocket connection (status 101): data messages from the client; "
        "null for any other call, and when the route does not read frames.",
    )
    ws_messages_out: int | None = Field(
        None,
        description="A WebSocket connection: data messages from the node; null for any "
        "other call, and when the route does not read frames.",
    )
    ws_bytes_in: int | None = Field(
        None,
        description="A WebSocket connection: bytes through the tunnel from the client, as on "
        "the wire (frame headers included); null for any other call.",
    )
    ws_bytes_out: int | None = Field(
        None,
        description="A WebSocket connection: bytes through the tunnel to the client, as on "
        "the wire; null for any other call.",
    )
    ws_close_code: int | None = Field(
        None,
        description="A WebSocket connection: the first close frame's code (1005: a close "
        "frame without one, 1006: no close frame); null for any other call, and when the "
        "route does not read frames.",
    )
    ws_closed_by: str | None = Field(
        None,
        description="A WebSocket connection: `client`, `target` or `gateway`, who sent the "
        "first close frame (or, when frames "
        "are not read, whose connection ended first); null for any other call.",
    )


class CallDetail(CallDoc):
    capture: dict[str, Any] | None = Field(
        None,
        description="The request's and the response's header fields (secrets redacted) "
        "and bodies (cut at the route's `call_log.max_body`; `size` is the whole "
        "length), for routes whose `call_log` keeps bodies; null otherwise.",
    )
    ai: dict[str, Any] | None = Field(
        None,
        description="What the call spent when it went to a model: model, provider, "
        "deployment, team, prompt/completion/total tokens, cost (USD), ttft_ms; null "
        "otherwise.",
    )


class CallPage(BaseModel):
    data: list[CallDoc]
    next: str | None = Field(description="The next (older) page's `cursor`; null at the end.")
    tail: str = Field(
        description="Where the call log ends now: pass it as `after` for the calls "
        "stored since (`quiver logs --follow` does)."
    )


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _range(start: datetime | None, end: datetime | None) -> tuple[int, int]:
    end_ms = _ms(end, "to") if end is not None else int(time.time() * 1000)
    start_ms = _ms(start, "from") if start is not None else end_ms - 3_600_000
    if start_ms >= end_ms:
        raise ApiProblem(400, "invalid-request", "`from` must be before `to`")
    return start_ms, end_ms


def _series_range(
    start: datetime | None, end: datetime | None, bucket: Literal["minute", "hour", "day"]
) -> tuple[int, int]:
    """The range of a series, as :func:`_range`; 400 when it holds too many buckets."""
    start_ms, end_ms = _range(start, end)
    if (end_ms - start_ms) // _BUCKET_MS[bucket] > _MOST_POINTS[bucket]:
        raise ApiProblem(
            400,
            "invalid-request",
            f"a series has at most {_MOST_POINTS[bucket]} {bucket}s: shorten the range "
            "or widen `bucket`",
        )
    return start_ms, end_ms


#: the times a parameter may name: a day inside the calendar's ends, so that a range
#: widened to whole days (and written back as times) stays on the calendar
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _ms(moment: datetime, name: str) -> int:
    """``moment`` (UTC unless it says) in epoch milliseconds; 422 beyond the calendar's
    range (``name``: the parameter)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not _EARLIEST <= moment <= _LATEST:
        raise ApiProblem(
            422,
            "invalid-request",
            f"`{name}` is out of range: times are between {_EARLIEST.date()} and {_LATEST.date()}",
        )
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _stats(totals: Totals) -> dict[str, Any]:
    return {
        "requests": totals.requests,
        "errors": totals.errors,
        "error_rate": round(totals.errors / totals.requests, 6) if totals.requests else 0.0,
        "bytes_in": totals.bytes_in,
        "bytes_out": totals.bytes_out,
        "p50_ms": totals.percentile_ms(0.50),
        "p95_ms": totals.percentile_ms(0.95),
        "p99_ms": totals.percentile_ms(0.99),
    }


def _wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    return "text/csv" in request.headers.get("accept", "")


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
        )
    return Response(out.getvalue(), media_type="text/csv")


@api.get(
    "/analytics/requests",
    response_model=SeriesDoc,
    response_model_by_alias=True,
    responses={**_CSV, **problems()},
    summary="Requests, errors, bytes and latency percentiles over time",
)
def get_series(
    request: Request,
    team: Scope,
    start: From = None,
    to: To = None,
    bucket: Literal["minute", "hour", "day"] = "minute",
    by: Annotated[By | None, Query(description="Split each bucket by this.")] = None,
    format: Format = None,
    consumer: Consumer = None,
) -> Any:
    start_ms, end_ms = _series_range(start, to, bucket)
    with _store(request).engine.connect() as connection:
        found = series(connection, start_ms, end_ms, _BUCKET_MS[bucket], by, team, consumer)
    data = [{"time": _iso(p.time_ms), "key": p.key, **_stats(p.totals)} for p in found.points]
    if _wants_csv(request, format):
        return _csv(data, ["time", "key", *Stats.model_fields])
    return {
        "source": found.source,
        "bucket": bucket,
        "by": by,
        "from": _iso(found.start_ms),
        "to": _iso(found.end_ms),
        "data": data,
    }


@api.get(
    "/analytics/top",
    response_model=TopDoc,
    responses={**_CSV, **problems()},
    summary="The consumers, routes or targets with the most calls, the routes with the most "
    "errors, or the causes of errors",
)
def get_top(
    request: Request,
    team: Scope,
    dimension: Annotated[
        Dimension,
        Query(
            description="`errors`: routes by their 5xx calls; `causes`: calls that ended in "
            "an error (4xx, 5xx) by status and who answered, by their number."
        ),
    ] = "routes",
    n: Annotated[int, Query(ge=1, le=1000)] = 10,
    start: From = None,
    to: To = None,
    format: Format = None,
) -> Any:
    start_ms, end_ms = _range(start, to)
    with _store(request).engine.connect() as connection:
        if dimension == "causes":
            data = [
                {
                    "name": f"{cause.status} {cause.answered_by}",
                    "status": cause.status,
                    "answered_by": cause.answered_by,
                    **_stats(cause.totals),
                }
                for cause in top_causes(connection, start_ms, end_ms, n, team)
            ]
        else:
            found = top(connection, start_ms, end_ms, dimension, n, team)
            data = [{"name": name, **_stats(totals)} for name, totals in found]
    if _wants_csv(request, format):
        named = ["name", "status", "answered_by"] if dimension == "causes" else ["name"]
        return _csv(data, [*named, *Stats.model_fields])
    return {"dimension": dimension, "data": data}


@api.get(
    "/calls",
    response_model=CallPage,
    responses={**_CSV, **problems()},
    summary="Calls, newest first",
)
def get_calls(
    request: Request,
    team: Scope,
    route: str | None = None,
    consumer: str | None = None,
    status: Annotated[
        str | None, Query(description="`404`, a class (`5xx`) or a range (`400-599`).")
    ] = None,
    request_id: str | None = None,
    mcp_method: Annotated[
        str | None, Query(description="MCP messages of this JSON-RPC method (`tools/call`).")
    ] = None,
    mcp_tool: Annotated[
        str | None,
        Query(description="MCP messages that named this tool, prompt or resource (URI)."),
    ] = None,
    mcp_outcome: Annotated[
        Literal["ok", "error", "refused", "failed"] | None,
        Query(description="MCP messages that ended so."),
    ] = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
    after: Annotated[
        str | None,
        Query(
            description="A page's `tail`: the calls stored since, in the order they were "
            "stored (a call stored late, with an earlier time, too), at most `limit`; the "
            "page's `tail` goes on from the last one."
        ),
    ] = None,
    format: Format = None,
) -> Any:
    if after is not None and cursor is not None:
        raise ApiProblem(422, "invalid-request", "`after` and `cursor` do not go together")
    where = CallFilter(
        route=route,
        consumer=consumer,
        status=_status(status),
        request_id=request_id,
        start_ms=_ms(start, "from") if start is not None else None,
        end_ms=_ms(to, "to") if to is not None else None,
        team=team,
        mcp_method=mcp_method,
        mcp_tool=mcp_tool,
        mcp_outcome=mcp_outcome,
    )
    following = None
    with _store(request).engine.connect() as connection:
        last = newest_id(connection)  # (read first: later rows wait for the next tail)
        if after is not None:
            rows = list_calls(
                connection, where, limit, None, stored_after=_stored(after), stored_through=last
            )
            if len(rows) == limit:  # more may follow: go on from the last one
                last = rows[-1]["id"]
        else:
            rows = list_calls(connection, where, limit + 1, _decode(cursor), stored_through=last)
            if len(rows) > limit:
                rows = rows[:limit]
                following = _encode(rows[-1]["time_ms"], rows[-1]["id"])
    data = [_call(row) for row in rows]
    if _wants_csv(request, format):
        return _csv(data, list(CallDoc.model_fields))
    return {"data": data, "next": following, "tail": _tail(last)}


@api.get(
    "/calls/{request_id}",
    response_model=CallDetail,
    responses=problems(),
    summary="One call, by its request id",
)
def get_call(request: Request, team: Scope, request_id: str) -> dict[str, Any]:
    with _store(request).engine.connect() as connection:
        rows = list_calls(connection, CallFilter(request_id=request_id, team=team), 1, None)
        if not rows:
            raise ApiProblem(404, "call-not-found", f"no call {request_id!r} is in the call log")
        capture = capture_of(connection, rows[0]["id"])
        spent = spend_of_call(connection, request_id)
    return {
        **_call(rows[0]),
        "capture": json.loads(capture) if capture is not None else None,
        "ai": spent,
    }


def _call(row: dict[str, Any]) -> dict[str, Any]:
    def ms(us: int | None) -> float | None:
        return None if us is None else us / 1000

    return {
        **{k: row[k] for k in CallDoc.model_fields if k in row},
        "time": _iso(row["time_ms"]),
        "latency_ms": row["latency_us"] / 1000,
        "upstream_ms": ms(row["upstream_us"]),
        "gateway_ms": ms(row["gateway_us"]),
    }


def _status(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    if len(text) == 3 and text[0] in "12345" and text[1:].lower() == "xx":
        low = int(text[0]) * 100
        return low, low + 99
    first, dash, last = text.partition("-")
    if _code(first) and (not dash or (_code(last) and int(first) <= int(last))):
        return int(first), int(last or first)
    raise ApiProblem(
        422,
        "invalid-request",
        "`status` is a code (`404`), a class (`5xx`) or a range (`400-599`)",
    )


def _code(text: str) -> bool:
    return text.isdigit() and 100 <= int(text) <= 599


def _encode(time_ms: int, row_id: int) -> str:
    raw = json.dumps({"t": time_ms, "i": row_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tail(row_id: int) -> str:
    raw = json.dumps({"s": row_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _stored(tail: str) -> int:
    """The row id a ``tail`` marks."""
    data = _cursor_data(tail)
    if not isinstance(data, dict) or type(data.get("s")) is not int:
        raise ApiProblem(
            422, "invalid-request", "`after` is not a tail this API gave out: pass a page's `tail`"
        )
    return int(data["s"])


def _cursor_data(text: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        return None


def _decode(cursor: str | None) -> tuple[int, int] | None:
    if cursor is None:
        return None
    data = _cursor_data(cursor)
    if (
        not isinstance(data, dict)
        or type(data.get("t")) is not int
        or type(data.get("i")) is not int
    ):
        raise ApiProblem(
            422, "invalid-request", "the cursor is not one this API gave out: pass a page's `next`"
        )
    return data["t"], data["i"]
