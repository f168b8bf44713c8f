#!/usr/bin/env python3
"""MCP benchmark: what a tool call through Quiver (OpenAPI → MCP → the target) costs
over the REST call it stands for, in one run.

Run it through ``bench/mcp.sh``, which installs the tools and owns the scratch
directory; see ``bench/README.md`` for what every number means.

Layout on a 2-core machine::

    core 0: backend nginx (1 worker: ``GET /notes/1`` answers a small JSON note,
            ``GET /openapi.json`` the OpenAPI 3.1 document describing getNote) + wrk
    core 1: Quiver, 1 worker: a route ``/api`` (strip_path, key-auth, ``mcp: {}``)

Three scenarios, alternated within each round:

- **direct**: ``GET /notes/1`` on nginx itself (the floor);
- **rest**: ``GET /api/notes/1`` with the consumer's key through Quiver;
- **tool**: the stateless (2026-07-28) ``tools/call`` of ``getNote`` on
  ``POST /api/mcp`` with the key.  Quiver answers it by sending ``GET
  /api/notes/1`` through its own listener to the route: a second pass through the
  proxy, plus the JSON-RPC work on both sides of it.

Each round measures every scenario twice: under load (wrk with ``CONNECTIONS``
connections: requests/s and requests per Quiver CPU-second) and on one connection
(``LAT_CONNECTIONS``: the latency of a call with nothing queued before it).

Standard library only; servers, CPU meters and wrk come from ``rig``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import json
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
import rig
from rig import WRK_LUA, BenchError, Processes, Server, Throughput, free_port, say

PROG = "mcp"
SCENARIOS = ("direct", "rest", "tool")
KEY = "bench-key-0001"
PROTOCOL = "2026-07-28"
NOTE = {"id": 1, "title": "First", "text": "A note to read through MCP.", "tags": ["a", "b"]}
NOTE_BODY = json.dumps(NOTE, separators=(",", ":"))
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "getNote",
        "arguments": {"noteId": 1},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": PROTOCOL,
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """getNote: ``GET /notes/{noteId}`` answering the note as JSON."""
    note = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "text": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["id", "title"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Notes", "version": "1.0.0"},
        "paths": {
            "/notes/{noteId}": {
                "get": {
                    "operationId": "getNote",
                    "summary": "One note by its id.",
                    "parameters": [
                        {
                            "name": "noteId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The note.",
                            "content": {"application/json": {"schema": note}},
                        },
                        "404": {"description": "No such note."},
                    },
                }
            }
        },
    }


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    scenarios: tuple[str, ...]
    quiver: tuple[str, ...]
    duration: int  # seconds per wrk run
    rounds: int
    connections: int  # wrk connections of the loaded runs
    lat_connections: int  # wrk connections of the latency runs (0: none)
    warmup: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        wanted = os.environ.get("SCENARIOS", "").split() or list(SCENARIOS)
        wrong = [w for w in wanted if w not in SCENARIOS]
        if wrong:
            sys.exit(f"mcp bench: SCENARIOS takes some of {' '.join(SCENARIOS)}, got {wrong}")
        s = cls(
            scenarios=tuple(name for name in SCENARIOS if name in wanted),
            quiver=driver.quiver_command(),
            duration=driver.env_int(PROG, "DURATION", 10),
            rounds=driver.env_int(PROG, "ROUNDS", 3),
            connections=driver.env_int(PROG, "CONNECTIONS", 16),
            lat_connections=driver.env_int(PROG, "LAT_CONNECTIONS", 1),
            warmup=driver.env_int(PROG, "WARMUP", 2),
            load_cpu=driver.env_int(PROG, "LOAD_CPU", 0),
            proxy_cpu=driver.env_int(PROG, "PROXY_CPU", 1),
            start_timeout=driver.env_float(PROG, "START_TIMEOUT", 60.0),
        )
        if s.duration < 1 or s.rounds < 1 or s.connections < 1 or s.lat_connections < 0:
            sys.exit("mcp bench: DURATION, ROUNDS and CONNECTIONS must be positive")
        return s

    @property
    def uses_quiver(self) -> bool:
        return any(name != "direct" for name in self.scenarios)


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """One kind of request, and what every answer to it must hold."""

    name: str
    method: str
    path: str
    headers: dict[str, str]
    body: str
    expect: tuple[str, ...]  # fragments of every good answer's body

    def lua(self) -> str:
        """The wrk script: one fixed request, every answer checked (a status outside
        2xx or a missing fragment counts as a bad response, see rig.WRK_LUA)."""
        lines = [f"wrk.method = {lua_string(self.method)}", f"wrk.path = {lua_string(self.path)}"]
        lines += [
            f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in self.headers.items()
        ]
        if self.body:
            lines.append(f"wrk.body = {lua_string(self.body)}")
        fragments = ", ".join(lua_string(f) for f in self.expect)
        lines.append(
            f"""local expect = {{{fragments}}}
