"""The ``apis`` section: routes grouped into API products, with plans and a lifecycle.

An API names the routes it is made of (any route: proxied, AI, prompt APIs,
resources, MCP endpoints), a lifecycle ``state`` and, optionally, ``plans`` a
consumer subscribes to (``consumers[].subscriptions``).  Nothing here is compiled
into targets or routes: the data plane puts one built-in plugin (named
:data:`API_PLUGIN`) on each route of an API when it compiles a snapshot, so that a
route outside every API costs nothing (docs/apis.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Strict
from quiver.config.document import mappings
from quiver.config.mcp_routes import MCP_PREFIX, OpenAPISource
from quiver.config.resources import RESOURCE_PREFIX
from quiver.config.units import parse_duration
from quiver.config.upstream import NAME_PATTERN

#: the built-in plugin the data plane puts on each route of an API; never written
API_PLUGIN = "api-product"
#: the authentication added to a route of an API with plans that has none
DEFAULT_AUTH = "key-auth"
#: the plugin whose config checks an API's ``counters`` (its store settings)
COUNTER_PLUGIN = "rate-limit"
COUNTER_KEYS = ("store", "redis", "on_store_error")

State = Literal["draft", "published", "deprecated", "retired"]
Path = tuple[str | int, ...]


class Deprecation(Strict):
    """When an API was deprecated and when it goes away (RFC 9745, RFC 8594)."""

    date: datetime = Field(
        description="When the API was deprecated (e.g. 2026-12-01T00:00:00Z); sent as "
        "`Deprecation: @<epoch seconds>` (RFC 9745)."
    )
    sunset: datetime | None = Field(
        None,
        description="When it stops answering; sent as `Sunset: <HTTP date>` (RFC 8594).",
    )
    link: str | None = Field(
        None,
        description='Where to read about it; sent as `Link: <link>; rel="deprecation"`.',
    )

    @field_validator("date", "sunset")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
        return value


class PlanRateLimit(Strict):
    limit: int = Field(ge=1, description="Requests allowed per `window`.")
    window: Duration = Field(
        description="The window: seconds, or a duration such as 1s, 1m, 1h or 1d."
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: float) -> float:
        if not 1.0 <= value <= 86400.0:
            raise ValueError(f"window {value:g}s: windows go from 1s to 1d")
        return value


class PlanQuota(Strict):
    limit: int = Field(ge=1, description="Requests allowed per `period`.")
    period: str | float = Field(
        description="'day', 'week' or 'month' (calendar periods, UTC), or a rolling "
        "duration such as 7d or 30d, as for the quota plugin."
    )

    @field_validator("period", mode="before")
    @classmethod
    def _period(cls, value: object) -> object:
        if value in ("day", "week", "month"):
            return value
        seconds = parse_duration(value) if not isinstance(value, bool) else None
        if not isinstance(seconds, (int, float)) or not 60 <= seconds <= 366 * 86400:
            raise ValueError(f"{value!r}: use day, week, month or a duration from 1m to 366d")
        return float(seconds)


class Plan(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique name within the API.")
    title: str | None = Field(None, description="What the catalog shows.")
    description: str | None = Field(None, description="What the plan offers.")
    rate_limit: PlanRateLimit | None = Field(
        None,
        description="Requests per window for each subscribed consumer, on all the API's "
        "routes together, e.g. `{limit: 100, window: 1m}` (as the rate-limit plugin).",
    )
    quota: PlanQuota | None = Field(
        None,
        description="Requests per period for each subscribed consumer, e.g. "
        "`{limit: 10000, period: month}` (as the quota plugin).",
    )
    approval: Literal["manual", "auto"] = Field(
        "manual",
        description="Whether a subscription request waits for an operator (`manual`) "
        "or is approved at once (`auto`).",
    )


class Api(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique name of the API.")
    title: str | None = Field(None, description="What the catalog shows.")
    description: str | None = Field(None, description="What the API is for.")
    tags: list[str] = Field(default_factory=list, description="Labels to search the catalog by.")
    version: str | None = Field(None, description='The API\'s version, e.g. "1.2".')
    routes: list[str] = Field(
        min_length=1,
        description="Names of the routes the API is made of (any kind of route); a "
        "route belongs to one API at most.",
    )
    state: State = Field(
        "draft",
        description="draft (served, hidden from the catalog), published, deprecated "
        "(served with Deprecation and Sunset headers) or retired (answers 410).",
    )
    deprecation: Deprecation | None = Field(
        None, description="When deprecated and retired: `date`, and `sunset` and `link`."
    )
    openapi: OpenAPISource | None = Field(
        None,
        description="The API's OpenAPI document: inline, a file, a URL, `target://NAME/path` "
        "or a gateway path (`{path: /openapi/resources.json}`); by default the first "
        "route's target's `/openapi.json`.",
    )
    plans: list[Plan] = Field(
        default_factory=list,
        description="Plans consumers subscribe to; with any, the API's routes answer only "
        "consumers with an approved subscription (key-auth is added where no "
        "authentication applies).",
    )
    counters: dict[str, Any] = Field(
        default_factory=dict,
        description="Where the plans count, with the keys of the rate-limit and quota "
        "plugins: `store` (local or redis), `redis` ({url, timeout, prefix}) and "
        "`on_store_error`; by default the node's local tables.",
    )

    @field_validator("counters")
    @classmethod
    def _counter_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(COUNTER_KEYS))
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' (use store, redis, on_store_error)")
        return value

    @model_validator(mode="after")
    def _deprecation(self) -> Api:
        if self.state in ("deprecated", "retired") and self.deprecation is None:
            raise ValueError(f"state '{self.state}' needs deprecation: {{date: ...}}")
        names = [plan.name for plan in self.plans]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"duplicate plan name '{name}'")
        return self

    def plan(self, name: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.name == name), None)


class Subscription(Strict):
    api: str = Field(
        description="The API subscribed to: one of the team's, or in store mode another "
        "team's, qualified with the team's name (`payments.orders`)."
    )
    plan: str = Field(description="The plan of that API.")


def routes_of(apis: list[Api], route_names: set[str]) -> dict[str, Api]:
    """The API each compiled route belongs to: a route named by an API, and the MCP
    endpoint a route's `mcp` key made of it."""
    found: dict[str, Api] = {}
    for api in apis:
        for name in api.routes:
            for candidate in (name, MCP_PREFIX + name):
                if candidate in route_names:
                    found.setdefault(candidate, api)
    return found


