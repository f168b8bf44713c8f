#!/usr/bin/env python3
"""Resilience benchmark: Quiver under config reloads and a failing node, and what
balancing and passive health cost on the hot path.

Run it through ``bench/resilience.sh``, which installs the tools and owns the
scratch directory; see ``bench/README.md`` for what every number means.

Steps (``STEPS``, default all three)::

    reload  wrk through Quiver while its config is rewritten and reloaded 20 times
            (SIGHUP), then 10 times with ``watch: true``; 1 worker, then 2 workers
    kill    wrk through Quiver with 3 nodes, retries and passive + active health
            checks; one node is stopped at 5 s and started again at 12 s
    ratio   requests per proxy CPU-second, as in bench/proxy.sh, for Quiver plain,
            Quiver with balancing + passive health, and nginx (1 and 3 backends)

Layout on a 2-core machine: the nginx backends and wrk on core 0, the proxy under
test on core 1 (Quiver's workers all on core 1).

Standard library only; servers, CPU meters and wrk come from ``rig``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
import rig
from rig import (
    BODY,
    WRK_LUA,
    BenchError,
    CoreMeter,
    CpuMeter,
    Processes,
    Server,
    Throughput,
    free_port,
    nginx_main_conf,
    nginx_proxy_conf,
    process_tree,
    quiver_conf,
    run_wrk,
    say,
    start_nginx,
    write_config,
)

STEPS = ("reload", "kill", "ratio")
WRK_ERROR_KEYS = ("connect_errors", "read_errors", "write_errors", "timeouts")


def node_body(index: int) -> bytes:
    """A backend's body: BODY with the node's number in it, same length."""
    body = BODY.replace(b"quiver-bench", b"quiver-node%d" % index)
    assert len(body) == len(BODY)
    return body


# --------------------------------------------------------------------------- settings


def _env_float(name: str, default: float) -> float:
    return driver.env_float("resilience", name, default)


def _env_int(name: str, default: int) -> int:
    return driver.env_int("resilience", name, default)


def _env_words(name: str, default: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    words = tuple(os.environ.get(name, default).split())
    wrong = [w for w in words if w not in allowed]
    if wrong or not words:
        sys.exit(f"resilience bench: {name} takes some of {' '.join(allowed)}, got {words!r}")
    return words


@dataclass(frozen=True)
class Settings:
    steps: tuple[str, ...]
    quiver: tuple[str, ...]
    connections: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float
    # reload
    reload_duration: int
    reloads: int
    watch_reloads: int
    reload_workers: tuple[int, ...]
    reload_timeout: float
    # kill
    kill_duration: int
    kill_at: float
    restart_at: float
    kill_modes: tuple[str, ...]
    # ratio
    duration: int
    rounds: int
    warmup: int

    @classmethod
    def from_env(cls) -> Settings:
        workers = []
        for word in os.environ.get("RELOAD_WORKERS", "1 2").split():
            if not word.isdigit() or int(word) < 1:
                sys.exit(f"resilience bench: RELOAD_WORKERS takes worker counts, got {word!r}")
            workers.append(int(word))
        s = cls(
            steps=_env_words("STEPS", " ".join(STEPS), STEPS),
            quiver=driver.quiver_command(),
            connections=_env_int("CONNECTIONS", 64),
            load_cpu=_env_int("LOAD_CPU", 0),
            proxy_cpu=_env_int("PROXY_CPU", 1),
            start_timeout=_env_float("START_TIMEOUT", 30.0),
            reload_duration=_env_int("RELOAD_DURATION", 30),
            reloads=_env_int("RELOADS", 20),
            watch_reloads=_env_int("WATCH_RELOADS", 10),
            reload_workers=tuple(workers),
            reload_timeout=_env_float("RELOAD_TIMEOUT", 10.0),
            kill_duration=_env_int("KILL_DURATION", 20),
            kill_at=_env_float("KILL_AT", 5.0),
            restart_at=_env_float("RESTART_AT", 12.0),
            kill_modes=_env_words("KILL_MODES", "stop kill", ("stop", "kill")),
            duration=_env_int("DURATION", 10),
            rounds=_env_int("ROUNDS", 3),
            warmup=_env_int("WARMUP", 2),
        )
        if s.reload_duration < 2 or s.reloads < 0 or s.watch_reloads < 0:
            sys.exit("resilience bench: RELOAD_DURATION >= 2, RELOADS and WATCH_RELOADS >= 0")
        if not 0 < s.kill_at < s.restart_at < s.kill_duration:
            sys.exit("resilience bench: need 0 < KILL_AT < RESTART_AT < KILL_DURATION")
        if s.duration < 1 or s.rounds < 1:
            sys.exit("resilience bench: DURATION and ROUNDS must be at least 1")
        return s


# --------------------------------------------------------------------------- servers


@dataclass
class Backend:
    index: int  # 1-based: node1, node2, node3
    port: int
    body: bytes
    server: Server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        return f"127.0.0.1:{self.port}"


# A restarted node logs the arrival time of every request except the health probes,
# so the report can say when proxied traffic reached it again.
ARRIVALS_HTTP = """    map $http_user_agent $proxied {
        default 1;
        "~^quiver-health-check" 0;
    }
    log_format arrival '$msec';
