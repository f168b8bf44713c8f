"""The durability run in small (bench/webhooks_flaky.sh is the full one): 100
events published through the admin API to a receiver that fails half the
deliveries at random, answers late, and stops listening for a while; the admin
process delivering them is killed with SIGKILL mid-delivery and started again on
the same store.  Every event arrives, verified by the ``standardwebhooks``
library; none is lost or dead-lettered; duplicates are what at-least-once costs."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from quiver.store import Store, open_store
from quiver.webhooks import endpoints, new_secret, queue
from tests.store.conftest import postgres_schema_url

pytestmark = pytest.mark.timeout(60)
EVENTS = 100
OUTAGE_S = 2.0
TOKEN = "qv_" + "f" * 43
_ADMIN = """
import sys
from quiver.admin import AdminSettings, run_admin
from quiver.webhooks.queue import Policy
from quiver.webhooks.sender import DeliverySettings

run_admin(AdminSettings(
    store_url=sys.argv[1],
    listen="127.0.0.1:0",
    ready_fd=int(sys.argv[2]),
    webhooks=DeliverySettings(
        policy=Policy(schedule=(0.1, 0.2, 0.4, 0.8, *(1.0,) * 20)),
        timeout_s=0.5,
        lease_s=1.5,
        poll_s=0.05,
    ),
))
"""


class Flaky:
    """A receiver answering 503 half the time (at random), after 0-50 ms, once in
    a while after the sender's timeout; ``down`` stops it listening."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.rng = random.Random(7)
        self.lock = threading.Condition()
        self.accepted: dict[str, int] = {}  # webhook-id: deliveries answered 2xx
        self.unverified = 0
        self.in_flight = 0
        self.server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    def up(self) -> None:
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                flaky.answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers["content-length"])
        body = request.rfile.read(length)
        if len(body) < length:
            return
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self.lock:
            self.in_flight += 1
            self.lock.notify_all()
            delay = 0.7 if self.rng.random() < 0.03 else self.rng.uniform(0, 0.05)
            status = 503 if self.rng.random() < 0.5 else 204
        try:
            try:
                self.webhook.verify(body, headers)
            except Exception:
                status = 400
            time.sleep(delay)  # (the receiver's slowness is the scenario, not a wait)
            with self.lock:
                if status == 400:
                    self.unverified += 1
                elif status == 204:
                    msg_id = headers["webhook-id"]
                    self.accepted[msg_id] = self.accepted.get(msg_id, 0) + 1
                self.lock.notify_all()
            try:
                request.send_response(status)
                request.send_header("content-length", "0")
                request.end_headers()
            except OSError:  # the sender gave up (timed out) or was killed
                pass
        finally:
            with self.lock:
                self.in_flight -= 1

    def wait(self, check: Callable[[], bool], timeout: float = 40) -> None:
        with self.lock:
            assert self.lock.wait_for(check, timeout), f"accepted {len(self.accepted)}"


class Admin:
    """The admin process (API and sender) on ``store_url``; ``kill`` is SIGKILL."""

    def __init__(self, store_url: str) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ADMIN, store_url, str(write)],
            env={**os.environ, "QUIVER_ADMIN_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write,),
        )
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            port = pipe.readline().strip()
        assert port.isdigit(), "the admin process did not start"
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{int(port)}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    def publish(self, n: int) -> None:
        answer = self.client.post(
            "/webhooks/events", json={"type": "test.event", "data": {"n": n}, "id": f"ev-{n}"}
        )
        assert answer.status_code == 202, answer.text

    def kill(self) -> None:
        self.client.close()
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(30) in (0, -signal.SIGTERM)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "quiver.db")
    else:
        yield from postgres_schema_url()


def test_every_event_arrives_through_failures_an_outage_and_a_kill(store_url: str) -> None:
    store = open_store(store_url)
    secret = new_secret()
    flaky = Flaky(secret)
    admin: Admin | None = None
    back = threading.Timer(OUTAGE_S, flaky.up)
    try:
        endpoints.create_endpoint(
            store.engine, "flaky", f"http://127.0.0.1:{flaky.port}/", now_ms=1, secret=secret
        )
        admin = Admin(store_url)
        for n in range(EVENTS):
            admin.publish(n)
        flaky.wait(lambda: len(flaky.accepted) >= EVENTS // 4 and flaky.in_flight > 0)
        admin.kill()  # mid-delivery: a request is in flight
        admin = Admin(store_url)  # the same store
        flaky.wait(lambda: len(flaky.accepted) >= EVENTS // 2)
        flaky.down()  # connection refused for a while
        back.start()
        wanted = {f"ev-{n}" for n in range(EVENTS)}
        flaky.wait(lambda: wanted <= flaky.accepted.keys())
        states = _eventually(lambda: _states(store), lambda found: found == {"delivered"})
        assert states == {"delivered"}  # nothing pending, nothing dead
        assert flaky.unverified == 0
        duplicates = sum(count - 1 for count in flaky.accepted.values())
        assert duplicates >= 0  # at least once: a duplicate is allowed, a loss is not
    finally:
        if admin is not None:
            admin.stop()
        back.cancel()
        if back.is_alive():
            back.join()
        flaky.down()
        store.close()


def _states(store: Store) -> set[str]:
    return {item["state"] for item in queue.deliveries(store.engine, "flaky", limit=1000)}


def _eventually(read: Callable[[], set[str]], done: Callable[[set[str]], bool]) -> set[str]:
    """What ``read`` gives once ``done`` holds, or after 20 s (the sender records a
    delivery just after the receiver answered it)."""
    deadline = time.monotonic() + 20
    pause = threading.Event()
    found = read()
    while not done(found) and time.monotonic() < deadline:
        pause.wait(0.1)
        found = read()
    return found