bad = 0
setup = function(thread)
  checked = checked or {{}}
  table.insert(checked, thread)
end
response = function(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    return
  end
  for _, fragment in ipairs(expect) do
    if not string.find(body, fragment, 1, true) then
      bad = bad + 1
      return
    end
  end
end
"""
        )
        return "\n".join(lines) + WRK_LUA


def lua_string(text: str) -> str:
    """A Lua string literal (ASCII text: JSON's escapes are Lua's too)."""
    if not text.isascii():
        raise ValueError(f"not ASCII: {text!r}")
    return json.dumps(text)


def scenarios() -> dict[str, Scenario]:
    key = {"apikey": KEY}
    body = json.dumps(CALL, separators=(",", ":"))
    return {
        "direct": Scenario("direct", "GET", "/notes/1", {}, "", (NOTE_BODY,)),
        "rest": Scenario("rest", "GET", "/api/notes/1", key, "", (NOTE_BODY,)),
        "tool": Scenario(
            "tool",
            "POST",
            "/api/mcp",
            {
                **key,
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": PROTOCOL,
                "Mcp-Method": "tools/call",
                "Mcp-Name": "getNote",
            },
            body,
            ('"isError":false', '"structuredContent":' + NOTE_BODY),
        ),
    }


# --------------------------------------------------------------------------- servers


def backend_conf(work: Path, port: int) -> Path:
    document = work / "backend" / "openapi.json"
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(json.dumps(openapi_document()))
    return rig.nginx_main_conf(
        work,
        "backend",
        f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location = /notes/1 {{
            return 200 '{NOTE_BODY}';
        }}
        location = /openapi.json {{
            alias {document};
        }}
        location / {{
            return 404 '{{"title":"Not Found"}}';
        }}
    }}""",
    )


def quiver_config(port: int, backend: int) -> dict[str, Any]:
    return {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "targets": [{"name": "notes", "url": f"http://127.0.0.1:{backend}"}],
        "consumers": [{"name": "bench", "credentials": {"key-auth": [{"key": KEY}]}}],
        "routes": [
            {
                "name": "api",
                "paths": ["/api"],
                "strip_path": True,
                "target": "notes",
                "plugins": {"key-auth": {}},
                "mcp": {},
            }
        ],
    }


def exchange(server: Server, sc: Scenario, headers: dict[str, str] | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            sc.method,
            sc.path,
            body=sc.body.encode() or None,
            headers=sc.headers if headers is None else headers,
        )
        resp = conn.getresponse()
        return Answer(resp.status, resp.getheader("Content-Type", ""), resp.read())
    except OSError as exc:
        raise BenchError(
            f"{sc.method} {sc.path} on {server.label} failed: {exc}; its output:\n"
            + rig.tail(server.log)
        ) from exc
    finally:
        conn.close()


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def describe(self) -> str:
        return f"{self.status} ({self.content_type or 'no content type'}) {self.body[:400]!r}"


