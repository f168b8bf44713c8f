"""``GET /metrics`` by token scope: a team's token reads its team's series only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quiver.admin import create_app
from quiver.observe.metrics import MetricsOutput
from quiver.observe.node_metrics import worker_path, write_document
from quiver.observe.record import ExchangeRecord
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.admin.server import serving
from tests.support.catalog import built_in


def _record(route: str | None, target: str | None, status: int = 200) -> ExchangeRecord:
    node = "127.0.0.1:9001" if target is not None else None
    return ExchangeRecord(
        0.0, b"rid", b"127.0.0.1", b"GET", b"/", status, route, target, node, None,
        0, 10, 2.0, 1.0 if target is not None else None,
    )  # fmt: skip


@pytest.fixture
def metrics_url(store: Store, tmp_path: Path) -> Iterator[str]:
    counters = MetricsOutput()
    counters.write(
        [
            _record("orders", "backend"),
            _record("shop.cart", "shop.backend"),
            _record("shop.cart", "shop.backend", 503),
            _record(None, None, 404),
        ]
    )
    worker = {
        "pid": os.getpid(),
        "counters": {**counters.snapshot(), "dropped": {"access_log": 3}},
        "websockets": {"orders": 1, "shop.cart": 2},
        "targets": {
            name: [{"node": "10.0.0.1:80", "up": True, "breaker": None, "in_flight": 0,
                    "open": 1, "idle": 1}]
            for name in ("backend", "shop.backend")
        },
    }  # fmt: skip
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_document(worker_path(run_dir, os.getpid()), worker)
    create_team(store, "shop")
    with serving(create_app(None, store, built_in(), run_dir=run_dir)) as url:
        yield url


def _scrape(url: str, store: Store, team: str | None) -> dict[str, set[tuple[str, ...]]]:
    """The label sets of each family's samples, as a token of ``team`` reads them."""
    _, token = create_token(store, f"reader-{team or 'all'}", "viewer", team)
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return {
        family.name: {tuple(sorted(sample.labels.values())) for sample in family.samples}
        for family in text_string_to_metric_families(response.text)
    }


def _named(families: dict[str, set[tuple[str, ...]]]) -> set[str]:
    """Every route or target name some series is labelled with."""
    names = {"orders", "shop.cart", "backend", "shop.backend", ""}
    return {value for samples in families.values() for labels in samples for value in labels} & (
        names
    )


def test_a_team_token_sees_only_its_teams_routes_and_targets(
    metrics_url: str, store: Store
) -> None:
    families = _scrape(metrics_url, store, "shop")
    assert _named(families) == {"shop.cart", "shop.backend"}
    assert ("2xx", "shop.cart") in families["quiver_requests"]
    assert ("5xx", "shop.cart") in families["quiver_requests"]
    durations = families["quiver_request_duration_seconds"]
    assert {labels for labels in durations if len(labels) == 2} == {  # _count and _sum
        ("2xx", "shop.cart"),
        ("5xx", "shop.cart"),
    }
    assert families["quiver_websocket_connections"] == {("shop.cart",)}
    for node_wide in ("quiver_log_dropped", "quiver_workers", "quiver_reloads"):
        assert node_wide not in families


def test_the_default_teams_token_sees_the_unqualified_names(metrics_url: str, store: Store) -> None:
    families = _scrape(metrics_url, store, "default")
    assert _named(families) == {"orders", "backend"}  # not "": no route matched


def test_an_unscoped_token_sees_the_whole_node(metrics_url: str, store: Store) -> None:
    families = _scrape(metrics_url, store, None)
    assert _named(families) == {"orders", "shop.cart", "backend", "shop.backend", ""}
    assert families["quiver_log_dropped"] == {("access_log",)}
    assert "quiver_workers" in families
