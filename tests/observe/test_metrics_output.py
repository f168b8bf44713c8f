"""The request counters: records in (as the writer thread hands them), numbers out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quiver.admin.metrics import _request_families
from quiver.config.models import MetricsSettings, Settings
from quiver.observe.metrics import BUCKETS_MS, MetricsOutput, add, metrics_output
from quiver.observe.node_metrics import MasterMetrics, read_node, worker_path, write_document
from quiver.observe.record import ExchangeRecord
from quiver.observe.writer import writer_for

BUCKETS = len(BUCKETS_MS) + 1


def record(
    route: str | None,
    status: int,
    latency_ms: float = 1.0,
    *,
    target: str | None = None,
    upstream_ms: float | None = None,
    retries: int = 0,
    cache: str | None = None,
    answered_by: str | None = None,
) -> ExchangeRecord:
    return ExchangeRecord(
        0.0,
        b"rid",
        b"127.0.0.1",
        b"GET",
        b"/secret/path?key=abc",
        status,
        route,
        target,
        "127.0.0.1:9001" if upstream_ms is not None else None,
        "alice",
        0,
        10,
        latency_ms,
        upstream_ms,
        retries,
        cache,
        answered_by,
    )


def bucket(latency_ms: float) -> list[int]:
    """A histogram's buckets holding one observation of ``latency_ms``."""
    counts = [0] * BUCKETS
    counts[next((i for i, b in enumerate(BUCKETS_MS) if latency_ms <= b), BUCKETS - 1)] = 1
    return counts


def test_counts_by_route_and_status_class_with_latency_buckets() -> None:
    output = MetricsOutput()
    output.write([record("items", 200, 0.3), record("items", 204, 1.0), record("items", 503, 7)])
    output.write([record(None, 404, 0.2), record("items", 200, 40_000)])
    routes = output.snapshot()["routes"]
    assert routes["items"]["status"] == {"2xx": 3, "5xx": 1}
    assert routes[""]["status"] == {"4xx": 1}  # no route matched
    latencies = routes["items"]["latencies"]
    assert set(latencies) == {"2xx", "5xx"}
    # bounds are "less than or equal": 1.0 ms is in the 1 ms bucket
    expected = [a + b + c for a, b, c in zip(bucket(0.3), bucket(1), bucket(40_000), strict=True)]
    assert latencies["2xx"]["buckets"] == expected
    assert latencies["2xx"]["buckets"][1] == 1 and latencies["2xx"]["buckets"][-1] == 1
    assert latencies["2xx"]["sum"] == pytest.approx(0.3 + 1.0 + 40_000)
    assert latencies["5xx"] == {"buckets": bucket(7), "sum": 7}
    assert routes[""]["latencies"] == {"4xx": {"buckets": bucket(0.2), "sum": 0.2}}
    assert output.status() == {"counted": 5}


def test_the_request_duration_is_labelled_by_route_and_status_class() -> None:
    output = MetricsOutput()
    output.write([record("items", 200, 0.3), record("items", 503, 7), record(None, 404, 0.2)])
    two = MetricsOutput()
    two.write([record("items", 201, 2), record("items", 101, 60_000)])
    routes = add(add({}, output.snapshot()), two.snapshot())["routes"]
    families = {family.name: family for family in _request_families(routes)}
    counts = {
        (sample.labels["route"], sample.labels["status_class"]): sample.value
        for sample in families["quiver_request_duration_seconds"].samples
        if sample.name == "quiver_request_duration_seconds_count"
    }
    assert counts == {("items", "1xx"): 1, ("items", "2xx"): 2, ("items", "5xx"): 1, ("", "4xx"): 1}
    requests = {
        (sample.labels["route"], sample.labels["status_class"]): sample.value
        for sample in families["quiver_requests"].samples
    }
    assert requests == counts  # the histograms' counts are the request counters
    sums = {
        (sample.labels["route"], sample.labels["status_class"]): sample.value
        for sample in families["quiver_request_duration_seconds"].samples
        if sample.name == "quiver_request_duration_seconds_sum"
    }
    assert sums["items", "2xx"] == pytest.approx(0.0023)
    assert sums["items", "1xx"] == pytest.approx(60.0)


def test_retries_rejections_cache_and_upstream_latency() -> None:
    output = MetricsOutput()
    output.write(
        [
            record("items", 200, 5, target="backend", upstream_ms=4.0, retries=2),
            record("items", 429, answered_by="rate-limit"),
            record("items", 401, answered_by="key-auth"),
            record("items", 401, answered_by="key-auth"),
            record("items", 200, cache="HIT", answered_by="proxy-cache"),  # an answer, no refusal
            record("items", 200, 3, target="backend", upstream_ms=2.0, cache="MISS"),
        ]
    )
    snapshot = output.snapshot()
    items = snapshot["routes"]["items"]
    assert items["retries"] == 2
    assert items["rejections"] == {"rate-limit": 1, "key-auth": 2}
    assert items["cache"] == {"HIT": 1, "MISS": 1}
    upstream = snapshot["targets"]["backend"]["upstream"]
    assert upstream["buckets"] == [a + b for a, b in zip(bucket(4), bucket(2), strict=True)]
    assert upstream["sum"] == pytest.approx(6.0)


