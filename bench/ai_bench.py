#!/usr/bin/env python3
"""AI gateway benchmark: Quiver's AI routes against LiteLLM's proxy, in one run.

Run it through ``bench/ai.sh``, which installs the tools and owns the scratch
directory; see ``bench/README.md`` for what every number means.

Layout on a 2-core machine::

    core 0: the fake OpenAI backend (nginx, 1 worker, fixed answers) + wrk / the
            one-connection client (bench/ai_client.py)
    core 1: the gateway under test: Quiver (1 worker) or LiteLLM's proxy (1 worker)

The backend answers ``POST /v1/chat/completions`` with a fixed ``chat.completion``
(usage included) and ``POST /stream/v1/chat/completions`` with a fixed stream of 20
``chat.completion.chunk`` events, a usage chunk and ``data: [DONE]``. nginx does not
read request bodies, so the streamed variant is another path: each gateway has a
second model, ``gpt-bench-stream``, whose provider base URL ends in ``/stream/v1``.

Two measurements, the gateways alternated within each round:

1. **Throughput**: ``wrk -t1 -cCONNECTIONS`` POSTs a non-streamed chat request with
   ``Authorization: Bearer <key>``; the headline is *completions per gateway
   CPU-second* and the ratio Quiver / LiteLLM (goal: at least 100).
2. **Latency at one connection**: requests one after another on one keep-alive
   connection, to nginx directly and through each gateway, streamed and not; the p50
   time to the end of the response through a gateway minus the p50 direct is what
   the gateway adds (goal for Quiver's 20-chunk stream: at most 1 ms).

Standard library only; servers, CPU meters and wrk come from ``rig``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ai_client
import driver
import rig
from ai_backend import COMPLETION, CONTENT, STREAM, STREAM_CHUNKS, USAGE, backend_conf
from rig import (
    WRK_LUA,
    BenchError,
    CoreMeter,
    CpuMeter,
    Processes,
    Server,
    Throughput,
    free_port,
    percentile,
    run_wrk,
    say,
    start_nginx,
    write_config,
)

PROG = "ai"
GATEWAYS = ("quiver", "litellm")
BENCH_DIR = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- settings


def _env_int(name: str, default: int) -> int:
    return driver.env_int(PROG, name, default)


@dataclass(frozen=True)
class Settings:
    gateways: tuple[str, ...]  # some of GATEWAYS, in table order
    quiver: tuple[str, ...]
    litellm_venv: Path
    litellm_spec: str  # what pip installs when the venv has no LiteLLM yet
    duration: int
    rounds: int
    connections: int
    warmup: int
    stream_seconds: float
    stream_max: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        wanted = os.environ.get("GATEWAYS", "").split() or list(GATEWAYS)
        wrong = [w for w in wanted if w not in GATEWAYS]
        if wrong:
            sys.exit(f"ai bench: GATEWAYS takes some of {' '.join(GATEWAYS)}, got {wrong!r}")
        venv = os.environ.get("LITELLM_VENV") or Path.home() / ".cache/quiver-bench/litellm-venv"
        s = cls(
            gateways=tuple(g for g in GATEWAYS if g in wanted),
            quiver=driver.quiver_command(),
            litellm_venv=Path(venv),
            litellm_spec=os.environ.get("LITELLM_SPEC", "litellm[proxy]"),
            duration=_env_int("DURATION", 10),
            rounds=_env_int("ROUNDS", 3),
            connections=_env_int("CONNECTIONS", 64),
            warmup=_env_int("WARMUP", 3),
            stream_seconds=driver.env_float(PROG, "STREAM_SECONDS", 5.0),
            stream_max=_env_int("STREAM_MAX", 5000),
            load_cpu=_env_int("LOAD_CPU", 0),
            proxy_cpu=_env_int("PROXY_CPU", 1),
            start_timeout=driver.env_float(PROG, "START_TIMEOUT", 120.0),
        )
        if s.duration < 1 or s.rounds < 1 or s.stream_seconds <= 0:
            sys.exit("ai bench: DURATION, ROUNDS and STREAM_SECONDS must be positive")
        return s


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """Something the client POSTs chat requests to: nginx directly, or a gateway."""

    label: str  # "direct", "quiver", "litellm"
    server: Server
    key: str  # the bearer key it takes
    chat_path: str
    stream_path: str
    chat_model: str
    stream_model: str

    def path(self, stream: bool) -> str:
        return self.stream_path if stream else self.chat_path

    def model(self, stream: bool) -> str:
        return self.stream_model if stream else self.chat_model


@dataclass(frozen=True)
class Keys:
    """Random per run; never written anywhere but the scratch directory."""

    upstream: str = field(default_factory=lambda: "sk-upstream-" + secrets.token_hex(12))
    quiver: str = field(default_factory=lambda: secrets.token_hex(16))
    litellm: str = field(default_factory=lambda: "sk-" + secrets.token_hex(16))


def quiver_config(port: int, backend: int, keys: Keys) -> dict[str, Any]:
    base = f"http://127.0.0.1:{backend}"
    providers = [
        {"name": name, "type": "openai", "base_url": base + prefix, "api_key": keys.upstream}
        for name, prefix in (("fake", "/v1"), ("fake-stream", "/stream/v1"))
    ]
    return {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "ai": {
            "providers": providers,
            "models": [
                {"name": "gpt-bench", "deployments": [{"provider": "fake", "model": "gpt-bench"}]},
                {
                    "name": "gpt-bench-stream",
                    "deployments": [{"provider": "fake-stream", "model": "gpt-bench"}],
                },
            ],
        },
        "consumers": [{"name": "bench", "credentials": {"key-auth": [{"key": keys.quiver}]}}],
        "routes": [
            {"name": "ai", "paths": ["/v1"], "ai": {}, "plugins": {"key-auth": {}}},
        ],
    }


def litellm_config(backend: int, keys: Keys) -> dict[str, Any]:
    base = f"http://127.0.0.1:{backend}"
    return {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {
                    "model": "openai/gpt-bench",
                    "api_base": base + prefix,
                    "api_key": keys.upstream,
                },
            }
            for name, prefix in (("gpt-bench", "/v1"), ("gpt-bench-stream", "/stream/v1"))
        ],
        "general_settings": {"master_key": keys.litellm},
    }


def litellm_python(s: Settings) -> Path:
    """The LiteLLM venv's interpreter; the venv is made and LiteLLM installed from PyPI
    the first time (kept between runs, never Quiver's venv)."""
    python = s.litellm_venv / "bin" / "python"
    if not (s.litellm_venv / "bin" / "litellm").exists():
        say(f"installing {s.litellm_spec} into {s.litellm_venv} (a few minutes)")
        pip = [str(python), "-m", "pip", "install", "--quiet", s.litellm_spec]
        for argv in ([sys.executable, "-m", "venv", str(s.litellm_venv)], pip):
            if subprocess.run(argv).returncode:
                raise BenchError(f"could not install LiteLLM: {' '.join(argv)} failed")
    return python


def litellm_version(python: Path) -> str:
    run = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return run.stdout.strip() or "unknown"


# Environment variables LiteLLM reads that must not leak in from the caller's shell: a
# DATABASE_URL switches on its database (spend logs, virtual keys), proxies would
# route the calls to the fake backend elsewhere.
LITELLM_DROP = (
    "DATABASE_URL",
    "STORE_MODEL_IN_DB",
    "REDIS_HOST",
    "REDIS_URL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def start_litellm(procs: Processes, s: Settings, base: Path, backend: int, keys: Keys) -> Server:
    python = litellm_python(s)
    conf = base / "litellm.yaml"
    conf.write_text(json.dumps(litellm_config(backend, keys), indent=2) + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in LITELLM_DROP}
    # The price map ships with the package; without LITELLM_LOCAL_MODEL_COST_MAP
    # LiteLLM fetches it at start-up. LITELLM_LOG=WARNING is its documented switch for
    # quiet logs: uvicorn then writes no access line per request (Quiver writes none
    # unless configured to), warnings and errors still reach the log file.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="WARNING", PYTHONUNBUFFERED="1")
    argv = [
        str(python.parent / "litellm"),
        "--config",
        str(conf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    log = base / "litellm.log"
    proc = procs.spawn(argv, cpu=s.proxy_cpu, out=log, env=env)
    rig.wait_for_port(port, proc, log, s.start_timeout)
    return Server("litellm", "http", port, proc, log)


# --------------------------------------------------------------------------- checks


def _post(target: Target, stream: bool, key: str | None) -> ai_client.Response:
    conn = ai_client.Connection(target.server.port)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    try:
        return conn.exchange(
            target.path(stream), headers, ai_client.request_body(target.model(stream), stream)
        )
    except OSError as exc:
        raise BenchError(
            f"POST {target.path(stream)} to {target.label} failed: {exc}; its output:\n"
            + rig.tail(target.server.log)
        ) from exc
    finally:
        conn.close()


def _sse_data(body: bytes) -> list[str]:
    """The ``data`` of each event of an SSE body (one ``data:`` line per event here)."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if lines:
            events.append("\n".join(lines))
    return events


def check_stream(body: bytes) -> dict[str, Any]:
    """What a streamed answer held: chunks with a choice, the text, the usage, [DONE]."""
    events = _sse_data(body)
    done = bool(events) and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    with_choice = [c for c in chunks if c.get("choices")]
    text = "".join((c["choices"][0].get("delta") or {}).get("content") or "" for c in with_choice)
    usage = [c["usage"] for c in chunks if c.get("usage")]
    return {
        "chunks": len(with_choice),
        "text_ok": text == CONTENT,
        "usage": usage[-1] if usage else None,
        "done": done,
    }


def verify(target: Target) -> dict[str, Any]:
    """The answers must be right before anything is measured, or the run stops."""

    def fail(what: str, r: ai_client.Response) -> BenchError:
        return BenchError(
            f"{target.label}: {what}: got {r.status} {r.body[:400]!r}; its output:\n"
            + rig.tail(target.server.log)
        )

    r = _post(target, False, target.key)
    ctype = r.headers.get("content-type", "")
    if r.status != 200 or not ctype.startswith("application/json"):
        raise fail("a chat request with the key must get 200 application/json", r)
    doc = json.loads(r.body)
    content = doc["choices"][0]["message"]["content"]
    usage = {k: doc.get("usage", {}).get(k) for k in USAGE}
    if content != CONTENT or usage != USAGE:
        raise fail(f"the completion must be {CONTENT!r} with usage {USAGE}", r)
    say("    ok: chat with the key -> 200, the fixed completion and usage")

    r = _post(target, False, None)
    # LiteLLM 1.108 refuses with a 500 when its optional database client (prisma) is
    # not installed, as with `pip install 'litellm[proxy]'`: any refusal counts for it.
    refused = r.status == 401 or (target.label == "litellm" and r.status >= 400)
    if not refused:
        raise fail("a chat request without a key must be refused with 401", r)
    say(f"    ok: chat without a key -> {r.status}")

    r = _post(target, True, target.key)
    if r.status != 200 or not r.headers.get("content-type", "").startswith("text/event-stream"):
        raise fail("a streamed chat request must get 200 text/event-stream", r)
    seen = check_stream(r.body)
    usage = {k: (seen["usage"] or {}).get(k) for k in USAGE}
    # Quiver passes the stream through chunk for chunk; LiteLLM rebuilds it, so only
    # the text, the usage and the end are required of it.
    exact = target.label != "litellm"
    if not (seen["text_ok"] and seen["done"] and usage == USAGE) or (
        exact and seen["chunks"] != STREAM_CHUNKS
    ):
        raise fail(
            f"the stream must carry {STREAM_CHUNKS} chunks of {CONTENT!r}, the usage "
            f"chunk and [DONE] (saw {seen})",
            r,
        )
    say(
        f"    ok: streamed chat -> {seen['chunks']} chunks, the text, the usage chunk, data: [DONE]"
    )
    return {"stream": seen}


# --------------------------------------------------------------------------- latency


@dataclass
class Latency:
    target: str
    stream: bool
    round: int
    total_us: list[int]
    ttfb_us: list[int]
    errors: dict[str, int]
    server_core_busy: float  # the target's CPU seconds / wall seconds
    other_load_on_proxy_core: float

    @property
    def p50_us(self) -> float:
        return statistics.median(self.total_us) if self.total_us else 0.0


def run_client(run: Run, target: Target, stream: bool, rnd: int) -> Latency:
    """bench/ai_client.py on the load core: one connection, requests one at a time."""
    s = run.settings
    out = run.work / f"client-{target.label}-{'stream' if stream else 'chat'}-{rnd}.json"
    argv = [
        sys.executable,
        str(BENCH_DIR / "ai_client.py"),
        "--port",
        str(target.server.port),
        "--path",
        target.path(stream),
        "--key",
        target.key,
        "--model",
        target.model(stream),
        "--seconds",
        str(s.stream_seconds),
        "--max",
        str(s.stream_max),
        "--warmup",
        "20",
    ]
    if stream:
        argv.append("--stream")
    meter, cores = CpuMeter(target.server.proc.pid), CoreMeter((s.proxy_cpu,))
    meter.start()
    cores.start()
    t0 = time.monotonic()
    proc = run.procs.spawn(argv, cpu=s.load_cpu, out=out)
    code, _ = run.procs.wait_rusage(proc, s.stream_seconds + 120)
    wall = time.monotonic() - t0
    busy = cores.stop()[s.proxy_cpu]
    cpu, _ = meter.stop()
    try:
        result = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(
            f"the client against {target.label} failed (exit {code}):\n{rig.tail(out)}"
        ) from exc
    own = cpu / wall if target.label != "direct" else 0.0
    return Latency(
        target=target.label,
        stream=stream,
        round=rnd,
        total_us=result["total_us"],
        ttfb_us=result["ttfb_us"],
        errors=result["errors"],
        server_core_busy=round(cpu / wall, 3),
        other_load_on_proxy_core=round(max(0.0, busy - own), 3),
    )


# --------------------------------------------------------------------------- run


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    keys: Keys = field(default_factory=Keys)
    backend: Server | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    checked: dict[str, Any] = field(default_factory=dict)
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    litellm: str = ""  # its version
    cautions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start_backend(self) -> None:
        s = self.settings
        port = free_port()
        conf = backend_conf(self.work, port, self.keys.upstream)
        self.backend = start_nginx(self.procs, s, "backend", conf, port, s.load_cpu, False)
        self.targets["direct"] = Target(
            "direct",
            self.backend,
            self.keys.upstream,
            "/v1/chat/completions",
            "/stream/v1/chat/completions",
            "gpt-bench",
            "gpt-bench",
        )
        say(f"fake OpenAI backend (nginx) {self.backend.url} on core {s.load_cpu}")
        self.checked["direct"] = verify(self.targets["direct"])

    def start_gateway(self, name: str) -> Target:
        s, backend = self.settings, self.backend
        assert backend is not None
        base = self.work / name
        base.mkdir(parents=True, exist_ok=True)
        if name == "quiver":
            port = free_port()
            conf = base / "quiver.yaml"
            write_config(conf, quiver_config(port, backend.port, self.keys))
            server = rig.start_quiver(self.procs, s, name, conf, port, run_dir=base / "run")
            key = self.keys.quiver
        else:
            server = start_litellm(self.procs, s, base, backend.port, self.keys)
            key = self.keys.litellm
        (base / "report.lua").write_text(
            f"""wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.body = {json.dumps(ai_client.request_body("gpt-bench", False).decode())}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {json.dumps("Bearer " + key)}
"""
            + WRK_LUA
        )
        target = Target(
            name,
            server,
            key,
            "/v1/chat/completions",
            "/v1/chat/completions",
            "gpt-bench",
            "gpt-bench-stream",
        )
        self.targets[name] = target
        return target

    def measure(self, server: Server, seconds: int, rnd: int) -> Throughput:
        assert self.backend is not None
        work = self.work / server.label
        return run_wrk(
            self.procs,
            self.settings,
            work,
            server,
            self.backend,
            seconds,
            rnd,
            wrk_options=("--timeout", "30s"),
        )

    def execute(self) -> None:
        s = self.settings
        self.start_backend()
        for name in s.gateways:
            t0 = time.monotonic()
            target = self.start_gateway(name)
            say(
                f"  {name:8} {target.server.url}  pid {target.server.proc.pid}, on core "
                f"{s.proxy_cpu}, up in {time.monotonic() - t0:.1f} s"
            )
            self.checked[name] = verify(target)
        servers = [self.targets[g].server for g in s.gateways]

        say(
            f"throughput: wrk -t1 -c{s.connections}, non-streamed chat, {s.rounds} rounds "
            f"x {s.duration} s, gateways alternated"
        )
        self.throughput = rig.wrk_rounds(s, servers, self.measure, lambda t: f"{t.proxy:8}")
        self.errors += rig.round_errors(self.throughput, lambda t: t.proxy)
        self.cautions += rig.round_cautions(self.throughput, lambda t: t.proxy)

        say(
            f"latency: one connection, requests one at a time, {s.rounds} rounds x "
            f"{s.stream_seconds:g} s (at most {s.stream_max} requests) per target and kind"
        )
        order = ["direct", *s.gateways]
        for rnd in range(1, s.rounds + 1):
            for stream in (True, False):
                for name in order:
                    lat = run_client(self, self.targets[name], stream, rnd)
                    self.latency.append(lat)
                    kind = "stream" if stream else "chat"
                    flag = f"  !! ERRORS {lat.errors}" if lat.errors else ""
                    if lat.other_load_on_proxy_core > 0.05 and name != "direct":
                        flag += (
                            f"  !! other processes used {lat.other_load_on_proxy_core:.0%} "
                            "of the gateway core"
                        )
                    say(
                        f"  round {rnd} {kind:6} {name:8} p50 {lat.p50_us / 1000:8.3f} ms  "
                        f"p99 {percentile(lat.total_us, 0.99) / 1000:8.3f} ms  "
                        f"{len(lat.total_us):>5} requests{flag}"
                    )
                    if lat.errors:
                        self.errors.append(f"latency {kind} {name} round {rnd}: {lat.errors}")
                    if lat.other_load_on_proxy_core > 0.05 and name != "direct":
                        self.cautions.append(
                            f"latency {kind} {name} round {rnd}: other processes used "
                            f"{lat.other_load_on_proxy_core:.0%} of the gateway core"
                        )
        for server in servers:
            self.procs.stop(server.proc)


# --------------------------------------------------------------------------- report

THROUGHPUT_GOAL = 100.0  # Quiver's completions per CPU-second over LiteLLM's, at least
STREAM_GOAL_MS = 1.0  # what Quiver may add to the 20-chunk stream at p50, at most


def summarize(run: Run) -> dict[str, Any]:
    s = run.settings
    summary: dict[str, Any] = {"throughput": {}, "latency": {}}
    for name in s.gateways:
        summary["throughput"][name] = rig.medians([t for t in run.throughput if t.proxy == name])
    tp = summary["throughput"]
    if "quiver" in tp and "litellm" in tp and tp["litellm"]["req_per_cpu_s"] > 0:
        ratio = tp["quiver"]["req_per_cpu_s"] / tp["litellm"]["req_per_cpu_s"]
        by_round = {(t.proxy, t.round): t.req_per_cpu_s for t in run.throughput}
        summary["quiver_over_litellm"] = {
            "ratio": round(ratio, 1),
            "by_round": [
                round(by_round["quiver", r] / by_round["litellm", r], 1)
                for r in range(1, s.rounds + 1)
                if by_round.get(("litellm", r))
            ],
            "goal": THROUGHPUT_GOAL,
            "goal_met": ratio >= THROUGHPUT_GOAL,
        }
    for stream in (True, False):
        kind = "stream" if stream else "chat"
        rows: dict[str, Any] = {}
        for name in ["direct", *s.gateways]:
            mine = [lat for lat in run.latency if lat.target == name and lat.stream == stream]
            total = [v for lat in mine for v in lat.total_us]
            ttfb = [v for lat in mine for v in lat.ttfb_us]
            rows[name] = {
                "requests": len(total),
                "p50_ms": round(statistics.median(total) / 1000, 4) if total else None,
                "p90_ms": round(percentile(total, 0.90) / 1000, 4),
                "p99_ms": round(percentile(total, 0.99) / 1000, 4),
                "ttfb_p50_ms": round(statistics.median(ttfb) / 1000, 4) if ttfb else None,
                "p50_ms_by_round": [round(lat.p50_us / 1000, 4) for lat in mine],
            }
        direct = rows["direct"]
        for name in s.gateways:
            row = rows[name]
            if row["p50_ms"] is None or direct["p50_ms"] is None:
                continue
            row["added_p50_ms"] = round(row["p50_ms"] - direct["p50_ms"], 4)
            row["added_p50_ms_by_round"] = [
                round(a - b, 4)
                for a, b in zip(row["p50_ms_by_round"], direct["p50_ms_by_round"], strict=True)
            ]
            if stream and name == "quiver":
                row["goal_ms"] = STREAM_GOAL_MS
                row["goal_met"] = row["added_p50_ms"] <= STREAM_GOAL_MS
        summary["latency"][kind] = rows
    return summary


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def markdown(run: Run, summary: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    s = run.settings
    tp, lat = summary["throughput"], summary["latency"]
    names = {"quiver": env.get("quiver", "Quiver"), "litellm": f"LiteLLM {run.litellm}"}
    out = [
        f"AI gateway benchmark, run `ai-{stamp}` (`bench/ai.sh`): {env['cpu_model']}, "
        f"{env['cpus']} cores, load average {env['loadavg_start']} at the start and "
        f"{env['loadavg_end']} at the end; nginx {env['nginx']}, {env['wrk']}. Gateway "
        f"(1 worker) pinned to core {s.proxy_cpu}; fake OpenAI backend (nginx, 1 worker) "
        f"and the load on core {s.load_cpu}. Throughput: wrk -t1 -c{s.connections}, "
        f"non-streamed chat with a bearer key, median of {s.rounds} x {s.duration} s "
        "rounds, gateways alternated. Latency: one connection, requests one at a time, "
        f"{s.rounds} rounds x {s.stream_seconds:g} s per target.",
        "",
        "| measurement | " + " | ".join(names[g] for g in s.gateways) + " | Quiver / LiteLLM |",
        "|---|" + "---:|" * (len(s.gateways) + 1),
    ]

    def line(label: str, cells: list[str], last: str = "—") -> None:
        out.append(f"| {label} | " + " | ".join(cells) + f" | {last} |")

    ratio = summary.get("quiver_over_litellm")
    line(
        "chat completions per gateway CPU-second",
        [f"{tp[g]['req_per_cpu_s']:,.1f}" for g in s.gateways],
        f"**{ratio['ratio']:,.1f}** (goal ≥ {THROUGHPUT_GOAL:.0f})" if ratio else "—",
    )
    line(
        "chat completions/s (gateway core busy)",
        [f"{tp[g]['rps']:,.1f} ({tp[g]['proxy_core_busy']:.0%})" for g in s.gateways],
    )
    for kind, label in (("stream", "20-chunk stream"), ("chat", "non-streamed chat")):
        cells = []
        for g in s.gateways:
            row = lat[kind][g]
            added = row.get("added_p50_ms")
            cell = "—" if added is None else f"{added:+.3f} ms"
            if kind == "stream" and g == "quiver" and added is not None:
                cell = f"**{cell}** (goal ≤ {STREAM_GOAL_MS:g} ms)"
            cells.append(cell)
        line(f"{label}: p50 added over nginx direct (1 connection)", cells)
    out += [
        "",
        "| target | kind | requests | p50 | p90 | p99 | p50 to first body byte |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for kind in ("stream", "chat"):
        for name in ["direct", *s.gateways]:
            row = lat[kind][name]
            if not row["requests"]:
                continue
            out.append(
                f"| {name} | {kind} | {row['requests']:,} | {row['p50_ms']:.3f} ms "
                f"| {row['p90_ms']:.3f} ms | {row['p99_ms']:.3f} ms "
                f"| {row['ttfb_p50_ms']:.3f} ms |"
            )
    return "\n".join(out)


def goal_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    ratio = summary.get("quiver_over_litellm")
    if ratio:
        verdict = "met" if ratio["goal_met"] else "MISSED"
        lines.append(
            f"{'' if ratio['goal_met'] else '!! '}Quiver / LiteLLM completions per CPU-second: "
            f"{ratio['ratio']:,.1f} (rounds: {', '.join(map(str, ratio['by_round']))}); "
            f"goal ≥ {THROUGHPUT_GOAL:.0f}: {verdict}"
        )
    quiver = summary["latency"]["stream"].get("quiver", {})
    if "goal_met" in quiver:
        verdict = "met" if quiver["goal_met"] else "MISSED"
        rounds = ", ".join(f"{v:+.3f}" for v in quiver["added_p50_ms_by_round"])
        lines.append(
            f"{'' if quiver['goal_met'] else '!! '}Quiver's p50 added to a 20-chunk stream: "
            f"{quiver['added_p50_ms']:+.3f} ms (rounds: {rounds}); goal ≤ "
            f"{STREAM_GOAL_MS:g} ms: {verdict}"
        )
    return lines


# --------------------------------------------------------------------------- main


def main() -> int:
    args = driver.parse_args(__doc__, PROG)
    s = Settings.from_env()
    if driver.missing(PROG, s, "quiver" in s.gateways):
        return 2

    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    env = driver.environment(s.quiver if "quiver" in s.gateways else None, h2load=False)
    if "litellm" in s.gateways:
        try:
            run.litellm = litellm_version(litellm_python(s))
        except BenchError as exc:
            say(f"ai bench: {exc}")
            return 2
        env["litellm"] = run.litellm
    env["loadavg_start"] = _loadavg()
    idle = driver.busy_before_run(s)
    run.cautions += driver.idle_cautions(idle)
    say(
        f"ai bench: {', '.join(s.gateways)}; {env.get('quiver', '')} "
        f"{'LiteLLM ' + run.litellm if run.litellm else ''}, nginx {env['nginx']}, "
        f"{env['wrk']}; load average {env['loadavg_start']}"
    )
    try:
        run.execute()
    except BenchError as exc:
        say(f"\nai bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()
    env["loadavg_end"] = _loadavg()

    summary = summarize(run)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "run": f"ai-{stamp}",
        "settings": driver.settings_record(s)
        | {
            "litellm_venv": str(s.litellm_venv),
            "body_bytes": len(COMPLETION),
            "stream_bytes": len(STREAM),
        },
        "environment": env,
        "checks": run.checked,
        "summary": summary,
        "throughput": [vars(t) for t in run.throughput],
        "latency": [
            {k: v for k, v in vars(lat).items() if k not in ("total_us", "ttfb_us")}
            | {"requests": len(lat.total_us), "p50_us": lat.p50_us}
            for lat in run.latency
        ],
        "busy_before_run": idle,
        "cautions": run.cautions,
        "errors": run.errors,
    }
    path = driver.write_results(args.results, PROG, started, result)
    say("\n" + markdown(run, summary, env, stamp) + "\n")
    for line in goal_lines(summary):
        say(line)
    return driver.closing_report(path, run.cautions, run.errors)


if __name__ == "__main__":
    sys.exit(main())