"""


def backend_block(port: int, body: bytes, arrivals: Path | None = None) -> str:
    """A backend server; with ``arrivals``, it logs when each proxied request came."""
    head = log = ""
    if arrivals is not None:
        head = ARRIVALS_HTTP
        log = f"        access_log {arrivals} arrival if=$proxied buffer=32k flush=500ms;\n"
    return f"""{head}    server {{
        listen 127.0.0.1:{port} backlog=4096;
{log}        location / {{
            default_type application/json;
            return 200 '{body.decode()}';
        }}
    }}"""


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    errors: list[str] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)

    def start_backends(self, prefix: str, count: int, same_body: bool = False) -> list[Backend]:
        backends = []
        for i in range(1, count + 1):
            port = free_port()
            body = BODY if same_body else node_body(i)
            conf = nginx_main_conf(self.work, f"{prefix}-node{i}", backend_block(port, body))
            server = start_nginx(
                self.procs,
                self.settings,
                f"{prefix}-node{i}",
                conf,
                port,
                self.settings.load_cpu,
                False,
            )
            backends.append(Backend(i, port, body, server))
        return backends

    def stop_backends(self, backends: list[Backend]) -> None:
        for b in backends:
            self.procs.stop(b.server.proc)

    def start_quiver(self, name: str, config: dict[str, Any], workers: int = 1) -> Server:
        base = self.work / name
        base.mkdir(parents=True, exist_ok=True)
        conf = base / "quiver.yaml"
        write_config(conf, config)
        return self.start_quiver_file(name, conf, port_of(config), workers)

    def start_quiver_file(self, label: str, conf: Path, port: int, workers: int) -> Server:
        s = self.settings
        options = ("--workers", str(workers))
        server = rig.start_quiver(
            self.procs, s, label, conf, port, options=options, run_dir=conf.parent / "run"
        )
        proc = server.proc
        if workers > 1:
            # the port accepts once one worker listens; wait for all of them
            deadline = time.monotonic() + s.start_timeout
            while len(process_tree(proc.pid)) < workers + 1:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise BenchError(
                        f"Quiver did not start {workers} workers:\n{rig.tail(server.log)}"
                    )
                time.sleep(0.05)
            time.sleep(1.0)
        return server


def port_of(config: dict[str, Any]) -> int:
    return int(str(config["listen"]).rsplit(":", 1)[1])


def fetch(port: int, count: int, path: str = "/") -> list[tuple[int, bytes]]:
    """``count`` GETs on one keep-alive connection: (status, body) each; status 0 and
    the error text when the request failed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    out: list[tuple[int, bytes]] = []
    try:
        for _ in range(count):
            conn.request("GET", path)
            resp = conn.getresponse()
            out.append((resp.status, resp.read()))
    except (OSError, http.client.HTTPException) as exc:
        out.append((0, f"{type(exc).__name__}: {exc}".encode()))
    finally:
        conn.close()
    return out


def check_spread(server: Server, backends: list[Backend], *, want_all: bool = True) -> None:
    """Responses through ``server`` are 200 with a backend's body, and (want_all) every
    backend answers some of them."""
    bodies = {b.body: b for b in backends}
    seen: set[bytes] = set()
    for status, body in fetch(server.port, 3 * len(backends) + 3):
        if status != 200 or body not in bodies:
            raise BenchError(
                f"GET {server.url} through {server.label} returned {status} {body[:300]!r}; "
                f"expected 200 and a backend's body; its output:\n{rig.tail(server.log)}"
            )
        seen.add(body)
    if want_all and len(seen) < len(bodies):
        raise BenchError(
            f"{server.label}: only {len(seen)} of {len(bodies)} backends answered "
            f"{3 * len(backends) + 3} requests on one connection"
        )


# --------------------------------------------------------------------------- wrk