# --------------------------------------------------------------------------- run


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    backend: Server | None = None
    quiver: Server | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    loaded: list[Throughput] = field(default_factory=list)
    unloaded: list[Throughput] = field(default_factory=list)

    def start(self) -> None:
        s = self.settings
        port = free_port()
        conf = backend_conf(self.work, port)
        self.backend = rig.start_nginx(self.procs, s, "backend", conf, port, s.load_cpu, False)
        say(f"backend nginx {self.backend.url} on core {s.load_cpu}")
        if s.uses_quiver:
            base = self.work / "quiver"
            base.mkdir(parents=True, exist_ok=True)
            port = free_port()
            conf = base / "quiver.yaml"
            rig.write_config(conf, quiver_config(port, self.backend.port))
            self.quiver = rig.start_quiver(
                self.procs, s, "quiver", conf, port, run_dir=base / "run"
            )
            say(f"quiver {self.quiver.url} (1 worker) on core {s.proxy_cpu}")

    def server_of(self, name: str) -> Server:
        server = self.backend if name == "direct" else self.quiver
        assert server is not None
        return dataclasses.replace(server, label=name)

    def verify(self) -> None:
        """Every scenario answers right once before anything is measured; the wrong
        answer ends the run."""
        known = scenarios()
        for name in self.settings.scenarios:
            sc, server = known[name], self.server_of(name)
            answer = exchange(server, sc)
            if answer.status != 200 or not answer.content_type.startswith("application/json"):
                raise BenchError(
                    f"{name}: {sc.method} {sc.path} answered {answer.describe()}; expected 200 "
                    "application/json; Quiver's output:\n" + tail_of(self.quiver)
                )
            text = answer.body.decode("utf-8", "replace")
            if name == "tool":
                self.checks["tool_result"] = check_tool_result(answer)
            elif json.loads(answer.body) != NOTE:
                raise BenchError(f"{name}: {sc.path} answered {text[:400]!r}, not {NOTE_BODY}")
            missing = [f for f in sc.expect if f not in text]
            if missing:
                raise BenchError(
                    f"{name}: the answer is right but lacks {missing} verbatim, which wrk's "
                    f"check looks for in every answer: {text[:400]!r}"
                )
            self.checks[name] = {"status": answer.status, "bytes": len(answer.body)}
        if self.quiver is not None:
            refused = exchange(self.server_of("rest"), known["rest"], headers={})
            if refused.status != 401:
                raise BenchError(
                    f"rest without the key answered {refused.describe()}; expected 401 "
                    "(is key-auth on the route?)"
                )
            self.checks["rest_without_key"] = refused.status

    def measure(self, name: str, seconds: int, rnd: int, connections: int) -> Throughput:
        s = dataclasses.replace(self.settings, connections=connections)
        server = self.server_of(name)
        work = self.work / f"wrk-{name}-c{connections}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "report.lua").write_text(scenarios()[name].lua())
        if name != "direct":
            return rig.run_wrk(self.procs, s, work, server, self.backend, seconds, rnd)
        t = rig.run_wrk(self.procs, s, work, server, None, seconds, rnd)
        # nginx runs on the load core: what the Quiver core did meanwhile is no one's
        # share of this run, and rig's subtraction of nginx's CPU from it means nothing
        return dataclasses.replace(t, other_load_on_proxy_core=0.0)

    def execute(self) -> None:
        s = self.settings
        self.start()
        self.verify()
        say(
            f"wrk -t1: {s.connections} connections (load)"
            + (f" and {s.lat_connections} (latency)" if s.lat_connections else "")
            + f", {s.rounds} rounds x {s.duration} s, scenarios alternated"
        )
        if s.warmup:
            for name in s.scenarios:
                warm = self.measure(name, s.warmup, 0, s.connections)
                if warm.errors:
                    raise BenchError(f"warm-up of {name}: errors {warm.errors}")
        for rnd in range(1, s.rounds + 1):
            for name in s.scenarios:
                t = self.measure(name, s.duration, rnd, s.connections)
                self.loaded.append(t)
                report(t, f"c{s.connections}")
                if s.lat_connections:
                    t = self.measure(name, s.duration, rnd, s.lat_connections)
                    self.unloaded.append(t)
                    report(t, f"c{s.lat_connections}")