def test_no_label_comes_from_the_request() -> None:
    output = MetricsOutput()
    output.write([record("items", 200, target="backend", upstream_ms=1.0)])
    text = repr(output.snapshot())
    assert "secret" not in text and "alice" not in text and "127.0.0.1" not in text


def test_a_status_above_599_from_a_node_is_counted() -> None:
    output = MetricsOutput()
    output.write([record("items", 999)])
    assert output.snapshot()["routes"]["items"]["status"] == {"9xx": 1}


def test_snapshots_add_up() -> None:
    one, two = MetricsOutput(), MetricsOutput()
    one.write([record("a", 200, 1), record("b", 500, 2, target="t", upstream_ms=1.0)])
    two.write([record("a", 200, 1), record("a", 429, answered_by="quota")])
    total = add(add({}, one.snapshot()), two.snapshot())
    assert total["routes"]["a"]["status"] == {"2xx": 2, "4xx": 1}
    assert total["routes"]["a"]["latencies"]["2xx"]["buckets"][1] == 2
    assert total["routes"]["a"]["rejections"] == {"quota": 1}
    assert total["routes"]["b"]["status"] == {"5xx": 1}
    assert total["targets"]["t"]["upstream"]["buckets"] == bucket(1.0)
    assert one.snapshot()["routes"]["a"]["status"] == {"2xx": 1}  # (added copies)


def test_requests_are_counted_only_when_asked() -> None:
    assert metrics_output(MetricsSettings()) is None
    assert isinstance(metrics_output(MetricsSettings(requests=True)), MetricsOutput)


def test_request_counters_are_an_output_of_their_own() -> None:
    """No access log needed: the counters get the records of every exchange."""
    settings = Settings.model_validate({"metrics": {"requests": True}})
    metrics = metrics_output(settings.metrics)
    writer = writer_for(None, settings.call_log, None, metrics)
    assert writer is not None
    assert writer.outputs == [metrics]


# -- the node's documents in the run directory -------------------------------------------


def counters(requests: int) -> dict[str, object]:
    return {"routes": {"a": {"status": {"2xx": requests}}}, "dropped": {"access_log": 1}}


def total_2xx(run_dir: Path) -> int:
    node = read_node(run_dir)
    return int(node.counters.get("routes", {}).get("a", {}).get("status", {}).get("2xx", 0))


def ended_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


def test_the_counters_of_an_ended_worker_are_kept_by_the_master(tmp_path: Path) -> None:
    master = MasterMetrics(tmp_path)
    master.begin(revision=3)
    live, ended = os.getpid(), ended_pid()
    write_document(
        worker_path(tmp_path, live), {"pid": live, "counters": counters(5), "targets": {}}
    )
    write_document(
        worker_path(tmp_path, ended), {"pid": ended, "counters": counters(7), "targets": {}}
    )
    node = read_node(tmp_path)
    assert total_2xx(tmp_path) == 12
    assert [worker["pid"] for worker in node.workers] == [live]  # gauges of the living only
    master.worker_ended(ended, restarted=True)
    assert not worker_path(tmp_path, ended).exists()
    node = read_node(tmp_path)
    assert total_2xx(tmp_path) == 12
    assert node.counters["dropped"] == {"access_log": 2}
    assert (node.worker_restarts, node.reloads, node.revision) == (1, 0, 3)
    master.reloaded()
    master.served(4)
    node = read_node(tmp_path)
    assert (node.reloads, node.revision) == (1, 4)
    master.end([live])
    assert list(tmp_path.iterdir()) == []


def test_a_folded_file_still_there_is_not_counted_twice(tmp_path: Path) -> None:
    """The master lists the pid as folded before it deletes the file: a reader that
    finds both counts the worker once."""
    master = MasterMetrics(tmp_path)
    master.begin(revision=None)
    ended = ended_pid()
    path = worker_path(tmp_path, ended)
    write_document(path, {"pid": ended, "counters": counters(7), "targets": {}})
    kept = path.read_text()
    master.worker_ended(ended, restarted=True)
    path.write_text(kept)  # as if read before the delete
    master.served(None)  # (a write while the file is there keeps the pid listed)
    assert total_2xx(tmp_path) == 7


def test_a_new_master_starts_from_zero(tmp_path: Path) -> None:
    ended = ended_pid()
    write_document(worker_path(tmp_path, ended), {"pid": ended, "counters": counters(7)})
    write_document(tmp_path / "metrics-master.json", {"retired": counters(9), "worker_restarts": 4})
    MasterMetrics(tmp_path).begin(revision=None)
    node = read_node(tmp_path)
    assert total_2xx(tmp_path) == 0
    assert node.worker_restarts == 0
    assert not worker_path(tmp_path, ended).exists()
