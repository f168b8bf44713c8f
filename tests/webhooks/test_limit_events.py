"""Limits reached as webhook events: a node's worker refuses a request because a
quota is spent, and the admin sidecar publishes one ``quota.reached`` for the
consumer and period however many requests are refused; notes the sidecar meets
again, or that several workers wrote, publish nothing more."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from quiver.admin.limit_events import QUOTA_REACHED, LimitWatcher
from quiver.observe.limits_reached import BUDGET_REACHED, ReachedNotes
from quiver.store import Store
from quiver.webhooks import endpoints, new_secret, queue
from tests.store_mode.helpers import admin_port
from tests.support.process import serving, write_config
from tests.support.proxy import Client
from tests.support.upstream import Upstream, echo
from tests.webhooks.receiver import receiving

pytestmark = pytest.mark.timeout(60)
SECRET = new_secret()
ALICE = "alice-key-0123456789"


def test_a_spent_quota_publishes_one_quota_reached(tmp_path: Path) -> None:
    with Upstream(echo) as backend, receiving(SECRET) as hook:
        config = write_config(
            tmp_path,
            f"""
admin_listen: 127.0.0.1:0
store: {tmp_path / "quiver.db"}
run_dir: {tmp_path / "run"}
webhooks:
  endpoints:
    - name: limits
      url: {hook.url}
      secret: ${{LIMITS_HOOK_SECRET}}
      event_types: [quota.*]
consumers:
  - name: alice
    credentials: {{key-auth: [{{key: {ALICE}}}]}}
targets:
  - name: backend
    url: {backend.url}
routes:
  - name: api
    paths: ["/"]
    target: backend
    plugins:
      key-auth: {{}}
      quota: {{limit: 2, period: 1m}}
""",
        )
        env: dict[str, str | None] = {
            "LIMITS_HOOK_SECRET": SECRET,
            "QUIVER_ADMIN_TOKEN": "qv_" + "t" * 43,
        }
        with serving(config, "--listen", "127.0.0.1:0", cwd=tmp_path, env=env) as node:
            admin_port(node)  # the sidecar delivering webhooks is up
            with Client(node.port) as client:
                answers = [client.request("GET", "/", headers={"apikey": ALICE}) for _ in range(4)]
            assert [answer.status for answer in answers] == [200, 200, 429, 429]
            [got] = hook.wait_for(1)
        assert hook.refused == 0
        event = got.event
        assert event["type"] == QUOTA_REACHED
        data = event["data"]
        assert {key: data[key] for key in ("scope", "key", "consumer", "limit", "period")} == {
            "scope": "route:api",
            "key": "consumer=alice",
            "consumer": "alice",
            "limit": 2,
            "period": "1m",
        }
        resets = datetime.fromisoformat(data["resets_at"])
        reached = datetime.fromisoformat(event["timestamp"])
        # when it resets is when the refusal's Retry-After said to come back
        retry_after = int(answers[2].header("Retry-After") or 0)
        assert abs((resets - reached).total_seconds() - retry_after) <= 2
        assert got.msg_id.startswith("lim_")
        assert len(hook.received) == 1  # two refusals, one event
        assert list((tmp_path / "run" / "limits").glob("lim_*")) == []


def test_a_limit_noted_again_or_by_another_worker_is_published_once(
    store: Store, tmp_path: Path
) -> None:
    endpoints.create_endpoint(store.engine, "h", "http://127.0.0.1:9/", now_ms=1)
    watcher = LimitWatcher(tmp_path, store.engine)
    now = [1000.0]
    first, second = (ReachedNotes(tmp_path, lambda: now[0]) for _ in range(2))  # two workers
    key, data = b"ai|b0|tokens|day@UTC|consumer|alice", {"consumer": "alice", "limit": 10}
    first.note(BUDGET_REACHED, key, 86400.0, 86400.0, data)
    first.note(BUDGET_REACHED, key, 86400.0, 86400.0, data)
    second.note(BUDGET_REACHED, key, 86400.0, 86400.0, data)
    assert [path.name.startswith("lim_") for path in (tmp_path / "limits").iterdir()] == [True]
    assert watcher.check() == [BUDGET_REACHED]
    # later in the same period, a third worker: its note is removed, not published
    ReachedNotes(tmp_path, lambda: now[0]).note(BUDGET_REACHED, key, 86400.0, 86400.0, data)
    assert watcher.check() == []
    # the next period is another event
    now[0] = 90000.0
    first.note(BUDGET_REACHED, key, 2 * 86400.0, 2 * 86400.0, data)
    assert watcher.check() == [BUDGET_REACHED]
    assert [item["event_type"] for item in queue.deliveries(store.engine, "h")] == [
        BUDGET_REACHED
    ] * 2
    assert list((tmp_path / "limits").iterdir()) == []
