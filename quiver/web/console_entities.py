"""The console's routes and targets (``/console/routes``, ``/console/targets``): the
declarations of the teams the signed-in person may see, and the targets' nodes with
their health.

Health is what the gateway's workers last wrote to the node's run directory (their
metrics documents, read as ``GET /metrics`` reads them), when the admin process
knows that directory (``app.state.run_dir``); otherwise, or for a node no worker
has checked, it is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quiver.admin.declarations import Declarations
from quiver.admin.nodes import nodes_of
from quiver.observe.node_metrics import read_node
from quiver.web.console_nav import NAV
from quiver.web.errors import PageRoute
from quiver.web.identity import ConsoleUser, SignedIn
from quiver.web.pages import render
from quiver.web.paging import Page

#: included in the console's router, under ``/console``
router = APIRouter(route_class=PageRoute, include_in_schema=False)


@dataclass(frozen=True)
class Entity:
    team: str
    document: dict[str, Any]


@dataclass(frozen=True)
class NodeHealth:
    url: str
    weight: Any
    health: str  # up, down, degraded (some workers see it down) or unknown
    workers: str  # "2/2 workers see it up", or ""


@router.get("/routes")
def routes_page(request: Request, who: ConsoleUser, page: int = 1) -> Response:
    return render(
        request,
        "console",
        "console/routes.html",
        title="Routes",
        who=who,
        nav=NAV,
        routes=Page.of(entities(request, who, "routes"), page),
    )


@router.get("/targets")
def targets_page(request: Request, who: ConsoleUser, page: int = 1) -> Response:
    shown = Page.of(entities(request, who, "targets"), page)
    views = worker_views(getattr(request.app.state, "run_dir", None))
    health = {
        (target.team, target.document["name"]): node_health(target.document, views)
        for target in shown.items
    }
    return render(
        request,
        "console",
        "console/targets.html",
        title="Targets",
        who=who,
        nav=NAV,
        targets=shown,
        health=health,
        known=views is not None,
    )


def entities(request: Request, who: SignedIn, key: str) -> list[Entity]:
    """The ``key`` entities of every team ``who`` may see, by team then name."""
    declarations: Declarations = request.app.state.declarations
    found: list[Entity] = []
    for team, _ in who.team_roles():
        document = declarations.read(team).document
        items = sorted(document.get(key) or [], key=lambda item: str(item.get("name")))
        found.extend(Entity(team, item) for item in items)
    return found


Views = dict[tuple[str, str], list[dict[str, Any]]]


def worker_views(run_dir: Path | None) -> Views | None:
    """Each node's views by the live workers, by (target, node label); None when the
    run directory is not known here."""
    if run_dir is None:
        return None
    views: Views = {}
    for worker in read_node(Path(run_dir)).workers:
        for target, nodes in (worker.get("targets") or {}).items():
            for node in nodes:
                views.setdefault((target, str(node.get("node"))), []).append(node)
    return views


def node_health(target: dict[str, Any], views: Views | None) -> list[NodeHealth]:
    """The target's nodes with what the workers see of them.  (A target's name is
    unique only in its team; workers of a node serve one team's names.)"""
    shown: list[NodeHealth] = []
    for node in nodes_of(target):
        url = str(node.get("url", ""))
        known = views or {}
        seen = known.get((target["name"], url)) or known.get((target["name"], _host(url)), [])
        if not seen:
            shown.append(NodeHealth(url, node.get("weight", 1), "unknown", ""))
            continue
        up = sum(1 for view in seen if view.get("up"))
        health = "up" if up == len(seen) else "down" if up == 0 else "degraded"
        shown.append(NodeHealth(url, node.get("weight", 1), health, f"{up}/{len(seen)} workers"))
    return shown


def _host(url: str) -> str:
    """``host:port`` of a node's URL: how the workers label a node."""
    try:
        return urlsplit(url).netloc
    except ValueError:
        return url
