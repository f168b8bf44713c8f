"""Several workers share one resources file: each sees the others' writes at once."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.resources.conftest import Api, resources_config
from tests.support.proxy import RunningProxy


def test_two_workers_share_the_database(tmp_path: Path) -> None:
    text = resources_config(tmp_path / "shared.db")
    with RunningProxy(text) as first, RunningProxy(text) as second:
        failures: list[int] = []

        def create(port: int, prefix: str) -> None:
            api = Api(port)
            for index in range(40):
                response = api("POST", "/items", {"name": f"{prefix}{index}", "price": index})
                if response.status != 201:
                    failures.append(response.status)
            api.client.close()

        threads = [
            threading.Thread(target=create, args=(first.port, "a")),
            threading.Thread(target=create, args=(second.port, "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == []
        one, two = Api(first.port), Api(second.port)
        assert one("GET", "/items?count=true&limit=1").header("X-Total-Count") == "80"
        assert two("GET", "/items?count=true&limit=1").header("X-Total-Count") == "80"
        # a write through one worker makes the other's ETag stale
        tag = two("GET", "/items/1").header("ETag") or ""
        merge = "application/merge-patch+json"
        assert one("PATCH", "/items/1", {"price": 7}, content_type=merge).status == 200
        stale = two("PATCH", "/items/1", {"price": 8}, {"If-Match": tag}, content_type=merge)
        assert stale.status == 412
        one.client.close()
        two.client.close()