class BackgroundWrk:
    """wrk running while the script does something else (reloads, a node's death)."""

    def __init__(self, run: Run, proxy: Server, seconds: int, name: str) -> None:
        s = run.settings
        self.run = run
        self.name = name
        self.seconds = seconds
        self.out = run.work / f"wrk-{name}.txt"
        argv = ["wrk", "-t1", f"-c{s.connections}", f"-d{seconds}s"]
        argv += ["-s", str(run.work / "report.lua"), proxy.url]
        # how busy the cores were, and how much of the proxy core others took
        self.cores = CoreMeter((s.load_cpu, s.proxy_cpu))
        self.proxy_cpu = CpuMeter(proxy.proc.pid)
        self.cores.start()
        self.proxy_cpu.start()
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.proc = run.procs.spawn(argv, cpu=s.load_cpu, out=self.out)

    def sleep_until(self, offset: float) -> None:
        time.sleep(max(0.0, self.started + offset - time.monotonic()))

    def finish(self) -> dict[str, Any]:
        s = self.run.settings
        code, _ = self.run.procs.wait_rusage(self.proc, self.seconds + 60)
        wall = time.monotonic() - self.started
        busy = self.cores.stop()
        try:
            proxy_busy: float | None = self.proxy_cpu.stop()[0] / wall
        except BenchError as exc:  # a process of the proxy ended mid-run
            proxy_busy = None
            self.run.errors.append(f"{self.name}: {exc}")
        r = rig.wrk_result(self.out, code, "wrk")
        r["seconds"] = round(r["duration_us"] / 1e6, 3)
        r["rps"] = round(r["requests"] / r["seconds"], 1)
        r["socket_errors"] = sum(r[k] for k in WRK_ERROR_KEYS)
        r["load_core_busy"] = busy[s.load_cpu]
        r["proxy_core_busy"] = busy[s.proxy_cpu]
        if proxy_busy is not None:
            r["proxy_cpu_share"] = round(proxy_busy, 3)
            other = round(max(0.0, busy[s.proxy_cpu] - proxy_busy), 3)
            r["other_load_on_proxy_core"] = other
            if other > 0.05:
                self.run.cautions.append(
                    f"{self.name}: other processes used {other:.0%} of the proxy core"
                )
        return r


def core_note(r: dict[str, Any]) -> str:
    """Quiver's share of its core, and other processes' share when it matters."""
    if "proxy_cpu_share" not in r:
        return ""
    note = f", Quiver used {r['proxy_cpu_share']:.0%} of its core"
    if r["other_load_on_proxy_core"] > 0.05:
        note += f"  !! other processes used {r['other_load_on_proxy_core']:.0%} of it"
    return note


def wrk_errors(r: dict[str, Any]) -> str:
    """'' when wrk saw no error, else what it saw."""
    parts = [f"{r['status_errors']} non-2xx"] if r["status_errors"] else []
    parts += [f"{r[k]} {k.replace('_', ' ')}" for k in WRK_ERROR_KEYS if r[k]]
    return ", ".join(parts)


# --------------------------------------------------------------------------- Quiver's log

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ([A-Z]+) (\S+): (.*)$")


@dataclass
class LogEntry:
    at: float  # epoch seconds (the log's local time, millisecond resolution)
    level: str
    logger: str
    message: str  # continuation lines (tracebacks, config problems) included

    def shown(self, since: float) -> str:
        first, *rest = self.message.splitlines() or [""]
        text = f"t={self.at - since:+7.3f}s {self.level} {self.logger}: {first}"
        return "\n".join([text, *("        " + line for line in rest[:40])])


class LogFollower:
    """Quiver's log (stdout + stderr of all its processes), parsed as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.entries: list[LogEntry] = []

    def poll(self) -> list[LogEntry]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self.entries
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace")
            m = LOG_LINE.match(line)
            if m:
                at = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                self.entries.append(LogEntry(at, m.group(2), m.group(3), m.group(4)))
            elif self.entries:
                self.entries[-1].message += "\n" + line
            elif line.strip():
                self.entries.append(LogEntry(time.time(), "OUTPUT", "-", line))
        return self.entries

    def count(self, needle: str) -> int:
        return sum(needle in e.message for e in self.poll())


def show_log_problems(lines: list[str]) -> None:
    say("    !! Quiver logged (t = seconds since wrk started):")
    for line in lines[:20]:
        say("      " + line.replace("\n", "\n      "))


def is_problem(entry: LogEntry) -> bool:
    return entry.level in ("WARNING", "ERROR", "CRITICAL", "OUTPUT") or (
        "Traceback" in entry.message
    )


# --------------------------------------------------------------------------- reload

# The configs a reload run cycles through: the node set of target "pool" (backend
# index, weight), whether route "extra" (to target "side") exists, and whether the
# pool has passive + active health checks. A target whose settings do not change
# between two configs keeps its pools; the others are built anew.
RELOAD_VARIANTS: list[tuple[str, list[tuple[int, int]], bool, bool]] = [
    ("nodes 1,2,3 weights 1:1:1", [(1, 1), (2, 1), (3, 1)], False, False),
    ("nodes 1,2 weights 3:1", [(1, 3), (2, 1)], False, False),
    ("nodes 1,2,3 + route /extra", [(1, 1), (2, 1), (3, 1)], True, False),
    ("nodes 2,3 weights 1:2 + health checks", [(2, 1), (3, 2)], False, True),
    ("node 3 only + route /extra", [(3, 1)], True, False),
    ("nodes 1,2,3 weights 2:1:1 + health checks", [(1, 2), (2, 1), (3, 1)], False, True),
]


def reload_config(port: int, backends: list[Backend], variant: int, watch: bool) -> dict[str, Any]:
    _, nodes, extra, health = RELOAD_VARIANTS[variant]
    pool: dict[str, Any] = {
        "name": "pool",
        "nodes": [{"url": backends[i - 1].url, "weight": w} for i, w in nodes],
        "balance": {"algorithm": "round_robin"},
    }
    if health:
        pool["health_check"] = {
            "passive": {"failures": 2, "cooldown": "5s"},
            "active": {"path": "/", "interval": "1s"},
        }
    targets = [pool]
    routes: list[dict[str, Any]] = [{"name": "all", "paths": ["/"], "target": "pool"}]
    if extra:
        targets.append({"name": "side", "url": backends[0].url})
        routes.append({"name": "extra", "paths": ["/extra"], "target": "side"})
    config: dict[str, Any] = {"listen": f"127.0.0.1:{port}"}
    if watch:
        config["watch"] = True
    return config | {"targets": targets, "routes": routes}


def upstream_connections(ports: set[int]) -> int:
    """Established TCP connections whose remote end is one of ``ports`` (the proxy's
    side of its connections to the backends)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) in ports:
                    count += 1
    return count


