"""Synthetic call records with a known mix, written as spool files."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from quiver.calls import CallLog, Ingester
from quiver.calls.records import parse

ROUTES = ("orders", "users", "shop.cart")
CONSUMERS = ("alice", "bob", None, "shop.carol")
STATUSES = (200, 200, 200, 201, 404, 500, 503)


def seen_by(item: dict[str, Any], team: str) -> bool:
    """Whether ``team`` sees a call of ``records``: to one of its routes, or made by one
    of its consumers (a name without ``team.`` is the default team's)."""
    named = (item["route"], item["consumer"])
    return team in {name.partition(".")[0] if "." in name else "default" for name in named if name}


def records(count: int, start_ms: int, span_ms: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        at = start_ms + rng.randrange(span_ms)
        route = rng.choice(ROUTES)
        out.append(
            {
                "request_id": f"req-{seed}-{index:07d}",
                "time": datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds"),
                "route": route,
                "target": "shop.backend" if route.startswith("shop.") else "backend",
                "node": f"127.0.0.1:{9000 + index % 2}",
                "consumer": rng.choice(CONSUMERS),
                "method": rng.choice(("GET", "POST")),
                "path": f"/{route}/{index}",
                "status": rng.choice(STATUSES),
                "bytes_in": rng.randrange(0, 500),
                "bytes_out": rng.randrange(0, 5000),
                "latency_ms": round(rng.lognormvariate(2.5, 1.0), 3),
                "upstream_ms": 1.5,
                "gateway_ms": 0.25,
                "client_ip": "127.0.0.1",
                "user_agent": "synthetic/1",
                "retries": 0,
                "cache": None,
                "answered_by": None,
            }
        )
    return out


def write_spools(directory: Path, items: list[dict[str, Any]], per_file: int, pid: int = 1) -> None:
    """Finished spools (``.done``) of ``per_file`` records each."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, len(items), per_file), 1):
        lines = "".join(json.dumps(item) + "\n" for item in items[start : start + per_file])
        (directory / f"{pid}-{number}.jsonl.done").write_text(lines)


def fill(engine: Engine, rows: int, span_ms: int, step: int = 20_000) -> None:
    """``rows`` calls over the last ``span_ms``, written in batches of ``step``."""
    ingester = Ingester(engine, Path("/nonexistent"), CallLog(max_rows=rows))
    now = int(time.time() * 1000)
    for start in range(0, rows, step):
        chunk = records(min(step, rows - start), now - span_ms + 1000, span_ms - 2000, seed=start)
        ingester.insert([parse(json.dumps(item).encode()) for item in chunk])


#: the models of calls with spend: provider, input and output price (USD per 1M)
MODELS = {"gpt-4o-mini": ("openai", 0.15, 0.6), "claude-haiku": ("anthropic", 1.0, 5.0)}
#: the team of each consumer of ``records``
TEAMS = {"alice": "data", "bob": "web", "shop.carol": None, None: None}


def with_spend(items: list[dict[str, Any]], seed: int = 3) -> list[dict[str, Any]]:
    """Every other call went to a model, with a known usage and cost."""
    rng = random.Random(seed)
    for index, item in enumerate(items):
        if index % 2:
            continue
        model = rng.choice(sorted(MODELS))
        provider, price_in, price_out = MODELS[model]
        prompt, completion = rng.randrange(1, 2000), rng.randrange(0, 800)
        item["ai"] = {
            "model": model,
            "provider": provider,
            "deployment": f"{model}-2025",
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": (prompt * price_in + completion * price_out) / 1e6,
            "ttft_ms": 12.5,
            **({"team": TEAMS[item["consumer"]]} if TEAMS[item["consumer"]] else {}),
        }
    return items
