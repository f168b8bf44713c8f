#!/usr/bin/env python3
"""Webhook durability: 1,000 events through a flaky receiver, the sender killed twice.

``quiver serve`` runs with its admin API and one webhook endpoint declared in its
config file, pointing at a receiver in this process that answers half of the
deliveries with a 5xx (at random), waits 0-500 ms before answering (and a few
times longer than the delivery timeout), and once stops listening for
``OUTAGE`` seconds (connection refused) in the middle of the run.  The events
are published through ``POST /webhooks/events`` with an admin token, each with
an id of its own, so a publisher that lost an answer publishes again safely.
The admin process, which runs the sender, is killed with SIGKILL ``KILLS`` times
while a delivery is in flight, the first time halfway through publishing; the
master starts it again on the same store.

The receiver verifies every delivery with the ``standardwebhooks`` library and
de-duplicates by ``webhook-id``.  At the end every event must have been accepted
(a 2xx answered) at least once, none may be lost or dead-lettered, and no
delivery may fail verification; the run reports how long it took, the duplicates
the receiver saw, and the attempts the store logged.

Settings (environment): EVENTS KILLS OUTAGE SEED STORES WEBHOOKS_POSTGRES_URL QUIVER.
Runs against SQLite and PostgreSQL (``STORES=sqlite,postgresql``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
from rig import BenchError, Processes, free_port, say, tail
from standardwebhooks import Webhook

EVENTS = int(os.environ.get("EVENTS", "1000"))
KILLS = int(os.environ.get("KILLS", "2"))
OUTAGE = float(os.environ.get("OUTAGE", "30"))
STORES = os.environ.get("STORES", "sqlite,postgresql").split(",")
SEED = int(os.environ.get("SEED", "1"))  # the receiver's draws
POSTGRES_URL = os.environ.get("WEBHOOKS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
QUIVER = os.environ.get("QUIVER", str(Path(sys.executable).with_name("quiver")))
TOKEN = "qv_" + "b" * 43
TIMEOUT = 2.0  # the delivery timeout the config sets (seconds)
#: short early retries so that a 30 s outage is ridden out in a minute, and enough
#: of them that a 50% failure rate, an outage and two kills hardly ever exhaust them
SCHEDULE = ["1s", "2s", "4s", "8s", "15s", *["15s"] * 20]
SLOW_SHARE = 0.03  # answers given only after the delivery timeout
FAIL_SHARE = 0.5
#: the master logs this when its admin sidecar is up (pid, port)
READY = re.compile(r"admin API \(pid (\d+)\) ready at http://127\.0\.0\.1:(\d+)")


@dataclass
class Tally:
    """What the receiver saw, per ``webhook-id``."""

    received: dict[str, int] = field(default_factory=dict)  # verified deliveries
    accepted: dict[str, int] = field(default_factory=dict)  # of those, answered 2xx
    unverified: int = 0
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FlakyReceiver:
    """A webhook endpoint that fails half the time, is slow, and can go away."""

    def __init__(self, secret: str, seed: int) -> None:
        self.webhook = Webhook(secret)
        self.tally = Tally()
        self.port = free_port()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def listen(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop_listening(self) -> None:
        """Close the listening socket: new connections are refused (requests being
        answered finish)."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def _draw(self) -> tuple[float, int]:
        """How long to wait before answering, and the status to answer."""
        with self._rng_lock:
            slow = self._rng.random() < SLOW_SHARE
            delay = TIMEOUT + self._rng.uniform(0.2, 1.0) if slow else self._rng.uniform(0, 0.5)
            failed = self._rng.random() < FAIL_SHARE
            return delay, self._rng.choice((500, 502, 503)) if failed else 204

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        tally = self.tally
        length = int(request.headers["content-length"])
        body = request.rfile.read(length)
        if len(body) < length:  # the sender died mid-request
            return
        headers = {name.lower(): value for name, value in request.headers.items()}
        with tally.lock:
            tally.in_flight += 1
        try:
            try:
                self.webhook.verify(body, headers)
                verified = True
            except Exception:
                verified = False
            delay, status = self._draw()
            time.sleep(delay)  # (the receiver's own slowness is what is simulated)
            if not verified:
                status = 400
            msg_id = headers.get("webhook-id", "")
            with tally.lock:
                if not verified:
                    tally.unverified += 1
                else:
                    tally.received[msg_id] = tally.received.get(msg_id, 0) + 1
                    if status < 300:
                        tally.accepted[msg_id] = tally.accepted.get(msg_id, 0) + 1
            try:
                request.send_response(status)
                request.send_header("content-length", "0")
                request.end_headers()
            except OSError:  # the sender gave up waiting (a timeout) or was killed
                pass
        finally:
            with tally.lock:
                tally.in_flight -= 1

    def unique_accepted(self) -> int:
        with self.tally.lock:
            return len(self.tally.accepted)

    def busy(self) -> bool:
        with self.tally.lock:
            return self.tally.in_flight > 0


