"""The one declaration the data plane serves: every team's, merged.

The ``default`` team's document is taken as it is: it alone holds the top-level
sections (``limits``, ``timeouts``, ``pool``) and the global plugins.  Any other
team holds only targets, routes, consumers and APIs; in the merged document their
names are qualified with the team's (``payments.orders``), and a route's ``target``,
an API's ``routes`` and a consumer's ``subscriptions`` with them, so that two teams
may use one name without meeting.  Access logs, metrics and counters keyed by a
consumer or route name therefore tell the teams apart too.

A consumer may subscribe to another team's API: its ``subscriptions`` name it
qualified with that team's name (``payments.orders``, ``default.orders``), which
becomes the API's name in the merged document (``payments.orders``, ``orders``).
An unqualified name is an API of the consumer's own team, and so is a name with a
dot that the team itself declares (API names may hold dots).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quiver.store.models import DEFAULT_TEAM

#: what a team other than ``default`` may declare
TEAM_KEYS = ("targets", "routes", "consumers", "apis")


def qualified(team: str, name: str) -> str:
    """How the data plane names entity ``name`` of ``team``."""
    return name if team == DEFAULT_TEAM else f"{team}.{name}"


def merge(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The declaration of all ``documents`` (by team name): the default team's first,
    then each other team's entities, in the order of the teams' names."""
    merged: dict[str, Any] = dict(documents.get(DEFAULT_TEAM, {}))
    if merged.get("consumers"):  # (the default team's own names stay as they are)
        merged["consumers"] = [
            _subscribing(DEFAULT_TEAM, consumer, documents) for consumer in merged["consumers"]
        ]
    for team in sorted(documents):
        if team == DEFAULT_TEAM:
            continue
        document = documents[team]
        for key in TEAM_KEYS:
            items = [_qualify(team, key, item, documents) for item in document.get(key, [])]
            if items:
                merged[key] = [*merged.get(key, []), *items]
    return merged


def api_owner(team: str, name: str, documents: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """The team and the name in it of the API a consumer of ``team`` subscribes to
    as ``name``: ``payments.orders`` is API ``orders`` of team ``payments`` when
    that team exists and ``team`` declares no API of that very name."""
    owner, dot, api = name.partition(".")
    if dot and owner in documents and not _declares(documents.get(team, {}), name):
        return owner, api
    return team, name


def _declares(document: Mapping[str, Any], api: str) -> bool:
    return any(
        isinstance(item, Mapping) and item.get("name") == api for item in document.get("apis", [])
    )


def _qualify(
    team: str, key: str, item: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    renamed = dict(item, name=qualified(team, item["name"]))
    if key == "routes" and "target" in item:  # (an AI route has none)
        renamed["target"] = qualified(team, item["target"])
    if key == "apis":
        renamed["routes"] = [qualified(team, route) for route in item.get("routes", [])]
    if key == "consumers":
        return _subscribing(team, renamed, documents)
    return renamed


def _subscribing(
    team: str, consumer: Mapping[str, Any], documents: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """``consumer`` with its subscriptions naming APIs as the merged document does."""
    if not consumer.get("subscriptions"):
        return dict(consumer)
    return dict(
        consumer,
        subscriptions=[
            dict(subscription, api=qualified(*api_owner(team, subscription["api"], documents)))
            for subscription in consumer["subscriptions"]
        ],
    )