def tail_of(server: Server | None) -> str:
    return rig.tail(server.log) if server is not None else "  (not started)"


def check_tool_result(answer: Answer) -> dict[str, Any]:
    """The tool call's JSON-RPC answer: a result, not an error, with the note."""
    try:
        message = json.loads(answer.body)
    except ValueError as exc:
        raise BenchError(f"tool: the answer is not JSON: {answer.describe()}") from exc
    result = message.get("result") if isinstance(message, dict) else None
    if not isinstance(result, dict) or message.get("id") != CALL["id"]:
        raise BenchError(f"tool: not a JSON-RPC result for id 1: {answer.describe()}")
    if result.get("isError") is not False or result.get("structuredContent") != NOTE:
        raise BenchError(
            "tool: tools/call getNote did not answer isError false with the note in "
            f"structuredContent: {answer.describe()}"
        )
    return result


def report(t: Throughput, runs: str) -> None:
    flag = f"  !! ERRORS {t.errors}" if t.errors else ""
    if t.other_load_on_proxy_core > 0.05:
        flag += f"  !! other processes used {t.other_load_on_proxy_core:.0%} of the core"
    say(
        f"  round {t.round} {t.proxy:6} {runs:>4} {t.rps:>9,.0f} req/s "
        f"{t.req_per_cpu_s:>9,.0f} req/CPU-s  p50 {t.latency_p50_us:>6,} µs  "
        f"p99 {t.latency_p99_us:>7,} µs  server core {t.proxy_core_busy:4.0%}{flag}"
    )


# --------------------------------------------------------------------------- report


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def summarize(run: Run) -> dict[str, Any]:
    """Medians per scenario, and the tool call against the REST call."""
    per: dict[str, Any] = {}
    for name in run.settings.scenarios:
        loaded = [t for t in run.loaded if t.proxy == name]
        unloaded = [t for t in run.unloaded if t.proxy == name]
        per_cpu = _median([t.req_per_cpu_s for t in loaded])
        entry: dict[str, Any] = {
            "rps": round(_median([t.rps for t in loaded]), 1),
            "req_per_cpu_s": round(per_cpu, 1),
            "cpu_us_per_request": round(1e6 / per_cpu, 1) if per_cpu else None,
            "server_core_busy": round(_median([t.proxy_core_busy for t in loaded]), 3),
            "load_p50_us": int(_median([t.latency_p50_us for t in loaded])),
            "load_p99_us": int(_median([t.latency_p99_us for t in loaded])),
        }
        if unloaded:
            entry["p50_us"] = int(_median([t.latency_p50_us for t in unloaded]))
            entry["p99_us"] = int(_median([t.latency_p99_us for t in unloaded]))
            entry["unloaded_rps"] = round(_median([t.rps for t in unloaded]), 1)
        per[name] = entry
    summary: dict[str, Any] = {"scenarios": per}
    if "rest" in per and "tool" in per:
        summary["tool_over_rest"] = added(per["tool"], per["rest"])
    if "direct" in per and "rest" in per:
        summary["rest_over_direct"] = added(per["rest"], per["direct"])
    return summary


def added(slow: dict[str, Any], fast: dict[str, Any]) -> dict[str, Any]:
    """What ``slow`` costs over ``fast``: latency added, CPU per call as a ratio."""
    p50, p99 = ("p50_us", "p99_us") if "p50_us" in slow else ("load_p50_us", "load_p99_us")
    out: dict[str, Any] = {
        "latency_from": "unloaded" if p50 == "p50_us" else "loaded",
        "p50_added_us": slow[p50] - fast[p50],
        "p99_added_us": slow[p99] - fast[p99],
    }
    if slow["cpu_us_per_request"] and fast["cpu_us_per_request"]:
        out["cpu_per_call_ratio"] = round(
            slow["cpu_us_per_request"] / fast["cpu_us_per_request"], 2
        )
        out["cpu_us_added"] = round(slow["cpu_us_per_request"] - fast["cpu_us_per_request"], 1)
    return out


