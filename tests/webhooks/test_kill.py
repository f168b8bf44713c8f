"""A sender killed (SIGKILL) in the middle of a delivery loses no event: the
admin process delivering webhooks is killed while the receiver holds a request,
started again, and every event arrives (at least once, the same webhook-id)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from quiver.store import Store, open_store
from quiver.webhooks import endpoints, queue
from tests.store.conftest import postgres_schema_url
from tests.webhooks.receiver import receiving

_ADMIN = """
import sys
from quiver.admin import AdminSettings, run_admin
from quiver.webhooks.sender import DeliverySettings

run_admin(AdminSettings(
    store_url=sys.argv[1],
    listen="127.0.0.1:0",
    ready_fd=int(sys.argv[2]),
    webhooks=DeliverySettings(lease_s=1, poll_s=0.05, timeout_s=60),
))
"""


def _start(store_url: str) -> tuple[subprocess.Popen[bytes], int]:
    """The admin process, and the read end of the pipe it writes its port to once up."""
    read, write = os.pipe()
    env = {**os.environ, "QUIVER_ADMIN_TOKEN": "qv_" + "k" * 43}
    process = subprocess.Popen(
        [sys.executable, "-c", _ADMIN, store_url, str(write)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write,),
    )
    os.close(write)
    return process, read


def _wait_ready(read: int) -> None:
    with os.fdopen(read, "rb") as pipe:
        assert pipe.readline().strip().isdigit()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "quiver.db")
    else:
        yield from postgres_schema_url()


def test_a_sender_killed_mid_delivery_loses_no_event(store_url: str) -> None:
    store = open_store(store_url)
    held = threading.Event()
    try:
        with receiving() as hook:
            hook.secrets.append(
                endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=queue_now())
            )
            sent = {
                queue.publish(store.engine, "a.b", {"n": n}, now_ms=queue_now()) for n in range(5)
            }
            hook.hold = held
            first, first_ready = _start(store_url)
            os.close(first_ready)
            try:
                hook.wait_for(1)  # the first delivery is in flight, held by the receiver
            finally:
                first.kill()  # SIGKILL: no chance to record anything
                first.wait(30)
            hook.hold = None
            held.set()
            second, second_ready = _start(store_url)
            try:
                _wait_ready(second_ready)
                with hook.arrived:
                    assert hook.arrived.wait_for(lambda: sent <= hook.ids(), 30), hook.ids()
                assert _eventually(lambda: _states(store) == dict.fromkeys(sent, "delivered"))
            finally:
                second.send_signal(signal.SIGTERM)  # the sender finishes its pass first
                assert second.wait(30) in (0, -signal.SIGTERM)
            assert hook.refused == 0
            # every event arrived; the one held when the sender died arrived twice
            assert hook.ids() == sent
            assert len(hook.received) >= len(sent) + 1
    finally:
        store.close()


def _states(store: Store) -> dict[str, str]:
    return {item["msg_id"]: item["state"] for item in queue.deliveries(store.engine, "h")}


def _eventually(check: Callable[[], bool], timeout: float = 30) -> bool:
    """Whether ``check`` holds within ``timeout`` (the sender records a delivery
    just after the receiver answered it)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not check():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.05)
    return True


def queue_now() -> int:
    return int(time.time() * 1000)
