"""The one declaration the data plane serves: every team's, merged.

The ``default`` team's document is taken as it is: it alone holds the top-level
sections (``limits``, ``timeouts``, ``pool``) and the global plugins.  Any other
team holds only targets, routes, consumers and APIs; in the merged document their
names are qualified with the team's (``payments.orders``), and a route's ``target``,
an API's ``routes`` and a consumer's ``subscriptions`` with them, so that two teams
may use one name without meeting.  Access logs, metrics and counters keyed by a
consumer or route name therefore tell the teams apart too.
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
    for team in sorted(documents):
        if team == DEFAULT_TEAM:
            continue
        document = documents[team]
        for key in TEAM_KEYS:
            items = [_qualify(team, key, item) for item in document.get(key, [])]
            if items:
                merged[key] = [*merged.get(key, []), *items]
    return merged


def _qualify(team: str, key: str, item: Mapping[str, Any]) -> dict[str, Any]:
    renamed = dict(item, name=qualified(team, item["name"]))
    if key == "routes" and "target" in item:  # (an AI route has none)
        renamed["target"] = qualified(team, item["target"])
    if key == "apis":
        renamed["routes"] = [qualified(team, route) for route in item.get("routes", [])]
    if key == "consumers" and item.get("subscriptions"):
        renamed["subscriptions"] = [
            dict(subscription, api=qualified(team, subscription["api"]))
            for subscription in item["subscriptions"]
        ]
    return renamed
