"""Property: file -> apply -> dump -> apply is a fixed point, through the admin API."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings

from quiver.declarative.client import AdminClient
from quiver.declarative.render import as_yaml
from tests.declarative.conftest import TOKEN, Gateway
from tests.store.test_properties import declarations


def test_apply_dump_apply_is_a_fixed_point(shared_gateway: Gateway) -> None:
    client = AdminClient(shared_gateway.admin, TOKEN)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(document=declarations())
    def check(document: dict[str, Any]) -> None:
        client.apply(document, "property")
        dumped = yaml.safe_load(as_yaml(client.config()["document"]))  # what `quiver dump` writes
        assert client.apply(dumped or {}, "again")["revision"] is None
        assert client.apply(document, "once more")["revision"] is None
        assert client.diff(dumped or {})["equal"]

    try:
        check()
    finally:
        client.close()
