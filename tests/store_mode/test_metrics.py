"""``GET /metrics`` of a store-mode node with two workers, through real processes:
the counts summed over the workers are exactly what the clients got, survive a
worker killed outright, and the gauges tell a node that health checks took out.

The request counters are kept off the access log's records, so the node writes one.
"""

from __future__ import annotations

import os
import signal
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.store_mode.helpers import TOKEN_LINE, admin_port, start_node
from tests.support.nodes import wait_until
from tests.support.process import QuiverProcess, process_alive, serving, write_config
from tests.support.proxy import Client
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(180)

REQUESTS = 2000
KEY = "alice-key"
RATE_LIMIT = 50


def closed_port() -> int:
    """A port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def declaration(backend: str, gone: str) -> dict[str, Any]:
    return {
        "targets": [
            {"name": "backend", "url": backend},
            {
                "name": "gone",
                "url": gone,
                "health_check": {
                    "active": {"interval": 0.1, "timeout": 0.5, "unhealthy_threshold": 1}
                },
                "circuit_breaker": {"failure_rate": 0.5, "min_requests": 2, "open_for": 600},
            },
        ],
        "consumers": [{"name": "alice", "credentials": {"key-auth": [{"key": KEY}]}}],
        "routes": [
            {"name": "open", "paths": ["/open"], "target": "backend"},
            {
                "name": "keyed",
                "paths": ["/keyed"],
                "target": "backend",
                "plugins": {"key-auth": {}},
            },
            {
                "name": "limited",
                "paths": ["/limited"],
                "target": "backend",
                "plugins": {"rate-limit": {"limit": RATE_LIMIT, "window": 3600, "by": "ip"}},
            },
            {
                "name": "cached",
                "paths": ["/cached"],
                "target": "backend",
                "plugins": {"proxy-cache": {"default_ttl": 3600}},
            },
            {"name": "down", "paths": ["/down"], "target": "gone"},
        ],
    }


#: (path, request headers, route) in turn; /nowhere matches no route
MIX: list[tuple[str, dict[str, str], str]] = [
    ("/open/a", {}, "open"),
    ("/keyed/a", {}, "keyed"),
    ("/keyed/a", {"apikey": KEY}, "keyed"),
    ("/limited/a", {}, "limited"),
    ("/cached/a", {}, "cached"),
    ("/nowhere", {}, ""),
    ("/open/b", {}, "open"),
    ("/down/a", {}, "down"),
]


class Scrape:
    """One answer of ``GET /metrics``, parsed."""

    def __init__(self, text: str) -> None:
        self.samples: list[Sample] = [
            sample for family in text_string_to_metric_families(text) for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples ``name`` whose labels include ``labels``."""
        return sum(
            sample.value
            for sample in self.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(sample.labels[key] for key in keys): sample.value
            for sample in self.samples
            if sample.name == name and sample.value
        }


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[QuiverProcess, str, dict[str, str]]]:
    bootstrap = tmp_path / "quiver.yaml"
    bootstrap.write_text(
        f"store: quiver.db\naccess_log: {{to: {tmp_path / 'access.log'}}}\n"
        "metrics: {requests: true}\n"
    )
    with start_node(tmp_path, "--config", str(bootstrap), "--workers", "2") as process:
        process.wait_listening()
        [match] = process.wait_for(TOKEN_LINE)
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        yield process, f"http://127.0.0.1:{admin_port(process)}", headers
        assert process.stop() == 0