def reference_issues(
    data: Mapping[str, Any], elsewhere: Mapping[str, Sequence[str]] | None = None
) -> Iterator[tuple[Path, str]]:
    """What the ``apis`` section and the consumers' ``subscriptions`` name that does
    not exist, read from the plain data (a value of another shape is the models').

    ``elsewhere`` holds the APIs declared beside ``data`` that its consumers may
    subscribe to (in store mode, the other teams', qualified: ``payments.orders``),
    with the names of their plans; they are never listed in a message."""
    elsewhere = elsewhere or {}
    routes = _route_names(data)
    apis: dict[str, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for index, api in mappings(data.get("apis")):
        name = api.get("name")
        if isinstance(name, str):  # (a duplicate name is the loader's to tell)
            apis.setdefault(name, api)
        listed = api.get("routes")
        for position, route in enumerate(listed if isinstance(listed, list) else ()):
            if not isinstance(route, str):
                continue
            where: Path = ("apis", index, "routes", position)
            if route not in routes:
                yield where, f"unknown route '{route}'" + _known("routes", sorted(routes))
            elif route in owner and owner[route] != name:
                yield where, f"route '{route}' is in API '{owner[route]}' already"
            else:
                owner[route] = str(name)
    for index, consumer in mappings(data.get("consumers")):
        for position, subscription in mappings(consumer.get("subscriptions")):
            where = ("consumers", index, "subscriptions", position)
            api_name, plan = subscription.get("api"), subscription.get("plan")
            if not isinstance(api_name, str):
                continue
            declared = apis.get(api_name)
            if declared is not None:
                plans = [p.get("name") for _, p in mappings(declared.get("plans"))]
            elif api_name in elsewhere:
                plans = list(elsewhere[api_name])
            else:
                yield (*where, "api"), f"unknown API '{api_name}'" + _known("APIs", list(apis))
                continue
            if isinstance(plan, str) and plan not in plans:
                known = _known("plans", [str(p) for p in plans]) if plans else ": it has no plans"
                yield (*where, "plan"), f"unknown plan '{plan}' of API '{api_name}'" + known


def _route_names(data: Mapping[str, Any]) -> set[str]:
    names = {str(route.get("name")) for _, route in mappings(data.get("routes"))}
    for _, resource in mappings(data.get("resources")):
        names.add(f"{RESOURCE_PREFIX}{resource.get('name')}")
    if data.get("resources"):
        names.add(f"{RESOURCE_PREFIX}openapi")
    return names


def _known(noun: str, names: list[str]) -> str:
    if not names:
        return f": no {noun} are declared"
    return " (declared " + noun + ": " + ", ".join(f"'{name}'" for name in names) + ")"