def reload_run(run: Run, backends: list[Backend], workers: int, trigger: str) -> dict[str, Any]:
    s = run.settings
    count = s.reloads if trigger == "sighup" else s.watch_reloads
    watch = trigger == "watch"
    name = f"reload-w{workers}-{trigger}"
    port = free_port()
    quiver = run.start_quiver(name, reload_config(port, backends, 0, watch), workers)
    conf = run.work / name / "quiver.yaml"
    check_spread(quiver, backends)
    log = LogFollower(quiver.log)
    log.poll()
    started_at = len(log.entries)
    say(
        f"  Quiver {workers} worker(s), {count} reloads by "
        f"{'SIGHUP' if trigger == 'sighup' else 'file change (watch: true)'} "
        f"in {s.reload_duration} s"
    )
    wrk = BackgroundWrk(run, quiver, s.reload_duration, name)
    interval = s.reload_duration / max(1, count)
    reloads: list[dict[str, Any]] = []
    for i in range(count):
        wrk.sleep_until((i + 0.5) * interval)
        variant = (i + 1) % len(RELOAD_VARIANTS)
        done_before = log.count("config reloaded from")
        write_config(conf, reload_config(port, backends, variant, watch))
        sent = time.monotonic()
        if trigger == "sighup":
            os.kill(quiver.proc.pid, signal.SIGHUP)
        logged = None
        while time.monotonic() - sent < s.reload_timeout:
            if log.count("config reloaded from") >= done_before + workers:
                logged = time.monotonic() - sent
                break
            time.sleep(0.005)
        # new connections must only reach the new node set
        allowed = {backends[n - 1].body for n, _ in RELOAD_VARIANTS[variant][1]}
        wrong = failed = 0
        for _ in range(4):
            for status, body in fetch(quiver.port, 3):
                if status != 200:
                    failed += 1
                elif body not in allowed:
                    wrong += 1
        at = time.monotonic() - wrk.started
        reloads.append(
            {
                "at_s": round(at, 2),
                "config": RELOAD_VARIANTS[variant][0],
                "logged_after_s": None if logged is None else round(logged, 4),
                "wrong_node_responses": wrong,
                "failed_checks": failed,
            }
        )
        flag = "" if logged is not None else "  !! no 'config reloaded' line"
        flag += f"  !! {wrong} responses from removed nodes" if wrong else ""
        flag += f"  !! {failed} check requests failed" if failed else ""
        if flag:
            say(f"    reload {i + 1} at t={at:.1f}s ({RELOAD_VARIANTS[variant][0]}){flag}")
    result = wrk.finish()
    open_conns = upstream_connections({b.port for b in backends})
    problems = [e for e in log.poll()[started_at:] if is_problem(e)]
    run.procs.stop(quiver.proc)
    times = [r["logged_after_s"] for r in reloads if r["logged_after_s"] is not None]
    out: dict[str, Any] = {
        "workers": workers,
        "trigger": trigger,
        "reloads_wanted": count,
        "reloads_logged": len(times),
        "reload_logged_after_s": {
            "median": round(statistics.median(times), 4) if times else None,
            "max": round(max(times), 4) if times else None,
        },
        "wrong_node_responses": sum(r["wrong_node_responses"] for r in reloads),
        "failed_checks": sum(r["failed_checks"] for r in reloads),
        "upstream_connections_at_end": open_conns,
        "wrk": result,
        "reloads": reloads,
        "log_problems": [e.shown(wrk.started_wall) for e in problems],
    }
    errs = wrk_errors(result)
    say(
        f"    {result['requests']:,} requests, {result['rps']:,.0f} req/s, "
        f"{len(times)}/{count} reloads logged (median {_secs(out, 'median')}, "
        f"max {_secs(out, 'max')}), p99 {result['latency_p99_us'] / 1000:.1f} ms, "
        f"max {result['latency_max_us'] / 1000:.1f} ms, "
        f"{open_conns} upstream connections open at the end{core_note(result)}"
        + (f"  !! ERRORS {errs}" if errs else "")
    )
    label = f"reload, {workers} worker(s), {trigger}"
    if errs:
        run.errors.append(f"{label}: wrk saw {errs}")
    if len(times) < count:
        run.errors.append(f"{label}: {count - len(times)} reloads never logged")
    if out["wrong_node_responses"] or out["failed_checks"]:
        run.errors.append(
            f"{label}: {out['wrong_node_responses']} responses from removed nodes, "
            f"{out['failed_checks']} failed check requests after reloads"
        )
    if problems:
        run.errors.append(f"{label}: {len(problems)} warning/error lines in Quiver's log")
        show_log_problems(out["log_problems"])
    return out


