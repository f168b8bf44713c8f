"""The names a usual request sets on its exchange are the ones the first exchange
of the process set (``USUAL_ATTRIBUTES``), so that CPython keeps them in the table
its instances share rather than in a dict per exchange (see quiver.proxy.exchange).
A request that sets a name outside that list still works: it only costs more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quiver.proxy.exchange import USUAL_ATTRIBUTES, Exchange
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(30)

KEY = "attribute-names-key-0123456789"
CONSUMERS = [{"name": "alice", "credentials": {"key-auth": [{"key": KEY}]}}]


def names_set(config_extra: dict[str, Any], plugins: dict[str, Any], path: str) -> list[set[str]]:
    """The attribute names of each exchange, as its log step found them, for four
    requests on one connection (the first opens the node's connection)."""
    seen: list[set[str]] = []
    original = Exchange.run_log

    def run_log(exchange: Exchange) -> None:
        seen.append(set(vars(exchange)))
        original(exchange)

    route = {"name": "all", "paths": ["/"], "target": "node", "plugins": plugins}
    with Upstream(echo) as node:
        config = make_config({"node": node.url}, [route], consumers=CONSUMERS, **config_extra)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Exchange, "run_log", run_log)
            with RunningProxy(config) as proxy, Client(proxy.port) as client:
                for _ in range(4):
                    assert client.request("GET", path, {"apikey": KEY}).status == 200
                proxy.call(proxy.server.state.log_ended)  # type: ignore[union-attr]
    assert len(seen) == 4
    return seen


def test_there_is_room_for_every_usual_name() -> None:
    # CPython's shared table holds 30 names; the first instance made can add 29
    assert len(USUAL_ATTRIBUTES) <= 29
    assert len(set(USUAL_ATTRIBUTES)) == len(USUAL_ATTRIBUTES)


@pytest.mark.parametrize("path", ["/items", "/items?page=2"])
def test_a_traced_recorded_request_with_key_auth_and_rate_limit_sets_usual_names(
    tmp_path: Path, path: str
) -> None:
    extra = {
        "access_log": {"to": str(tmp_path / "access.log")},
        "tracing": {"sample": 1.0, "otlp": {"endpoint": "http://127.0.0.1:9/v1/traces"}},
    }
    plugins = {"key-auth": {}, "rate-limit": {"limit": 1000, "window": 60}}
    for names in names_set(extra, plugins, path)[1:]:  # (the first one connected)
        assert names <= set(USUAL_ATTRIBUTES), names - set(USUAL_ATTRIBUTES)
        assert {"trace", "consumer", "response_fields", "began"} <= names


def test_a_plain_request_sets_usual_names(tmp_path: Path) -> None:
    extra = {"access_log": {"to": str(tmp_path / "access.log")}}
    for names in names_set(extra, {}, "/items")[1:]:
        assert names <= set(USUAL_ATTRIBUTES), names - set(USUAL_ATTRIBUTES)