class Node:
    """``quiver serve`` with the admin API; the admin sidecar's pid from its log."""

    def __init__(self, procs: Processes, work: Path, store_url: str, receiver: FlakyReceiver):
        self.procs = procs
        self.log = work / "quiver.log"
        self.admin_port = free_port()
        config = work / "quiver.yaml"
        config.write_text(
            "\n".join(
                [
                    f"listen: 127.0.0.1:{free_port()}",
                    f"admin_listen: 127.0.0.1:{self.admin_port}",
                    f"store: {json.dumps(store_url)}",
                    "workers: 1",
                    "targets: [{name: demo, type: demo}]",
                    "routes: [{name: demo, paths: [/], target: demo}]",
                    "webhooks:",
                    "  endpoints:",
                    "    - name: flaky",
                    f"      url: {receiver.url}",
                    "      secret: ${FLAKY_HOOK_SECRET}",
                    "      event_types: [bench.*]",
                    f"  retry_schedule: [{', '.join(SCHEDULE)}]",
                    f"  timeout: {TIMEOUT:g}s",
                    "",
                ]
            )
        )
        self.argv = [QUIVER, "serve", "-c", str(config), "--run-dir", str(work / "run")]
        self.base = f"http://127.0.0.1:{self.admin_port}"
        self.client = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )

    def start(self, secret: str) -> None:
        env = {**os.environ, "QUIVER_ADMIN_TOKEN": TOKEN, "FLAKY_HOOK_SECRET": secret}
        env.pop("QUIVER_CONFIG", None)
        self.proc = self.procs.spawn(self.argv, cpu=1, out=self.log, env=env)

    def sidecar(self, not_pid: int | None = None, timeout: float = 60) -> int:
        """The pid of the admin sidecar once it reported ready (another than ``not_pid``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"quiver exited with {self.proc.returncode}:\n{tail(self.log)}")
            found = [int(m.group(1)) for m in READY.finditer(self.log.read_text(errors="replace"))]
            if found and found[-1] != not_pid:
                return found[-1]
            time.sleep(0.1)
        raise BenchError(f"the admin API did not come up:\n{tail(self.log)}")

    def publish(self, n: int) -> int:
        """Publish event ``n`` until the admin API took it; how many tries it took."""
        tries = 0
        while True:
            tries += 1
            try:
                answer = self.client.post(
                    "/webhooks/events",
                    json={"type": "bench.event", "data": {"n": n}, "id": f"bench-{n:05d}"},
                )
            except httpx.TransportError as exc:  # the admin process is down (killed): again
                if tries == 1:
                    say(f"publishing event {n}: {type(exc).__name__}, trying again")
                time.sleep(0.2)
                continue
            if answer.status_code in (202, 409):  # 409: it was taken before an answer was lost
                return tries
            if answer.status_code >= 500:
                time.sleep(0.2)
                continue
            raise BenchError(f"publishing event {n}: {answer.status_code} {answer.text}")

    def messages(self, state: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 1000}
        if state is not None:
            params["state"] = state
        while True:
            try:
                answer = self.client.get("/webhooks/endpoints/flaky/messages", params=params)
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            answer.raise_for_status()
            found: list[dict[str, Any]] = answer.json()["data"]
            return found


@dataclass
class Result:
    store: str
    events: int
    seconds: float  # from the first publish to the last event delivered
    publish_seconds: float
    publish_retries: int
    kills: list[float]  # seconds into the run
    outage: list[float]  # start and end, seconds into the run
    restart_seconds: list[float]  # from each kill to the admin API ready again
    received: int  # verified deliveries seen by the receiver
    accepted: int  # of them, answered 2xx
    duplicates: int  # accepted beyond the first per webhook-id
    unverified: int
    lost: int
    dead: int
    attempts_logged: int  # attempts the store recorded (those cut by a kill are not)
    most_attempts: int


def run(procs: Processes, work: Path, store: str, store_url: str) -> Result:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver = FlakyReceiver(secret, seed=SEED)
    receiver.listen()
    node = Node(procs, work, store_url, receiver)
    node.start(secret)
    pid = node.sidecar()
    say(f"{store}: quiver up, admin sidecar pid {pid}; publishing {EVENTS} events")
    started = time.monotonic()
    kills: list[float] = []
    restarts: list[float] = []
    outage: list[float] = []
    tries, sent, took = [0], [0], [0.0]
    published = threading.Event()

    def publish_all() -> None:
        for n in range(EVENTS):
            tries[0] += node.publish(n)
            sent[0] = n + 1
        took[0] = time.monotonic() - started
        published.set()

    publisher = threading.Thread(target=publish_all, daemon=True)
    publisher.start()

    # the first kill halfway through publishing, the others as events arrive: with
    # KILLS=2, once 500 are published and once 333 have arrived
    def arrived(share: float) -> Callable[[], bool]:
        return lambda: receiver.unique_accepted() >= EVENTS * share

    kill_at = [lambda: sent[0] >= EVENTS // 2]
    kill_at += [arrived(k / (KILLS + 1)) for k in range(1, KILLS)]
    kill_at = kill_at[:KILLS]
    outage_at = EVENTS * (KILLS + 1) // (KILLS + 2) if KILLS else EVENTS // 2
    outage_done = False
    publish_seconds = 0.0
    while True:
        if published.is_set() and not publish_seconds:
            publish_seconds = took[0]
            say(f"{store}: all {EVENTS} published in {publish_seconds:.1f} s")
        done = receiver.unique_accepted()
        if kill_at and kill_at[0]():
            waited = time.monotonic()
            while not receiver.busy() and time.monotonic() - waited < 10:
                time.sleep(0.005)  # kill it with a delivery in flight
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            kills.append(killed - started)
            kill_at.pop(0)
            say(f"{store}: SIGKILL to the admin sidecar (pid {pid}) at {kills[-1]:.1f} s")
            pid = node.sidecar(not_pid=pid)
            restarts.append(time.monotonic() - killed)
            say(f"{store}: admin sidecar back (pid {pid}) after {restarts[-1]:.1f} s")
        if not outage_done and done >= outage_at:
            outage_done = True
            receiver.stop_listening()
            outage.append(time.monotonic() - started)
            say(f"{store}: receiver stops listening for {OUTAGE:g} s at {outage[0]:.1f} s")
            threading.Timer(OUTAGE, _back, (receiver, outage, started, store)).start()
        finished = published.is_set() and done >= EVENTS and not kill_at and len(outage) == 2
        if finished and not node.messages("pending"):
            break
        if time.monotonic() - started > 1800:
            raise BenchError(f"{store}: not delivered after 30 minutes ({done} of {EVENTS})")
        time.sleep(0.2)
    seconds = time.monotonic() - started
    messages = node.messages()
    dead = node.messages("dead")
    tally = receiver.tally
    with tally.lock:
        wanted = {f"bench-{n:05d}" for n in range(EVENTS)}
        result = Result(
            store=store,
            events=EVENTS,
            seconds=round(seconds, 1),
            publish_seconds=round(publish_seconds, 1),
            publish_retries=tries[0] - EVENTS,
            kills=[round(t, 1) for t in kills],
            outage=[round(t, 1) for t in outage],
            restart_seconds=[round(t, 2) for t in restarts],
            received=sum(tally.received.values()),
            accepted=sum(tally.accepted.values()),
            duplicates=sum(count - 1 for count in tally.accepted.values()),
            unverified=tally.unverified,
            lost=len(wanted - tally.accepted.keys()),
            dead=len(dead),
            attempts_logged=sum(item["attempts"] for item in messages),
            most_attempts=max((item["attempts"] for item in messages), default=0),
        )
    node.client.close()
    procs.stop(node.proc)
    receiver.stop_listening()
    return result


def _back(receiver: FlakyReceiver, outage: list[float], started: float, store: str) -> None:
    receiver.listen()
    outage.append(time.monotonic() - started)
    say(f"{store}: receiver listening again at {outage[-1]:.1f} s")


def _postgres_schema() -> tuple[str, str]:
    schema = f"quiver_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    return schema, f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


def report(results: list[Result], where: Path) -> int:
    say("")
    say(
        "| store | events | time | publish retries | kills | accepted | duplicates "
        "| attempts logged | most attempts | lost | dead | unverified |"
    )
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = 0
    for r in results:
        say(
            f"| {r.store} | {r.events} | {r.seconds:.0f} s | {r.publish_retries} "
            f"| {len(r.kills)} | {r.accepted} | {r.duplicates} | {r.attempts_logged} "
            f"| {r.most_attempts} | {r.lost} | {r.dead} | {r.unverified} |"
        )
        if r.lost or r.dead or r.unverified or len(r.kills) != KILLS:
            failed += 1
            say(f"!! {r.store}: lost {r.lost}, dead {r.dead}, unverified {r.unverified}")
    where.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = where / f"webhooks-flaky-{stamp}.json"
    out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    say(f"\nrecord: {out}")
    return 3 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    procs = Processes(args.workdir / "pids")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    try:
        for store in STORES:
            work = args.workdir / store
            work.mkdir()
            if store == "sqlite":
                results.append(run(procs, work, store, str(work / "quiver.db")))
                continue
            schema, url = _postgres_schema()
            try:
                results.append(run(procs, work, store, url))
            finally:
                with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
                    connection.execute(f"DROP SCHEMA {schema} CASCADE")
    except BenchError as exc:
        print(f"webhooks_flaky bench: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
    return report(results, args.results)


if __name__ == "__main__":
    sys.exit(main())