def _secs(out: dict[str, Any], key: str) -> str:
    value = out["reload_logged_after_s"][key]
    return "—" if value is None else f"{value * 1000:.0f} ms"


def step_reload(run: Run) -> list[dict[str, Any]]:
    s = run.settings
    say("reload: config rewritten and reloaded under load")
    backends = run.start_backends("reload", 3)
    runs = []
    try:
        for workers in s.reload_workers:
            for trigger, count in (("sighup", s.reloads), ("watch", s.watch_reloads)):
                if count:
                    runs.append(reload_run(run, backends, workers, trigger))
    finally:
        run.stop_backends(backends)
    return runs


# --------------------------------------------------------------------------- kill


def kill_config(port: int, backends: list[Backend]) -> dict[str, Any]:
    # retries are left at their defaults: on for idempotent requests, connect_error and reset
    return {
        "listen": f"127.0.0.1:{port}",
        "targets": [
            {
                "name": "pool",
                "nodes": [{"url": b.url} for b in backends],
                "balance": {"algorithm": "round_robin"},
                "health_check": {
                    "passive": {"failures": 2, "cooldown": "5s"},
                    "active": {"path": "/", "interval": "1s"},
                },
            }
        ],
        "routes": [{"name": "all", "paths": ["/"], "target": "pool"}],
    }


def node_timeline(entries: list[LogEntry], label: str) -> list[tuple[LogEntry, bool]]:
    """The health log lines about node ``label``, each with whether the node takes
    traffic after it (passive: not ejected, and active: not unhealthy)."""
    ejected = unhealthy = False
    out = []
    for e in entries:
        if f"node {label} " not in e.message:
            continue
        if " ejected for " in e.message:
            ejected = True
        elif "back in rotation" in e.message:
            ejected = False
        elif " unhealthy: " in e.message:
            unhealthy = True
        elif "healthy again" in e.message:
            unhealthy = False
        else:
            continue
        out.append((e, not ejected and not unhealthy))
    return out


