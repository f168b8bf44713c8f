"""The call log through real processes: a store-mode node with two workers spools
every exchange, its admin sidecar ingests them, and the analytics API tells exactly
the traffic that was sent, nothing lost and nothing twice."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.store_mode.helpers import TOKEN_LINE, admin_port, start_node
from tests.support.nodes import wait_until
from tests.support.process import QuiverProcess, serving, write_config
from tests.support.proxy import Client
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(240)

TOTAL = 10_000
CONSUMERS = ("alice", "bob", "carol")
CONNECTIONS = 24  # spread by the kernel over both workers
PIPELINED = 25  # requests written at once on a connection


def backend(conn: Conn) -> None:
    """502 for /open/bad..., 200 for the rest."""
    while (request := conn.read_request()) is not None:
        conn.respond(502 if request.path.startswith("/open/bad") else 200, b"ok")


def traffic_declaration(backend_url: str) -> dict[str, Any]:
    keyed: dict[str, Any] = {"key-auth": {}}
    return {
        "targets": [{"name": "backend", "url": backend_url}, {"name": "demo", "type": "demo"}],
        "consumers": [
            {"name": name, "credentials": {"key-auth": [{"key": f"key-of-{name}"}]}}
            for name in CONSUMERS
        ],
        "routes": [
            {"name": "items", "paths": ["/items"], "target": "backend", "plugins": keyed},
            {
                "name": "limited",
                "paths": ["/limited"],
                "target": "backend",
                "plugins": {**keyed, "rate-limit": {"limit": 40, "window": 3600, "by": "consumer"}},
            },
            {"name": "open", "paths": ["/open"], "target": "backend"},
            {"name": "demo", "paths": ["/demo"], "target": "demo"},
        ],
    }


@dataclass(frozen=True)
class Planned:
    path: str
    key: str | None  # the apikey sent
    route: str | None  # the route it matches (None: 404)
    consumer: str | None  # the consumer key-auth identifies
    status: int | None  # what it must get (None: 200 or 429, the rate limit decides)


def plan(count: int, seed: int) -> list[Planned]:
    """A known mix: every route, every consumer, answers 200, 401, 404, 429 and 502."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        consumer = rng.choice(CONSUMERS)
        key = f"key-of-{consumer}"
        kind = rng.randrange(8)
        if kind in (0, 1):
            out.append(Planned(f"/items/{i}", key, "items", consumer, 200))
        elif kind == 2:
            out.append(Planned(f"/items/{i}", None, "items", None, 401))
        elif kind == 3:
            out.append(Planned(f"/items/{i}", "key-nobody", "items", None, 401))
        elif kind == 4:
            out.append(Planned(f"/limited/{i}", key, "limited", consumer, None))
        elif kind == 5:
            bad = rng.random() < 0.5
            path = f"/open/bad/{i}" if bad else f"/open/{i}"
            out.append(Planned(path, None, "open", None, 502 if bad else 200))
        elif kind == 6:
            out.append(Planned(f"/demo/{i}", None, "demo", None, 200))
        else:
            out.append(Planned(f"/nowhere/{i}", None, None, None, 404))
    return out


@dataclass(frozen=True)
class Sent:
    route: str | None
    consumer: str | None
    status: int


def send(port: int, planned: list[Planned]) -> dict[str, Sent]:
    """Send every request (pipelined, round robin over the connections); what each
    got, by its request id."""
    answered: dict[str, Sent] = {}
    clients = [Client(port, timeout=30) for _ in range(CONNECTIONS)]
    try:
        chunks = [planned[i : i + PIPELINED] for i in range(0, len(planned), PIPELINED)]
        for number, chunk in enumerate(chunks):
            client = clients[number % CONNECTIONS]
            client.send(b"".join(_request(item) for item in chunk))
            for item in chunk:
                response = client.read_response()
                if item.status is None:
                    assert response.status in (200, 429), response.body
                else:
                    assert response.status == item.status, (item, response.body)
                request_id = response.header("X-Request-ID")
                assert request_id is not None and request_id not in answered
                answered[request_id] = Sent(item.route, item.consumer, response.status)
    finally:
        for client in clients:
            client.close()
    return answered


def _request(item: Planned) -> bytes:
    key = f"apikey: {item.key}\r\n" if item.key is not None else ""
    return f"GET {item.path} HTTP/1.1\r\nHost: test.local\r\n{key}\r\n".encode()