def scrape(admin: str, headers: dict[str, str]) -> Scrape:
    answer = httpx.get(f"{admin}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(answer.text)


def send_mix(port: int) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Send REQUESTS requests of MIX, a fresh connection each (so both workers get
    some); what the clients got: (route, status class) and (route, cache status)."""
    statuses: Counter[tuple[str, str]] = Counter()
    caches: Counter[tuple[str, str]] = Counter()
    for i in range(REQUESTS):
        path, headers, route = MIX[i % len(MIX)]
        with Client(port) as client:
            response = client.request("GET", path, headers={**headers, "Connection": "close"})
        statuses[route, f"{response.status // 100}xx"] += 1
        statuses[route, str(response.status)] += 1
        cache = response.header("X-Cache-Status")
        if cache:
            caches[route, cache] += 1
    return statuses, caches


def worker_pids(run_dir: Path) -> list[int]:
    pids = [int(path.stem.removeprefix("worker-")) for path in run_dir.glob("worker-*.json")]
    return [pid for pid in pids if process_alive(pid)]


def test_metrics_add_up_over_the_workers_and_survive_a_killed_worker(
    node: tuple[QuiverProcess, str, dict[str, str]], tmp_path: Path
) -> None:
    process, admin, headers = node
    with Upstream() as backend:
        gone_port = closed_port()
        body = {"document": declaration(backend.url, f"http://127.0.0.1:{gone_port}")}
        answer = httpx.post(f"{admin}/config/apply", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        process.wait_for(r"config reloaded from store revision 2\b", count=2)
        wait_until(
            lambda: (
                scrape(admin, headers).value("quiver_node_up", target="gone") == 0.0
                and scrape(admin, headers).value("quiver_workers") == 2
            ),
            "both workers see the node of 'gone' down",
        )

        statuses, caches = send_mix(process.port)

        def counted() -> Scrape:
            return scrape(admin, headers)

        wait_until(
            lambda: counted().value("quiver_requests_total") == REQUESTS,
            f"{REQUESTS} requests counted",
            timeout=20,
        )
        before = counted()

    expected = {key: count for key, count in statuses.items() if key[1].endswith("xx")}
    assert before.by("quiver_requests_total", "route", "status_class") == expected
    assert {status for (_, status) in expected} >= {"2xx", "4xx", "5xx"}
    assert before.value("quiver_request_duration_seconds_count") == REQUESTS
    assert before.by("quiver_request_duration_seconds_count", "route", "status_class") == expected
    for route in ("open", "keyed", "limited", "cached", "down", ""):
        sent = sum(count for (name, cls), count in expected.items() if name == route)
        assert before.value("quiver_request_duration_seconds_count", route=route) == sent
        assert (
            before.value("quiver_request_duration_seconds_bucket", route=route, le="+Inf") == sent
        )
    assert before.by("quiver_rejections_total", "route", "plugin") == {
        ("keyed", "key-auth"): statuses["keyed", "401"],
        ("limited", "rate-limit"): statuses["limited", "429"],
    }
    assert statuses["limited", "429"] == REQUESTS // len(MIX) - RATE_LIMIT
    assert before.by("quiver_cache_total", "route", "status") == dict(caches)
    assert caches["cached", "HIT"] > 0 and caches["cached", "MISS"] > 0
    # every request to backend that was let through went to its node
    upstream = sum(count for (name, cls), count in expected.items() if cls == "2xx")
    upstream -= caches["cached", "HIT"]
    assert before.value("quiver_upstream_duration_seconds_count", target="backend") == upstream
    assert before.value("quiver_upstream_duration_seconds_sum", target="backend") > 0
    assert before.value("quiver_node_up", target="backend") == 1.0
    assert before.value("quiver_node_up", target="gone") == 0.0
    gone = f"127.0.0.1:{gone_port}"
    # each worker's breaker is in one state; requests failing on the node opened one
    assert before.value("quiver_breaker_state", target="gone", node=gone) == 2
    assert before.value("quiver_breaker_state", target="gone", state="open") >= 1
    breakers = {s.labels["target"] for s in before.samples if s.name == "quiver_breaker_state"}
    assert breakers == {"gone"}  # (the other target has no breaker)
    assert before.value("quiver_pool_connections", target="backend", state="idle") >= 1
    assert before.value("quiver_log_dropped_total", output="access_log") == 0
    assert before.value("quiver_config_revision") == 2
    assert before.value("quiver_reloads_total") == 1
    assert before.value("quiver_worker_restarts_total") == 0
    for sample in before.samples:  # no path, client or consumer anywhere
        assert not {"path", "consumer", "client_ip"} & sample.labels.keys()
        assert "alice" not in sample.labels.values()

    run_dir = tmp_path / "run"
    victim = worker_pids(run_dir)[0]
    os.kill(victim, signal.SIGKILL)
    seen: list[float] = []

    def replaced() -> bool:
        now = counted()
        seen.append(now.value("quiver_requests_total"))
        return (
            now.value("quiver_worker_restarts_total") == 1
            and now.value("quiver_workers") == 2
            and victim not in worker_pids(run_dir)
        )

    wait_until(replaced, "the killed worker is replaced and counted as a restart", timeout=30)
    assert set(seen) == {REQUESTS}  # never backwards while the worker was replaced
    after = counted()
    assert after.by("quiver_requests_total", "route", "status_class") == expected
    assert after.value("quiver_request_duration_seconds_count") == REQUESTS
    assert after.by("quiver_request_duration_seconds_count", "route", "status_class") == expected
    assert after.by("quiver_rejections_total", "route", "plugin") == before.by(
        "quiver_rejections_total", "route", "plugin"
    )


def test_metrics_need_a_token_unless_public(tmp_path: Path) -> None:
    with start_node(tmp_path / "closed") as process:
        [match] = process.wait_for(TOKEN_LINE)
        admin = f"http://127.0.0.1:{admin_port(process)}"
        refused = httpx.get(f"{admin}/metrics")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        good = httpx.get(f"{admin}/metrics", headers={"Authorization": f"Bearer {match.group(1)}"})
        assert good.status_code == 200
        scraped = Scrape(good.text)
        assert scraped.value("quiver_workers") == 1
        assert scraped.value("quiver_config_revision") == 1
        # without metrics.requests: the node's gauges, no request counters
        assert not [s for s in scraped.samples if s.name.startswith("quiver_requests")]
        openmetrics = "application/openmetrics-text; version=1.0.0"
        asked = httpx.get(
            f"{admin}/metrics",
            headers={"Authorization": f"Bearer {match.group(1)}", "Accept": openmetrics},
        )
        assert asked.headers["content-type"].startswith(openmetrics)
        assert asked.text.endswith("# EOF\n")
        assert process.stop() == 0

    home = tmp_path / "open"
    home.mkdir()
    (home / "quiver.yaml").write_text("store: quiver.db\nmetrics: {public: true}\n")
    with start_node(home, "--config", str(home / "quiver.yaml")) as process:
        admin = f"http://127.0.0.1:{admin_port(process)}"
        assert httpx.get(f"{admin}/metrics").status_code == 200
        assert httpx.get(f"{admin}/routes").status_code == 401  # only /metrics is open
        assert process.stop() == 0


def test_file_mode_serves_the_metrics_of_its_workers(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""\
        listen: 127.0.0.1:0
        workers: 2
        run_dir: {tmp_path / "run"}
        access_log: {{to: {tmp_path / "access.log"}, sample: 0.01}}
        metrics: {{requests: true, public: true}}
        targets: [{{name: demo, type: demo}}]
        routes: [{{name: all, paths: ["/"], target: demo}}]
        """,
    )
    env: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}
    with serving(config, "--admin-listen", "127.0.0.1:0", cwd=tmp_path, env=env) as process:
        admin = f"http://127.0.0.1:{admin_port(process)}"
        for _ in range(50):
            with Client(process.port) as client:
                assert client.request("GET", "/", headers={"Connection": "close"}).status == 200

        def scraped() -> Scrape:
            return Scrape(httpx.get(f"{admin}/metrics").text)

        wait_until(lambda: scraped().value("quiver_requests_total") == 50, "50 requests counted")
        # the log writes a sample of the lines; the counters count every exchange
        assert scraped().by("quiver_requests_total", "route", "status_class") == {
            ("all", "2xx"): 50
        }
        assert scraped().value("quiver_workers") == 2
        assert not [s for s in scraped().samples if s.name == "quiver_config_revision"]
        assert process.stop() == 0
