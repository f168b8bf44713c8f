"""Calls to models in the metrics: the GenAI semantic conventions' histograms, from
the records' ``ai`` member to the Prometheus text of ``GET /metrics``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from quiver.admin.metrics import NodeCollector
from quiver.observe.call_spool import _with_extras
from quiver.observe.metrics import MetricsOutput
from quiver.observe.node_metrics import worker_path, write_document
from quiver.observe.record import ExchangeRecord


def record(ai: dict[str, Any] | None, latency_ms: float = 250.0) -> ExchangeRecord:
    return ExchangeRecord(
        0.0, b"rid", b"127.0.0.1", b"POST", b"/v1/chat/completions", 200, "ai", "ai",
        None, "alice", 10, 20, latency_ms, None, 0, None, None, None, None, None, ai,
    )  # fmt: skip


AI = {
    "model": "gpt-4o-mini",
    "provider": "openai",
    "deployment": "gpt-4o-mini-2024-07-18",
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "cost": 0.000027,
    "ttft_ms": 30.0,
}


def scrape(run_dir: Path) -> dict[str, Any]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(run_dir))
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_token_usage_duration_and_ttft_follow_the_genai_conventions(tmp_path: Path) -> None:
    output = MetricsOutput()
    output.write([record(AI), record(AI), record({**AI, "ttft_ms": None}), record(None)])
    snapshot = output.snapshot()
    write_document(worker_path(tmp_path, os.getpid()), {"pid": os.getpid(), "counters": snapshot})
    families = scrape(tmp_path)
    labels = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-4o-mini",
        "gen_ai_response_model": "gpt-4o-mini-2024-07-18",
    }
    samples = families["gen_ai_client_token_usage"].samples
    by_type = {
        s.labels["gen_ai_token_type"]: s.value
        for s in samples
        if s.name == "gen_ai_client_token_usage_sum"
    }
    assert by_type == {"input": 300.0, "output": 60.0}
    counts = [s for s in samples if s.name == "gen_ai_client_token_usage_count"]
    assert all(s.value == 3 and {**s.labels, **labels} == s.labels for s in counts)
    # an observation of 100 tokens is in the bucket up to 256, not in the one up to 64
    input_buckets = {
        s.labels["le"]: s.value
        for s in samples
        if s.name == "gen_ai_client_token_usage_bucket" and s.labels["gen_ai_token_type"] == "input"
    }
    assert input_buckets["64.0"] == 0 and input_buckets["256.0"] == 3
    duration = families["gen_ai_client_operation_duration_seconds"].samples
    assert [s.value for s in duration if s.name.endswith("_count")] == [3]
    assert [s.value for s in duration if s.name.endswith("_sum")] == [0.75]
    ttft = families["gen_ai_server_time_to_first_token_seconds"].samples
    assert [s.value for s in ttft if s.name.endswith("_count")] == [2]
    cost = families["quiver_ai_cost_usd"].samples
    assert abs(cost[0].value - 3 * 0.000027) < 1e-12


def test_the_spooled_line_carries_what_the_call_used() -> None:
    line = b'{"request_id":"rid"}\n'
    extended = _with_extras(line, record({**AI, "secret": "dropped", "cost": "bad"}))
    assert extended.endswith(b"}\n")
    assert b'"ai":{"model":"gpt-4o-mini"' in extended
    assert b"secret" not in extended and b'"cost"' not in extended
    assert _with_extras(line, record(None)) == line