def kill_run(run: Run, mode: str) -> dict[str, Any]:
    s = run.settings
    name = f"kill-{mode}"
    backends = run.start_backends(name, 3)
    victim = backends[1]
    try:
        port = free_port()
        quiver = run.start_quiver(name, kill_config(port, backends))
        check_spread(quiver, backends)
        log = LogFollower(quiver.log)
        log.poll()
        started_at = len(log.entries)
        how = "nginx -s stop" if mode == "stop" else "SIGKILL to its master and worker"
        say(
            f"  node {victim.label} stopped by {how} at t={s.kill_at:g}s, "
            f"started again at t={s.restart_at:g}s; wrk for {s.kill_duration} s"
        )
        wrk = BackgroundWrk(run, quiver, s.kill_duration, name)
        wrk.sleep_until(s.kill_at)
        killed_at = time.time()
        proc = victim.server.proc
        if mode == "stop":
            base = victim.server.log.parent
            subprocess.run(
                ["nginx", "-p", str(base), "-e", str(victim.server.log), "-c",
                 str(base / "nginx.conf"), "-s", "stop"],
                check=True, capture_output=True, timeout=10,
            )  # fmt: skip
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        run.procs.stop(proc)

        wrk.sleep_until(s.restart_at)
        arrivals = run.work / f"{name}-restarted" / "arrivals.log"
        conf = nginx_main_conf(
            run.work,
            f"{name}-restarted",
            backend_block(victim.port, victim.body, arrivals),
        )
        restarted_at = time.time()
        victim.server = start_nginx(
            run.procs, run.settings, f"{name}-restarted", conf, victim.port, s.load_cpu, False
        )
        listening_at = time.time()
        result = wrk.finish()
        time.sleep(0.6)  # the access log's flush interval
        entries = log.poll()[started_at:]
        problems = [
            e
            for e in entries
            if is_problem(e)
            and not (e.logger in ("quiver.health", "quiver.breaker") and victim.label in e.message)
        ]
        run.procs.stop(quiver.proc)
    finally:
        run.stop_backends(backends)

    timeline = node_timeline(entries, victim.label)
    out_at = next((e for e, up in timeline if e.at >= killed_at - 0.001 and not up), None)
    back_at = next((e for e, up in timeline if e.at >= restarted_at - 0.001 and up), None)
    ejected = next((e for e, _ in timeline if e.at >= killed_at and " ejected " in e.message), None)
    unhealthy = next(
        (e for e, _ in timeline if e.at >= killed_at and " unhealthy: " in e.message), None
    )
    first_request = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first_request = float(arrivals.read_text().split()[0])
    out: dict[str, Any] = {
        "mode": mode,
        "victim": victim.label,
        "wrk": result,
        "kill_at_s": round(killed_at - wrk.started_wall, 3),
        "restart_at_s": round(restarted_at - wrk.started_wall, 3),
        "restart_listening_after_s": round(listening_at - restarted_at, 3),
        "out_of_rotation_after_s": round(out_at.at - killed_at, 3) if out_at else None,
        "out_of_rotation_by": out_at.message.splitlines()[0] if out_at else None,
        "ejected_after_s": round(ejected.at - killed_at, 3) if ejected else None,
        "unhealthy_after_s": round(unhealthy.at - killed_at, 3) if unhealthy else None,
        "back_in_rotation_after_restart_s": round(back_at.at - restarted_at, 3)
        if back_at
        else None,
        "back_in_rotation_by": back_at.message.splitlines()[0] if back_at else None,
        "first_proxied_request_after_restart_s": round(first_request - restarted_at, 3)
        if first_request
        else None,
        "node_timeline": [
            f"{e.shown(killed_at)}  -> {'up' if up else 'out'}" for e, up in timeline
        ],
        "log_problems": [e.shown(wrk.started_wall) for e in problems],
    }
    errs = wrk_errors(result)
    say(
        f"    {result['requests']:,} requests, {result['rps']:,.0f} req/s, "
        f"p99 {result['latency_p99_us'] / 1000:.1f} ms, "
        f"max {result['latency_max_us'] / 1000:.1f} ms{core_note(result)}"
        + (f"  !! ERRORS {errs}" if errs else "")
    )
    say(f"    node {victim.label}, t = seconds since the kill:")
    for line in out["node_timeline"]:
        say("      " + line)
    say(
        f"    kill -> out of rotation {_s(out['out_of_rotation_after_s'])} (ejected "
        f"{_s(out['ejected_after_s'])}, unhealthy {_s(out['unhealthy_after_s'])}); "
        f"restart -> back in rotation {_s(out['back_in_rotation_after_restart_s'])}, "
        "first proxied request "
        f"{_s(out['first_proxied_request_after_restart_s'])}"
    )
    label = f"kill ({mode})"
    if errs:
        run.errors.append(f"{label}: wrk saw {errs}")
    if out_at is None:
        run.errors.append(f"{label}: Quiver never took node {victim.label} out of rotation")
    if back_at is None:
        run.errors.append(f"{label}: Quiver never put node {victim.label} back in rotation")
    if problems:
        run.errors.append(f"{label}: {len(problems)} unexpected warning/error lines in the log")
        show_log_problems(out["log_problems"])
    return out


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def step_kill(run: Run) -> list[dict[str, Any]]:
    say("kill: one of 3 nodes stopped and started again under load")
    return [kill_run(run, mode) for mode in run.settings.kill_modes]


# --------------------------------------------------------------------------- ratio

# (key, description) of every configuration measured, in table order
RATIO_ROWS = [
    ("nginx", "nginx, `upstream` with 1 server (as bench/proxy.sh)"),
    ("quiver_plain", "Quiver, `url:` (as bench/proxy.sh)"),
    ("quiver_rr_passive", "Quiver, `nodes:` 1 node, round_robin + passive health"),
    (
        "quiver_rr_passive_x3",
        "Quiver, `nodes:` the same backend 3 times, round_robin + passive health",
    ),
    ("nginx_3", "nginx, `upstream` with 3 servers"),
    ("quiver_3_rr_passive", "Quiver, `nodes:` 3 nodes, round_robin + passive health"),
]
PASSIVE = {"passive": {"failures": 2, "cooldown": "5s"}}


def balanced_config(port: int, urls: list[str]) -> dict[str, Any]:
    return {
        "listen": f"127.0.0.1:{port}",
        "targets": [
            {
                "name": "backend",
                "nodes": [{"url": u} for u in urls],
                "balance": {"algorithm": "round_robin"},
                "health_check": PASSIVE,
            }
        ],
        "routes": [{"name": "all", "paths": ["/"], "target": "backend"}],
    }


def nginx_upstream_conf(run: Run, name: str, port: int, backends: list[Backend]) -> Path:
    servers = "".join(f"        server 127.0.0.1:{b.port};\n" for b in backends)
    return nginx_main_conf(
        run.work,
        name,
        f"""    upstream backend {{
{servers}        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 120s;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}""",
    )


