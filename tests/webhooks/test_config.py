"""The ``webhooks:`` section: what it accepts, and a node serving a config file
whose declared endpoint receives the events an application publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from quiver.config.webhooks import WebhookSettings
from quiver.store import open_store
from quiver.store.webhooktables import webhook_endpoints
from quiver.webhooks import endpoints, new_secret
from tests.store_mode.helpers import admin_port
from tests.support.process import serving, write_config
from tests.webhooks.receiver import receiving

SECRET = new_secret()
ENDPOINT = {"name": "orders", "url": "https://hooks.example/in", "secret": SECRET}


@pytest.mark.parametrize(
    "section",
    [
        {},
        {"endpoints": [ENDPOINT]},
        {"endpoints": [{**ENDPOINT, "event_types": ["consumer.*"], "ordered": True}]},
        {"retry_schedule": ["5s", "1m", "1h"], "disable_after": "2d", "timeout": "5s"},
    ],
)
def test_valid_sections(section: dict[str, Any]) -> None:
    WebhookSettings.model_validate(section)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"endpoints": [{**ENDPOINT, "secret": "whsec_!!"}]}, "base64"),
        ({"endpoints": [{**ENDPOINT, "secret": "whsec_c2hvcnQ="}]}, "16 bytes"),
        ({"endpoints": [{**ENDPOINT, "url": "ftp://x"}]}, "url"),
        ({"endpoints": [{**ENDPOINT, "name": "no spaces"}]}, "name"),
        ({"endpoints": [{**ENDPOINT, "secrets": []}]}, "secrets"),
        ({"retries": 3}, "retries"),
        ({"endpoints": [{**ENDPOINT, "event_types": ["*"]}]}, "pattern"),
        ({"endpoints": [{**ENDPOINT, "event_types": ["Order.Created"]}]}, "pattern"),
        ({"endpoints": [ENDPOINT, {**ENDPOINT, "url": "https://b.example/"}]}, "two endpoints"),
        ({"timeout": 0}, "greater than 0"),
    ],
)
def test_invalid_sections(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookSettings.model_validate(section)


def test_declared_endpoints_are_written_to_the_store_and_follow_the_file(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "quiver.db"))
    try:
        first = WebhookSettings.model_validate({"endpoints": [ENDPOINT]}).endpoints
        endpoints.declare_endpoints(store.engine, first, now_ms=1)
        [made] = endpoints.list_endpoints(store.engine, 1)
        assert (made.name, made.url, made.event_types) == ("orders", ENDPOINT["url"], [])
        changed = {**ENDPOINT, "url": "https://hooks.example/v2", "event_types": ["a.*"]}
        second = WebhookSettings.model_validate({"endpoints": [changed]}).endpoints
        endpoints.declare_endpoints(store.engine, second, now_ms=2)
        [now] = endpoints.list_endpoints(store.engine, 2)
        assert (now.url, now.event_types, now.secrets) == (changed["url"], ["a.*"], 1)
    finally:
        store.close()


def test_a_node_delivers_to_the_endpoint_its_config_declares(tmp_path: Path) -> None:
    token = "qv_" + "t" * 43
    with receiving(SECRET) as hook:
        config = write_config(
            tmp_path,
            f"""
admin_listen: 127.0.0.1:0
store: {tmp_path / "quiver.db"}
webhooks:
  endpoints:
    - name: orders
      url: {hook.url}
      secret: ${{ORDERS_HOOK_SECRET}}
      event_types: [order.*]
targets:
  - name: demo
    type: demo
routes:
  - name: demo
    paths: [/]
    target: demo
""",
        )
        env: dict[str, str | None] = {"ORDERS_HOOK_SECRET": SECRET, "QUIVER_ADMIN_TOKEN": token}
        with serving(config, "--listen", "127.0.0.1:0", cwd=tmp_path, env=env) as node:
            base = f"http://127.0.0.1:{admin_port(node)}"
            headers = {"Authorization": f"Bearer {token}"}
            published = httpx.post(
                f"{base}/webhooks/events",
                json={"type": "order.shipped", "data": {"order": 42}},
                headers=headers,
            )
            assert published.status_code == 202, published.text
            [got] = hook.wait_for(1)
            assert got.msg_id == published.json()["id"]
            assert got.event["data"] == {"order": 42}
            listed = httpx.get(f"{base}/webhooks/endpoints", headers=headers).json()["data"]
            assert SECRET not in str(listed)
        assert SECRET not in node.stderr


def test_a_rotation_stands_across_restarts_until_the_file_changes(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "quiver.db"))
    hour = 3_600_000
    try:
        declared = WebhookSettings.model_validate({"endpoints": [ENDPOINT]}).endpoints
        endpoints.declare_endpoints(store.engine, declared, now_ms=0)
        rotated = endpoints.rotate_secret(store.engine, "orders", now_ms=hour, grace_ms=hour)
        again = endpoints.rotate_secret(store.engine, "orders", now_ms=3 * hour, grace_ms=hour)

        def signing(now_ms: int) -> list[str]:
            with store.engine.connect() as connection:
                stored = connection.execute(select(webhook_endpoints.c.secrets)).scalar_one()
            return endpoints.live_secrets(stored, now_ms)

        assert signing(3 * hour) == [again, rotated]
        # a restart with the same file: the rotations stand
        endpoints.declare_endpoints(store.engine, declared, now_ms=5 * hour)
        assert signing(5 * hour) == [again]
        # the file's secret changed: it signs alone, at once
        changed = {**ENDPOINT, "secret": new_secret()}
        redeclared = WebhookSettings.model_validate({"endpoints": [changed]}).endpoints
        endpoints.declare_endpoints(store.engine, redeclared, now_ms=6 * hour)
        assert signing(6 * hour) == [changed["secret"]]
    finally:
        store.close()