def markdown(run: Run, summary: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    s = run.settings
    lat = f"{s.lat_connections} connection" + ("s" if s.lat_connections > 1 else "")
    out = [
        f"MCP benchmark, {stamp} (`bench/mcp.sh`): {env['cpu_model']}, {env['cpus']} cores, "
        f"{env.get('quiver', 'Quiver')}, nginx {env['nginx'].split('/')[-1]}, {env['wrk']}. "
        f"Quiver (1 worker) on core {s.proxy_cpu}; nginx and wrk on core {s.load_cpu}. "
        f"Median of {s.rounds} x {s.duration} s; requests/s and CPU with {s.connections} "
        "connections"
        + (f", latency with {lat}." if s.lat_connections else ", latency under that load."),
        "",
        "| scenario | requests/s | requests per server CPU-s | server CPU µs/request | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "direct": "direct: nginx `GET /notes/1`",
        "rest": "rest: `GET /api/notes/1` through Quiver",
        "tool": "tool: `tools/call getNote` through Quiver",
    }
    for name, m in summary["scenarios"].items():
        p50, p99 = m.get("p50_us", m["load_p50_us"]), m.get("p99_us", m["load_p99_us"])
        cpu = f"{m['cpu_us_per_request']:,.0f}" if m["cpu_us_per_request"] else "—"
        out.append(
            f"| {labels[name]} | {m['rps']:,.0f} | {m['req_per_cpu_s']:,.0f} | {cpu} | "
            f"{p50:,} µs | {p99:,} µs |"
        )
    out.append("")
    out.append("The server is Quiver for rest and tool, the nginx backend for direct.")
    for key, what in (("tool_over_rest", "tool call over REST call"), ("rest_over_direct", "")):
        o = summary.get(key)
        if not o:
            continue
        what = what or "REST call through Quiver over nginx direct"
        line = f"- {what}: p50 {o['p50_added_us']:+,} µs, p99 {o['p99_added_us']:+,} µs"
        if key == "tool_over_rest" and "cpu_per_call_ratio" in o:
            line += (
                f"; Quiver CPU per call {o['cpu_per_call_ratio']:.2f}x "
                f"({o['cpu_us_added']:+,.0f} µs)"
            )
        out.append(line)
    return "\n".join(out)


def cautions(run: Run, idle: dict[int, float]) -> list[str]:
    rows = run.loaded + run.unloaded
    return driver.idle_cautions(idle) + rig.round_cautions(rows, _row)


def _row(t: Throughput) -> str:
    return t.proxy


# --------------------------------------------------------------------------- main


def main() -> int:
    args = driver.parse_args(__doc__, PROG)
    s = Settings.from_env()
    if driver.missing(PROG, s, s.uses_quiver):
        return 2
    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver if s.uses_quiver else None, h2load=False)
    idle = driver.busy_before_run(s)
    say(f"mcp bench: {', '.join(s.scenarios)}; nginx {env['nginx']}, {env['wrk']}")
    try:
        run.execute()
    except BenchError as exc:
        say(f"\nmcp bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()
    summary = summarize(run)
    caution = cautions(run, idle)
    found = rig.round_errors(run.loaded + run.unloaded, _row)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "run": f"mcp-{started.strftime('%Y%m%dT%H%M%SZ')}",
        "settings": driver.settings_record(s) | {"body_bytes": len(NOTE_BODY)},
        "environment": env,
        "checks": run.checks,
        "summary": summary,
        "loaded": [vars(t) for t in run.loaded],
        "unloaded": [vars(t) for t in run.unloaded],
        "busy_before_run": idle,
        "cautions": caution,
        "errors": found,
    }
    path = driver.write_results(args.results, PROG, started, result)
    say("\n" + markdown(run, summary, env, started.strftime("%Y-%m-%d")) + "\n")
    return driver.closing_report(path, caution, found)


if __name__ == "__main__":
    sys.exit(main())