class Admin:
    """The node's admin API, with its first token."""

    def __init__(self, node: QuiverProcess) -> None:
        [match] = node.wait_for(TOKEN_LINE)
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port(node)}",
            headers={"Authorization": f"Bearer {match.group(1)}"},
            timeout=30,
        )
        now = datetime.now(UTC)
        self.window = {
            "from": (now - timedelta(minutes=5)).isoformat(),
            "to": (now + timedelta(minutes=30)).isoformat(),
        }

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def apply(self, document: dict[str, Any]) -> int:
        answer = self.client.post("/config/apply", json={"document": document})
        assert answer.status_code == 200, answer.text
        revision: int = answer.json()["revision"]["number"]
        return revision

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params={**self.window, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def metrics(self, name: str) -> Counter[tuple[str, str]]:
        """The samples ``name`` of ``/metrics`` by (route, status class), the zeros left
        out (parsed with prometheus_client's own parser)."""
        answer = self.client.get("/metrics")
        assert answer.status_code == 200, answer.text
        found: Counter[tuple[str, str]] = Counter()
        for family in text_string_to_metric_families(answer.text):
            for sample in family.samples:
                if sample.name == name and sample.value:
                    key = (sample.labels["route"], sample.labels.get("status_class", ""))
                    found[key] += int(sample.value)
        return found

    def counted(self) -> int:
        """Calls in the rollups so far (asked at most ten times a second)."""
        time.sleep(0.1)
        return sum(self.top("routes").values())

    def top(self, dimension: str) -> dict[str | None, int]:
        found = self.get("/analytics/top", dimension=dimension, n=1000)["data"]
        return {item["name"]: item["requests"] for item in found}

    def calls(self) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.get("/calls", limit=1000, **({"cursor": cursor} if cursor else {}))
            yield from page["data"]
            cursor = page["next"]
            if cursor is None:
                return


@pytest.fixture
def node(tmp_path: Path) -> Iterator[QuiverProcess]:
    home = tmp_path / "node"
    home.mkdir()
    settings = home / "quiver.yaml"  # (the request counters too: /metrics tells the mix)
    settings.write_text("store: quiver.db\nmetrics: {requests: true}\n")
    with start_node(home, "--workers", "2", "--config", str(settings)) as running:
        running.wait_listening()
        yield running


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream(backend) as server:
        yield server


def serve_traffic(node: QuiverProcess, admin: Admin, upstream: Upstream) -> None:
    revision = admin.apply(traffic_declaration(upstream.url))
    node.wait_for(rf"config reloaded from store revision {revision}\b", count=2)


def test_the_analytics_api_tells_exactly_the_traffic_sent(
    node: QuiverProcess, upstream: Upstream, tmp_path: Path
) -> None:
    with Admin(node) as admin:
        check_traffic(node, admin, upstream, tmp_path / "node" / "run")


def check_traffic(node: QuiverProcess, admin: Admin, upstream: Upstream, run_dir: Path) -> None:
    serve_traffic(node, admin, upstream)
    sent = send(node.port, plan(TOTAL, seed=7))
    statuses = Counter(s.status for s in sent.values())
    assert set(statuses) == {200, 401, 404, 429, 502}

    wait_until(lambda: admin.counted() == TOTAL, "every call ingested", timeout=60)
    assert admin.top("routes") == Counter(s.route for s in sent.values())
    consumers = Counter(s.consumer for s in sent.values())
    assert admin.top("consumers") == consumers

    by_route_and_class = Counter((s.route or "", f"{s.status // 100}xx") for s in sent.values())
    wait_until(
        lambda: admin.metrics("quiver_requests_total") == by_route_and_class,
        "every request in /metrics",
    )
    assert sum(admin.metrics("quiver_request_duration_seconds_count").values()) == TOTAL

    series = admin.get("/analytics/requests", by="status_class")
    assert series["source"] == "calls"
    classes: Counter[str] = Counter()
    for point in series["data"]:
        classes[point["key"]] += point["requests"]
    assert classes == Counter(f"{s.status // 100}xx" for s in sent.values())

    listed = list(admin.calls())
    assert len(listed) == TOTAL
    assert {call["request_id"]: call for call in listed}.keys() == sent.keys()
    for call in listed:
        expected = sent[call["request_id"]]
        assert (call["route"], call["consumer"], call["status"]) == (
            expected.route,
            expected.consumer,
            expected.status,
        )

    # both workers spooled, nothing was dropped, and their counts add up
    def spooled() -> list[dict[str, Any]]:
        documents = [json.loads(path.read_text()) for path in run_dir.glob("worker-*.json")]
        return [document["call_log"] for document in documents]

    wait_until(lambda: sum(log["written"] for log in spooled()) == TOTAL, "status of both")
    logs = spooled()
    assert len(logs) == 2 and all(log["written"] > 0 and log["dropped"] == 0 for log in logs)
    assert node.stop() == 0


def test_the_call_table_stays_within_max_rows_under_load(
    tmp_path: Path, upstream: Upstream
) -> None:
    home = tmp_path / "node"
    home.mkdir()
    settings = home / "quiver.yaml"
    settings.write_text("store: quiver.db\ncall_log: {max_rows: 2000}\n")
    with start_node(home, "--workers", "2", "--config", str(settings)) as node:
        node.wait_listening()
        with Admin(node) as admin:
            serve_traffic(node, admin, upstream)
            most, rows = load_and_count(node, admin, home / "quiver.db")
            # the trimmed range is counted from the rollups, which keep every call
            series = admin.get("/analytics/requests")
            assert series["source"] == "rollups"
            assert sum(point["requests"] for point in series["data"]) == TOTAL
        assert node.stop() == 0
    assert 0 < most <= 2000 + 5000  # the bound, and at most one batch (5,000 rows) over it
    assert rows == 2000


def load_and_count(node: QuiverProcess, admin: Admin, path: Path) -> tuple[int, int]:
    """Send the traffic while counting the call rows: the most seen while the calls
    are sent and ingested, and the count once every call is in the rollups and the
    bound is enforced."""
    database = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def rows() -> int:
        count: int = database.execute("SELECT count(*) FROM calls").fetchone()[0]
        return count

    most = 0
    try:
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(send, node.port, plan(TOTAL, seed=11))
            while not sending.done():
                most = max(most, rows())
                wait([sending], timeout=0.05)
            sending.result()  # (its failures are the test's)

        def ingested() -> bool:  # (and the rows counted meanwhile: ingest goes on)
            nonlocal most
            most = max(most, rows())
            return admin.counted() == TOTAL

        wait_until(ingested, "every call in the rollups", timeout=60)
        wait_until(lambda: rows() <= 2000, "the oldest calls deleted")
        return most, rows()
    finally:
        database.close()


def answer_with_a_cookie(conn: Conn) -> None:
    """Echoes the request body twice, with a session cookie."""
    while (request := conn.read_request()) is not None:
        headers = [("Set-Cookie", "session=s3cret"), ("X-Trace", "t-1")]
        conn.respond(201, request.body * 2, headers)


def test_a_route_that_keeps_bodies_shows_them_capped_and_redacted(tmp_path: Path) -> None:
    body = b'{"item": "' + b"x" * 100 + b'"}'
    with (
        Upstream(answer_with_a_cookie) as echoing,
        start_node(tmp_path / "node") as node,
        Admin(node) as admin,
    ):
        node.wait_listening()
        declaration = {
            "targets": [{"name": "backend", "url": echoing.url}],
            "routes": [
                {
                    "name": "kept",
                    "paths": ["/kept"],
                    "target": "backend",
                    "call_log": {"bodies": True, "max_body": 64, "redact_headers": ["X-Secret"]},
                },
                {"name": "plain", "paths": ["/plain"], "target": "backend"},
            ],
        }
        revision = admin.apply(declaration)
        node.wait_for(rf"config reloaded from store revision {revision}\b")
        sent = {"Authorization": "Bearer abc", "X-Secret": "hush", "X-Seen": "yes"}
        with Client(node.port) as client:
            kept = client.request("POST", "/kept/1", headers=sent, body=body)
            plain = client.request("POST", "/plain/1", headers=sent, body=body)
        assert kept.status == plain.status == 201
        kept_id, plain_id = kept.header("X-Request-ID"), plain.header("X-Request-ID")

        def shown(request_id: str | None) -> Any:
            time.sleep(0.1)  # (asked at most ten times a second)
            answer = admin.client.get(f"/calls/{request_id}")
            return answer.json() if answer.status_code == 200 else None

        wait_until(lambda: shown(kept_id) and shown(plain_id), "both calls ingested")
        capture = shown(kept_id)["capture"]
        assert shown(plain_id)["capture"] is None
        assert node.stop() == 0

    request, response = capture["request"], capture["response"]
    fields = dict((name.lower(), value) for name, value in request["headers"])
    assert fields["authorization"] == fields["x-secret"] == "[redacted]"
    assert fields["x-seen"] == "yes"
    assert request["body"] == body[:64].decode() and request["size"] == len(body)
    answered = dict((name.lower(), value) for name, value in response["headers"])
    assert answered["set-cookie"] == "[redacted]" and answered["x-trace"] == "t-1"
    assert response["body"] == (body * 2)[:64].decode() and response["size"] == 2 * len(body)


def test_file_mode_keeps_the_call_log_where_the_admin_api_runs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    config = write_config(
        tmp_path,
        f"""\
        listen: 127.0.0.1:0
        admin_listen: 127.0.0.1:0
        run_dir: {run_dir}
        workers: 2
        targets: [{{name: demo, type: demo}}]
        routes: [{{name: all, paths: ["/"], target: demo}}]
        """,
    )
    env: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}
    with serving(config, cwd=tmp_path, env=env) as node, Admin(node) as admin:
        with Client(node.port) as client:
            ids = {client.request("GET", f"/hello/{i}").header("X-Request-ID") for i in range(5)}
        wait_until(lambda: admin.counted() == 5, "the five calls ingested")
        assert {call["request_id"] for call in admin.calls()} == ids
        assert node.stop() == 0
    assert not list((run_dir / "calls").iterdir())  # every spool ingested and removed
