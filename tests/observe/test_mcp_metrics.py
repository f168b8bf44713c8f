"""MCP messages in the metrics: from the records' ``mcp`` member to the Prometheus
text of ``GET /metrics``, with labels held to a bound whatever clients send."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from quiver.admin.metrics import NodeCollector
from quiver.observe import mcp_metrics
from quiver.observe.metrics import MetricsOutput
from quiver.observe.node_metrics import worker_path, write_document
from quiver.observe.record import ExchangeRecord


def record(
    mcp: dict[str, Any] | None,
    consumer: str | None = "alice",
    route: str | None = "notes",
    latency_ms: float = 9.0,
) -> ExchangeRecord:
    return ExchangeRecord(
        0.0, b"rid", b"127.0.0.1", b"POST", b"/mcp", 200, route, route,
        None, consumer, 10, 20, latency_ms, None, 0, None, None, None, None, None, None, mcp,
    )  # fmt: skip


def call(tool: str, outcome: str = "ok", ms: float | None = 3.0) -> dict[str, Any]:
    note: dict[str, Any] = {"method": "tools/call", "tool": tool, "outcome": outcome}
    if ms is not None:
        note["ms"] = ms
    return note


def scrape(run_dir: Path, *snapshots: dict[str, Any]) -> dict[str, Any]:
    for index, snapshot in enumerate(snapshots):
        pid = os.getpid() + index
        write_document(worker_path(run_dir, pid), {"pid": pid, "counters": snapshot})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(run_dir))
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


LABELS = {
    "quiver_mcp_messages": ("route", "method", "outcome"),
    "quiver_mcp_tool_calls": ("route", "tool", "consumer", "outcome"),
    "quiver_mcp_tool_call_duration_seconds": ("route", "tool"),
}


def values(family: Any, suffix: str = "") -> dict[tuple[str, ...], float]:
    """The samples named ``family.name + suffix`` by their labels, in LABELS' order."""
    return {
        tuple(sample.labels[name] for name in LABELS[family.name]): sample.value
        for sample in family.samples
        if sample.name == family.name + suffix
    }


def test_messages_tool_calls_and_durations_are_exposed(tmp_path: Path) -> None:
    output = MetricsOutput()
    output.write(
        [
            record({"method": "initialize", "outcome": "ok", "ms": 0.2}),
            record({"method": "notifications/initialized"}),
            record({"method": "tools/list", "outcome": "ok"}),
            record(call("getNote", ms=3.0)),
            record(call("getNote", ms=40.0), consumer="bob"),
            record(call("getNote", outcome="error", ms=None), latency_ms=700.0),
            record(call("addNote", outcome="failed", ms=30000.5)),
            record({"outcome": "refused"}),
            record(None),
        ]
    )
    other = MetricsOutput()  # a second worker: the node adds them up
    other.write([record(call("getNote", ms=2.0))])
    families = scrape(tmp_path, output.snapshot(), other.snapshot())

    assert values(families["quiver_mcp_messages"], "_total") == {
        ("notes", "initialize", "ok"): 1,
        ("notes", "notifications/initialized", "none"): 1,
        ("notes", "tools/list", "ok"): 1,
        ("notes", "tools/call", "ok"): 3,
        ("notes", "tools/call", "error"): 1,
        ("notes", "tools/call", "failed"): 1,
        ("notes", "_other", "refused"): 1,
    }
    assert values(families["quiver_mcp_tool_calls"], "_total") == {
        ("notes", "addNote", "alice", "failed"): 1,
        ("notes", "getNote", "alice", "error"): 1,
        ("notes", "getNote", "alice", "ok"): 2,
        ("notes", "getNote", "bob", "ok"): 1,
    }
    duration = families["quiver_mcp_tool_call_duration_seconds"]
    assert values(duration, "_count") == {("notes", "getNote"): 4, ("notes", "addNote"): 1}
    # the endpoint's own time, or the exchange's when it is missing
    assert values(duration, "_sum")[("notes", "getNote")] == (3.0 + 40.0 + 700.0 + 2.0) / 1000
    buckets = {
        sample.labels["le"]: sample.value
        for sample in duration.samples
        if sample.name.endswith("_bucket") and sample.labels["tool"] == "getNote"
    }
    # the buckets of the other latency histograms (0.5 ms ... 30 s, then +Inf)
    assert list(buckets)[:1] == ["0.0005"] and list(buckets)[-2:] == ["30.0", "+Inf"]
    assert (buckets["0.0025"], buckets["0.005"], buckets["0.05"], buckets["1.0"]) == (1, 2, 3, 4)
    addnote = [s for s in duration.samples if s.labels["tool"] == "addNote"]
    assert [s.value for s in addnote if s.labels.get("le") == "30.0"] == [0]


def test_made_up_tool_names_never_become_labels(tmp_path: Path) -> None:
    output = MetricsOutput()
    output.write(
        [record(call(f"made-up-{n}", outcome="refused")) for n in range(500)]
        + [record(call("getNote")), record(call("getNote", outcome="refused"))]
        + [record(call("bad\tname")), record({"method": "tools/call", "outcome": "refused"})]
    )
    tool_calls = values(scrape(tmp_path, output.snapshot())["quiver_mcp_tool_calls"], "_total")
    assert tool_calls == {
        ("notes", "_unknown", "alice", "refused"): 501,
        ("notes", "getNote", "alice", "ok"): 1,
        ("notes", "getNote", "alice", "refused"): 1,
        ("notes", "_unknown", "alice", "ok"): 1,
    }


def test_tools_per_route_and_consumers_are_capped(tmp_path: Path) -> None:
    output = MetricsOutput()
    tools = mcp_metrics.MAX_TOOLS
    consumers = mcp_metrics.MAX_CONSUMERS
    output.write(
        [record(call(f"tool{n}"), consumer=None) for n in range(tools + 5)]
        + [record(call("tool0"), consumer=f"c{n}") for n in range(consumers + 5)]
        + [record(call("tool0"), route="other", consumer=None)]
    )
    tool_calls = values(scrape(tmp_path, output.snapshot())["quiver_mcp_tool_calls"], "_total")
    names = {labels[1] for labels in tool_calls if labels[0] == "notes"}
    assert len(names) == tools + 1 and "_other" in names
    assert tool_calls[("notes", "_other", "", "ok")] == 5
    assert len({labels[2] for labels in tool_calls} - {"", "_other"}) == consumers
    assert tool_calls[("notes", "tool0", "_other", "ok")] == 5
    assert tool_calls[("other", "tool0", "", "ok")] == 1  # (each route its own names)


def test_no_mcp_traffic_no_mcp_series(tmp_path: Path) -> None:
    output = MetricsOutput()
    output.write([record(None)])
    families = scrape(tmp_path, output.snapshot())
    assert families["quiver_mcp_messages"].samples == []
    assert families["quiver_mcp_tool_call_duration_seconds"].samples == []
