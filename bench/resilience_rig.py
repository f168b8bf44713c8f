"""What the resilience benchmark's steps share: settings, backends, the run's state,
background wrk and Quiver's log."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import re
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
    BenchError,
    CoreMeter,
    CpuMeter,
    Processes,
    Server,
    free_port,
    nginx_main_conf,
    process_tree,
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

# "2026-12-06 02:50:35,123 INFO [4711 worker 0] quiver.reload: ..." (pid, worker index)
LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ([A-Z]+) (?:\[[^\]]*\] )?(\S+): (.*)$"
)


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


def reload_time(out: dict[str, Any], key: str) -> str:
    """A statistic (median, max) of how long reloads took to be logged."""
    value = out["reload_logged_after_s"][key]
    return "—" if value is None else f"{value * 1000:.0f} ms"


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"