def start_proxy(run: Run, key: str, backends: list[Backend]) -> Server:
    port = free_port()
    urls = [b.url for b in backends]
    if key == "nginx":
        conf = nginx_proxy_conf(run.work, f"ratio-{key}", port, backends[0].port, None)
    elif key == "nginx_3":
        conf = nginx_upstream_conf(run, f"ratio-{key}", port, backends)
    else:
        if key == "quiver_plain":
            qconf = quiver_conf(run.work, f"ratio-{key}", port, backends[0].port, None)
        else:
            base = run.work / f"ratio-{key}"
            base.mkdir(parents=True, exist_ok=True)
            qconf = base / "quiver.yaml"
            nodes = urls * 3 if key == "quiver_rr_passive_x3" else urls
            write_config(qconf, balanced_config(port, nodes))
        return run.start_quiver_file(key, qconf, port, 1)
    return start_nginx(run.procs, run.settings, key, conf, port, run.settings.proxy_cpu, False)


def measure(
    run: Run, server: Server, backends: list[Backend], seconds: int, rnd: int
) -> Throughput:
    """run_wrk, with the CPU of every backend (not only the first) in load_core_busy."""
    others = [CpuMeter(b.server.proc.pid) for b in backends[1:]]
    for meter in others:
        meter.start()
    t = run_wrk(run.procs, run.settings, run.work, server, backends[0].server, seconds, rnd)
    extra = sum(meter.stop()[0] for meter in others)
    t.load_core_busy = round(t.load_core_busy + extra / max(t.seconds, 1e-9), 3)
    return t


def ratio_group(run: Run, keys: list[str], backends: list[Backend]) -> list[Throughput]:
    s = run.settings
    servers = []
    for key in keys:
        server = start_proxy(run, key, backends)
        check_spread(server, backends)
        servers.append(server)
        say(f"  {key:22} {server.url}  pid {server.proc.pid}")
    try:

        def measured(server: Server, seconds: int, rnd: int) -> Throughput:
            return measure(run, server, backends, seconds, rnd)

        rows = rig.wrk_rounds(s, servers, measured, lambda t: f"{t.proxy:22}")
        run.cautions += rig.round_cautions(rows, lambda t: f"ratio {t.proxy}")
        run.errors += rig.round_errors(rows, lambda t: f"ratio {t.proxy}")
    finally:
        for server in servers:
            run.procs.stop(server.proc)
    return rows


def step_ratio(run: Run) -> dict[str, Any]:
    s = run.settings
    (run.work / "report.lua").write_text(WRK_LUA)
    say(f"ratio: requests per proxy CPU-second, {s.rounds} rounds x {s.duration} s, alternated")
    rows: list[Throughput] = []
    say("  1 backend (60-byte JSON, as bench/proxy.sh)")
    one = run.start_backends("ratio1", 1, same_body=True)
    try:
        rows += ratio_group(run, [k for k, _ in RATIO_ROWS[:4]], one)
    finally:
        run.stop_backends(one)
    say("  3 backends")
    three = run.start_backends("ratio3", 3)
    try:
        rows += ratio_group(run, [k for k, _ in RATIO_ROWS[4:]], three)
    finally:
        run.stop_backends(three)

    summary: dict[str, Any] = {}
    for key, _ in RATIO_ROWS:
        summary[key] = rig.medians([t for t in rows if t.proxy == key])
    for key, _ in RATIO_ROWS:
        if key.startswith("quiver"):
            peer = "nginx_3" if key.startswith("quiver_3") else "nginx"
            mine = summary[key]["req_per_cpu_s"]
            summary[key]["over_nginx"] = round(mine / summary[peer]["req_per_cpu_s"], 3)
            summary[key]["over_quiver_plain"] = round(
                mine / summary["quiver_plain"]["req_per_cpu_s"], 3
            )
    return {"summary": summary, "throughput": [vars(t) for t in rows]}


# --------------------------------------------------------------------------- report


def _wrk_cells(w: dict[str, Any]) -> str:
    """requests | req/s | non-2xx | socket errors c/r/w/t | p99 / max latency"""
    errors = "/".join(str(w[k]) for k in WRK_ERROR_KEYS)
    return (
        f"{w['requests']:,} | {w['rps']:,.0f} | {w['status_errors']} | {errors} | "
        f"{w['latency_p99_us'] / 1000:.1f} / {w['latency_max_us'] / 1000:.0f} ms"
    )


def markdown(result: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    s = result["settings"]
    out = [
        f"Resilience benchmark, {stamp} (`bench/resilience.sh`): {env['cpu_model']}, "
        f"{env['cpus']} cores; {env.get('quiver', 'quiver')}, nginx {env['nginx']}. "
        f"Backends (nginx, 1 worker each, `return 200` with 60-byte JSON) and wrk "
        f"-t1 -c{s['connections']} on core {s['load_cpu']}; the proxy (all its workers) on "
        f"core {s['proxy_cpu']}.",
    ]
    if "reload" in result:
        out += [
            "",
            f"**Reloads under load** (wrk {s['reload_duration']} s; the config alternates "
            "node sets, weights, a route and health checks; each reload waits for every "
            "worker's `config reloaded` log line, then 12 requests on new connections check "
            "that only the new node set answers):",
            "",
            "| Quiver | trigger | reloads logged | reload → logged, median / max | requests "
            "| req/s | non-2xx | socket errors c/r/w/t | p99 / max latency | wrong-node "
            "responses | Quiver log warnings |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["reload"]:
            w = r["wrk"]
            trigger = "SIGHUP" if r["trigger"] == "sighup" else "`watch: true`"
            out.append(
                f"| {r['workers']} worker{'s' if r['workers'] > 1 else ''} | {trigger} | "
                f"{r['reloads_logged']}/{r['reloads_wanted']} | "
                f"{_secs(r, 'median')} / {_secs(r, 'max')} | {_wrk_cells(w)} | "
                f"{r['wrong_node_responses']} | {len(r['log_problems'])} |"
            )
    if "kill" in result:
        out += [
            "",
            f"**A node dies under load** (3 nodes, round_robin, default retries, passive "
            f"health failures 2 / cooldown 5 s, active health every 1 s; wrk "
            f"{s['kill_duration']} s, node 2 stopped at {s['kill_at']:g} s and started "
            f"again at {s['restart_at']:g} s):",
            "",
            "| node stopped by | requests | req/s | non-2xx | socket errors c/r/w/t "
            "| p99 / max latency | kill → ejected (passive) / unhealthy (active) "
            "| restart → back in rotation | restart → first proxied request |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["kill"]:
            w = r["wrk"]
            how = "`nginx -s stop`" if r["mode"] == "stop" else "SIGKILL"
            out.append(
                f"| {how} | {_wrk_cells(w)} | "
                f"{_s(r['ejected_after_s'])} / {_s(r['unhealthy_after_s'])} | "
                f"{_s(r['back_in_rotation_after_restart_s'])} | "
                f"{_s(r['first_proxied_request_after_restart_s'])} |"
            )
    if "ratio" in result:
        summ = result["ratio"]["summary"]
        out += [
            "",
            f"**Cost of balancing and passive health** (wrk -t1 -c{s['connections']}, median "
            f"of {s['rounds']} x {s['duration']} s rounds, configurations alternated; "
            "higher is better):",
            "",
            "| configuration | requests per proxy CPU-second | requests/s (proxy core) "
            "| / nginx | / Quiver plain |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, text in RATIO_ROWS:
            row = summ[key]
            nginx_ratio = f"**{row['over_nginx']:.2f}**" if "over_nginx" in row else "—"
            # the 3-backend rows are compared with each other only: spreading the load over
            # 3 backends changes the per-request cost of both proxies (see bench/README.md)
            same_backend = "over_quiver_plain" in row and not key.startswith("quiver_3")
            plain_ratio = f"{row['over_quiver_plain']:.2f}" if same_backend else "—"
            out.append(
                f"| {text} | {row['req_per_cpu_s']:,.0f} | {row['rps']:,.0f} "
                f"({row['proxy_core_busy']:.0%}) | {nginx_ratio} | {plain_ratio} |"
            )
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main() -> int:
    args = driver.parse_args(__doc__, "resilience")
    s = Settings.from_env()
    if driver.missing("resilience", s):
        return 2

    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    (run.work / "report.lua").write_text(WRK_LUA)
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver)
    idle = driver.busy_before_run(s)
    run.cautions += driver.idle_cautions(idle)
    say(
        f"resilience bench: steps {', '.join(s.steps)}; {env.get('quiver')}, "
        f"nginx {env['nginx']}, {env['wrk']}"
    )
    result: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "settings": driver.settings_record(s),
        "environment": env,
        "busy_before_run": idle,
    }
    failed = None
    try:
        if "reload" in s.steps:
            result["reload"] = step_reload(run)
        if "kill" in s.steps:
            result["kill"] = step_kill(run)
        if "ratio" in s.steps:
            result["ratio"] = step_ratio(run)
    except BenchError as exc:
        failed = str(exc)
        say(f"\nresilience bench FAILED: {exc}")
    finally:
        procs.stop_all()

    result["cautions"] = run.cautions
    result["errors"] = run.errors + ([f"run failed: {failed}"] if failed else [])
    path = driver.write_results(args.results, "resilience", started, result)
    if failed:
        say(f"partial results: {path}")
        return 1

    say("\n" + markdown(result, env, started.strftime("%Y-%m-%d")) + "\n")
    heading = "GOALS MISSED (errors, or Quiver misbehaved); details above and in the JSON:"
    return driver.closing_report(path, run.cautions, run.errors, heading)


if __name__ == "__main__":
    sys.exit(main())
