#!/usr/bin/env python3
"""Proxy benchmark: Quiver against nginx, side by side in one run.

Run it through ``bench/proxy.sh``, which installs the tools and owns the
scratch directory; see ``bench/README.md`` for what every number means.

Layout on a 2-core machine::

    core 0: backend nginx (1 worker, ``return 200`` + 60-byte JSON) + wrk / h2load
    core 1: the proxy under test (nginx with 1 worker, or Quiver with 1 worker)

The headline number is *requests per CPU-second of the proxy*: completed
requests divided by the user+system CPU time the proxy's processes used while
wrk ran. It does not depend on whether core 0 (load generator + backend) or
core 1 (proxy) is the bottleneck, which raw requests/s does.

Standard library only: this runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import itertools
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# 60 bytes, served by the backend and expected byte for byte through every proxy.
BODY = b'{"id":1042,"name":"quiver-bench","tags":["a","b"],"ok":true}'

CLK_TCK = os.sysconf("SC_CLK_TCK")

# wrk prints this line from its done() hook; parsing it beats scraping the text report.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
    "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d," ..
    "\"status_errors\":%d,\"timeouts\":%d," ..
    "\"latency_p50_us\":%d,\"latency_p99_us\":%d,\"latency_max_us\":%d}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# --------------------------------------------------------------------------- settings


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        sys.exit(f"proxy bench: {name}={raw!r} is not a number")


def _env_int(name: str, default: int) -> int:
    value = _env_float(name, default)
    if value != int(value):
        sys.exit(f"proxy bench: {name}={value} must be a whole number")
    return int(value)


@dataclass(frozen=True)
class Settings:
    duration: int  # seconds per wrk measurement
    rounds: int
    connections: int
    proxies: tuple[str, ...]
    quiver: tuple[str, ...]  # command that runs the quiver CLI
    warmup: int  # seconds of unmeasured wrk load per proxy before the rounds
    tls: bool
    latency: bool
    lat_rate: int  # 0 = half of Quiver's measured max req/s
    lat_duration: int
    lat_rounds: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        proxies = tuple(os.environ.get("PROXIES", "nginx quiver").split())
        unknown = [p for p in proxies if p not in ("nginx", "quiver")]
        if unknown or not proxies:
            sys.exit(f"proxy bench: PROXIES must name nginx and/or quiver, got {proxies!r}")
        duration = _env_int("DURATION", 10)
        rounds = _env_int("ROUNDS", 3)
        if duration < 1 or rounds < 1:
            sys.exit("proxy bench: DURATION and ROUNDS must be at least 1")
        return cls(
            duration=duration,
            rounds=rounds,
            connections=_env_int("CONNECTIONS", 64),
            proxies=proxies,
            quiver=tuple(shlex.split(os.environ.get("QUIVER", "quiver"))),
            warmup=_env_int("WARMUP", 2),
            tls=os.environ.get("TLS", "1") != "0",
            latency=os.environ.get("LATENCY", "1") != "0",
            lat_rate=_env_int("LAT_RATE", 0),
            lat_duration=_env_int("LAT_DURATION", duration),
            lat_rounds=_env_int("LAT_ROUNDS", rounds),
            load_cpu=_env_int("LOAD_CPU", 0),
            proxy_cpu=_env_int("PROXY_CPU", 1),
            start_timeout=_env_float("START_TIMEOUT", 30.0),
        )


# --------------------------------------------------------------------------- processes


class Processes:
    """Every process this benchmark starts, so that all of them are stopped at the end.

    Each child runs in its own process group (so a Ctrl-C on the terminal reaches only
    the scripts, which then stop the children in order) and its pid is kept in a file
    that ``proxy.sh`` reads as a last resort if this program dies without cleaning up.
    """

    def __init__(self, pidfile: Path) -> None:
        self.pidfile = pidfile
        self.running: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, argv: list[str], *, cpu: int, out: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with out.open("wb") as sink:
            proc = subprocess.Popen(
                ["taskset", "-c", str(cpu), *argv],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.running.append(proc)
        self._write_pidfile()
        return proc

    def wait_rusage(self, proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
        """Wait for a short-lived tool; returns (exit code, CPU seconds it used)."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.stop(proc)
                raise BenchError(f"{_command(proc)} did not finish within {timeout:.0f} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        self._forget(proc)
        return proc.returncode, usage.ru_utime + usage.ru_stime

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if proc.returncode is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._forget(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc)

    def _forget(self, proc: subprocess.Popen[bytes]) -> None:
        if proc in self.running:
            self.running.remove(proc)
            self._write_pidfile()

    def _write_pidfile(self) -> None:
        self.pidfile.write_text("".join(f"{p.pid}\n" for p in self.running))


class BenchError(Exception):
    """A failure that ends the run with a message and no traceback."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"{_command(proc)} exited with {proc.returncode} before listening "
                f"on 127.0.0.1:{port}; its output:\n{_tail(log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(
        f"nothing accepted connections on 127.0.0.1:{port} within {timeout:.0f} s "
        f"(START_TIMEOUT); output of {_command(proc)}:\n{_tail(log)}"
    )


def _command(proc: subprocess.Popen[bytes]) -> str:
    """The command line without the taskset prefix that spawn() adds."""
    args = proc.args
    return shlex.join(args[3:]) if isinstance(args, list) else str(args)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "  (no output file)"
    return "\n".join("  " + line for line in text[-lines:]) or "  (no output)"


# --------------------------------------------------------------------------- CPU time


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; it ends at the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """root and all its descendants (nginx master + workers, Quiver supervisor + workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime (fields 14 and 15 of /proc/PID/stat, all threads) per live pid."""
    ticks = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


class CpuMeter:
    """CPU seconds used by a process tree between start() and stop()."""

    def __init__(self, root: int) -> None:
        self.root = root

    def start(self) -> None:
        self.pids = process_tree(self.root)
        self.before = cpu_ticks(self.pids)

    def stop(self) -> tuple[float, int]:
        pids = process_tree(self.root)
        after = cpu_ticks(pids)
        lost = set(self.before) - set(after)
        if lost:
            raise BenchError(f"processes {sorted(lost)} under pid {self.root} exited mid-run")
        used = sum(after[p] - self.before.get(p, 0) for p in after)
        return used / CLK_TCK, len(pids)


def core_times(cpus: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies per core from /proc/stat, for spotting other load."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            # user nice system idle iowait irq softirq steal (guest is inside user)
            v = [int(x) for x in values[:8]]
            times[int(name[3:])] = (sum(v) - v[3] - v[4], sum(v))
    return times


class CoreMeter:
    """Busy fraction of whole cores (all processes) between start() and stop()."""

    def __init__(self, cpus: tuple[int, ...]) -> None:
        self.cpus = cpus

    def start(self) -> None:
        self.before = core_times(self.cpus)

    def stop(self) -> dict[int, float]:
        after = core_times(self.cpus)
        return {
            c: round((after[c][0] - self.before[c][0]) / max(1, after[c][1] - self.before[c][1]), 3)
            for c in self.cpus
        }


# --------------------------------------------------------------------------- servers


def nginx_main_conf(work: Path, name: str, http_block: str) -> Path:
    """A self-contained nginx.conf: every path in the scratch dir, nothing shared with a
    system nginx (its service, pid file, logs and temp dirs are never touched)."""
    base = work / name
    (base / "temp").mkdir(parents=True, exist_ok=True)
    temp = "\n".join(
        f"    {kind}_temp_path {base}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = base / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
worker_rlimit_nofile 65536;
events {{
    worker_connections 16384;
}}
http {{
    access_log off;
    server_tokens off;
{temp}
    keepalive_timeout 120s;
    keepalive_requests 10000000;
{http_block}
}}
"""
    )
    return conf


def backend_conf(work: Path, port: int) -> Path:
    return nginx_main_conf(
        work,
        "backend",
        f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{BODY.decode()}';
        }}
    }}""",
    )


def nginx_proxy_conf(work: Path, name: str, port: int, backend: int, tls: Path | None) -> Path:
    if tls:
        listen = f"""listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {tls}/cert.pem;
        ssl_certificate_key {tls}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;"""
    else:
        listen = f"listen 127.0.0.1:{port} backlog=4096;"
    return nginx_main_conf(
        work,
        name,
        f"""    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 120s;
    }}
    server {{
        {listen}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}""",
    )


def quiver_conf(work: Path, name: str, port: int, backend: int, tls: Path | None) -> Path:
    if tls:
        listen = f"""listen:
  - address: 127.0.0.1:{port}
    tls:
      certificates: [{{cert: {tls}/cert.pem, key: {tls}/key.pem}}]"""
    else:
        listen = f"listen: 127.0.0.1:{port}"
    base = work / name
    base.mkdir(parents=True, exist_ok=True)
    conf = base / "quiver.yaml"
    conf.write_text(
        f"""{listen}
workers: 1
targets:
  - name: backend
    url: http://127.0.0.1:{backend}
routes:
  - name: all
    paths: ["/"]
    target: backend
"""
    )
    return conf


def make_certificate(work: Path) -> Path:
    tls = work / "tls"
    tls.mkdir(exist_ok=True)
    argv = shlex.split(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    keys = ["-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")]
    run = subprocess.run([*argv, *keys], capture_output=True, text=True)
    if run.returncode:
        raise BenchError(f"openssl could not make a certificate:\n{run.stderr}")
    return tls


@dataclass
class Server:
    label: str  # "nginx", "quiver" or "backend"
    scheme: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    tls_info: str = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"


def start_nginx(
    procs: Processes, s: Settings, label: str, conf: Path, port: int, cpu: int, tls: bool
) -> Server:
    base = conf.parent
    log = base / "error.log"  # nginx writes nothing else; stdout is kept for crashes
    proc = procs.spawn(
        ["nginx", "-p", str(base), "-e", str(log), "-c", str(conf), "-g", "daemon off;"],
        cpu=cpu,
        out=base / "stdout.log",
    )
    wait_for_port(port, proc, log, s.start_timeout)
    return Server(label, "https" if tls else "http", port, proc, log)


def start_quiver(procs: Processes, s: Settings, conf: Path, port: int, tls: bool) -> Server:
    log = conf.parent / "quiver.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = procs.spawn([*s.quiver, "serve", "-c", str(conf)], cpu=s.proxy_cpu, out=log, env=env)
    wait_for_port(port, proc, log, s.start_timeout)
    return Server("quiver", "https" if tls else "http", port, proc, log)


def check_response(server: Server) -> None:
    """One request through the server; it must return exactly the backend's answer."""
    if server.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", server.port, timeout=10, context=ctx
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
        if server.scheme == "https":
            sock = conn.sock
            assert isinstance(sock, ssl.SSLSocket)
            cipher = sock.cipher()
            server.tls_info = f"{sock.version()} {cipher[0] if cipher else '?'}"
    except OSError as exc:
        raise BenchError(
            f"GET {server.url} through {server.label} failed: {exc}; its output:\n"
            + _tail(server.log)
        ) from exc
    finally:
        conn.close()
    ctype = resp.getheader("Content-Type", "")
    if resp.status != 200 or body != BODY or not ctype.startswith("application/json"):
        raise BenchError(
            f"GET {server.url} through {server.label} returned {resp.status} "
            f"({ctype or 'no content type'}) {body[:300]!r}; expected 200 application/json "
            f"{BODY!r}; its output:\n" + _tail(server.log)
        )


# --------------------------------------------------------------------------- load


@dataclass
class Throughput:
    proxy: str
    scheme: str
    round: int
    requests: int
    seconds: float
    rps: float
    proxy_cpu_s: float
    req_per_cpu_s: float
    proxy_core_busy: float  # proxy CPU seconds / wall seconds
    load_core_busy: float  # (backend + wrk) CPU seconds / wall seconds
    proxy_processes: int
    errors: dict[str, int]
    latency_p50_us: int
    latency_p99_us: int
    other_load_on_proxy_core: float  # whole-core busy minus the proxy's own share


def run_wrk(
    procs: Processes,
    s: Settings,
    work: Path,
    target: Server,
    backend: Server,
    seconds: int,
    rnd: int,
) -> Throughput:
    out = work / f"wrk-{target.label}-{target.scheme}-{rnd}.txt"
    proxy_cpu, backend_cpu = CpuMeter(target.proc.pid), CpuMeter(backend.proc.pid)
    cores = CoreMeter((s.load_cpu, s.proxy_cpu))
    proxy_cpu.start()
    backend_cpu.start()
    cores.start()
    t0 = time.monotonic()
    proc = procs.spawn(
        [
            "wrk",
            "-t1",
            f"-c{s.connections}",
            f"-d{seconds}s",
            "-s",
            str(work / "report.lua"),
            target.url,
        ],
        cpu=s.load_cpu,
        out=out,
    )
    code, wrk_cpu = procs.wait_rusage(proc, seconds + 60)
    wall = time.monotonic() - t0
    busy = cores.stop()
    cpu, nprocs = proxy_cpu.stop()
    bcpu, _ = backend_cpu.stop()
    text = out.read_text(errors="replace")
    match = re.search(r"^WRK_RESULT (\{.*\})$", text, re.M)
    if code or not match:
        raise BenchError(f"wrk against {target.url} failed (exit {code}):\n{text}")
    r = json.loads(match.group(1))
    errors = {
        k: r[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        if r[k]
    }
    secs = r["duration_us"] / 1e6
    return Throughput(
        proxy=target.label,
        scheme=target.scheme,
        round=rnd,
        requests=r["requests"],
        seconds=round(secs, 3),
        rps=round(r["requests"] / secs, 1),
        proxy_cpu_s=round(cpu, 2),
        req_per_cpu_s=round(r["requests"] / cpu, 1) if cpu > 0 else 0.0,
        proxy_core_busy=round(cpu / wall, 3),
        load_core_busy=round((bcpu + wrk_cpu) / wall, 3),
        proxy_processes=nprocs,
        errors=errors,
        latency_p50_us=r["latency_p50_us"],
        latency_p99_us=r["latency_p99_us"],
        other_load_on_proxy_core=round(max(0.0, busy[s.proxy_cpu] - cpu / wall), 3),
    )


# Fixed-rate latency: why h2load.
#
# Closed-loop tools (wrk, ab, hey -q, wrk's Lua delay()) send the next request only
# after the previous answer, so a slow proxy is offered *less* load and its stalls
# hide from the percentiles ("coordinated omission"). A fixed-rate test needs an
# open-loop schedule. Options checked on Debian 12 and PyPI:
#   - wrk2 (the usual answer): not packaged in Debian, not on PyPI.
#   - vegeta / oha (open-loop, corrected latency): not packaged; would need a Go or
#     Rust toolchain build, or an unvetted prebuilt binary.
#   - httperf (Debian): open-loop, but no percentiles and a select() FD limit.
#   - a generator written here in Python: one shared core cannot pace 10k+ req/s
#     with microsecond accuracy while also running the backend; its own jitter
#     would dominate the numbers it reports.
#   - h2load from nghttp2-client (Debian, C, libev) with --rps: each connection
#     fires requests on its own timer; --log-file records every request (send
#     time, status, latency in microseconds), so exact percentiles come from the
#     raw samples, warm-up can be cut out, and the schedule itself can be audited.
# We use h2load, with three measures that make its schedule honest:
#   1. per-connection rate <= 80/s: h2load's timer never fires more often than
#      every 10 ms; above 100/s per connection it sends small bursts back to back.
#   2. LIBEV_FLAGS=1 (select backend): libev's epoll backend rounds timer sleeps
#      up to whole milliseconds, which bunches sends; select sleeps to the
#      microsecond. Fine for the few hundred sockets used here (FD limit 1024).
#   3. staggered connection starts (-r 1 --rate-period 1ms) with a connection
#      count chosen so the start offsets spread evenly over the send interval.
# The remaining limit: h2load times each request from its actual send, not its
# scheduled send. A request is only sent late if the previous response on the
# same connection took longer than the per-connection interval (>= 12.5 ms), so
# the report counts those responses ("slow_share") and warns when they could
# bias p99. The schedule's evenness is reported too (sends per millisecond).

MAX_PER_CONN_RATE = 80.0
# Busiest the h2load + backend core may be in the direct calibration probe. Through a
# proxy the same core runs ~5-10 points busier (no batching of the backend's wake-ups);
# past ~85% its own queueing shows up in every percentile.
LOAD_CORE_LIMIT = 0.65
MAX_H2LOAD_CONNS = 900  # select() handles fds < 1024


def h2load_clients(rate: int, minimum: int) -> int:
    """Connection count for `rate`: at least `minimum`, per-connection rate at most
    MAX_PER_CONN_RATE, and start offsets (k ms mod interval) spread evenly."""
    lowest = max(minimum, math.ceil(rate / MAX_PER_CONN_RATE))
    best, best_gap = lowest, math.inf
    for c in range(lowest, lowest + 64):
        interval = c / rate * 1000.0  # ms between two requests of one connection
        phases = sorted((k % interval) for k in range(c))
        gaps = [b - a for a, b in itertools.pairwise(phases)]
        gaps.append(phases[0] + interval - phases[-1])
        if max(gaps) < best_gap - 1e-9:
            best, best_gap = c, max(gaps)
    return best


@dataclass
class Latency:
    target: str  # "backend", "nginx" or "quiver"
    round: int
    rate: int
    connections: int
    samples: int
    achieved_rate: float
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int
    errors: int
    slow_share: float  # responses slower than one connection's send interval
    sends_per_ms_mean: float
    sends_per_ms_p99: int
    load_core_busy: float  # backend + h2load CPU seconds / wall seconds
    other_load: float  # busiest core's busy share not used by backend, h2load or proxy
    proxy_core_busy: float | None = None
    notes: list[str] = field(default_factory=list)


def run_h2load(
    procs: Processes,
    s: Settings,
    work: Path,
    target: Server,
    backend: Server,
    rate: int,
    rnd: int,
    seconds: int,
) -> Latency:
    clients = h2load_clients(rate, s.connections)
    if clients > MAX_H2LOAD_CONNS:
        raise BenchError(
            f"LAT_RATE {rate} needs {clients} connections; h2load's limit is {MAX_H2LOAD_CONNS}"
        )
    per_conn = rate / clients
    total = max(clients, int(rate * seconds))
    log = work / f"h2load-{target.label}-{rnd}.log"
    out = work / f"h2load-{target.label}-{rnd}.txt"
    log.unlink(missing_ok=True)  # h2load appends
    meter = CpuMeter(target.proc.pid) if target.proc.pid != backend.proc.pid else None
    backend_cpu = CpuMeter(backend.proc.pid)
    cores = CoreMeter((s.load_cpu, s.proxy_cpu))
    backend_cpu.start()
    if meter:
        meter.start()
    cores.start()
    t0 = time.monotonic()
    proc = procs.spawn(
        [
            "h2load",
            "--h1",
            "-t1",
            f"-c{clients}",
            f"-n{total}",
            f"--rps={per_conn:.6f}",
            "-r1",
            "--rate-period=1ms",
            f"--log-file={log}",
            target.url,
        ],
        cpu=s.load_cpu,
        out=out,
        env=dict(os.environ, LIBEV_FLAGS="1"),
    )
    code, gen_cpu = procs.wait_rusage(proc, total / rate + 120)
    wall = time.monotonic() - t0
    whole = cores.stop()
    busy = round(meter.stop()[0] / wall, 3) if meter else None
    load_busy = round((backend_cpu.stop()[0] + gen_cpu) / wall, 3)
    other = max(whole[s.load_cpu] - load_busy, whole[s.proxy_cpu] - (busy or 0.0), 0.0)
    text = out.read_text(errors="replace")
    if code:
        raise BenchError(f"h2load against {target.url} failed (exit {code}):\n{text}")

    rows = []
    for line in log.read_text().splitlines():
        start, status, micros = line.split("\t")[:3]
        rows.append((int(start), int(status), int(micros)))
    if not rows:
        raise BenchError(f"h2load wrote no samples for {target.url}:\n{text}")
    errors = sum(1 for _, status, _ in rows if status != 200)
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", text)
    if m and int(m.group(3)) != total:
        errors = max(errors, total - int(m.group(3)))

    # Keep the steady part: skip the ramp-up while connections open one per ms, and
    # the tail where connections finish one per ms.
    first = min(r[0] for r in rows)
    last = max(r[0] for r in rows)
    ramp_us = clients * 1000 + 200_000
    lo = first + min(max(1_000_000, ramp_us), (last - first) // 3)
    hi = last - min(ramp_us, (last - first) // 3)
    steady = [r for r in rows if lo <= r[0] <= hi and r[1] == 200]
    if len(steady) < 1000:
        raise BenchError(
            f"only {len(steady)} steady-state samples against {target.url}; raise LAT_DURATION"
        )
    lat = sorted(r[2] for r in steady)
    starts = sorted(r[0] for r in steady)
    span_s = (starts[-1] - starts[0]) / 1e6
    per_ms = Counter((t - starts[0]) // 1000 for t in starts)
    buckets = sorted(per_ms.get(i, 0) for i in range(int(span_s * 1000)))
    interval_us = clients / rate * 1e6

    def pct(p: float) -> int:
        return lat[min(len(lat) - 1, math.ceil(p / 100 * len(lat)) - 1)]

    result = Latency(
        target=target.label,
        round=rnd,
        rate=rate,
        connections=clients,
        samples=len(lat),
        achieved_rate=round(len(lat) / span_s, 1),
        p50_us=pct(50),
        p90_us=pct(90),
        p99_us=pct(99),
        p999_us=pct(99.9),
        max_us=lat[-1],
        errors=errors,
        slow_share=round(sum(1 for v in lat if v > interval_us) / len(lat), 5),
        sends_per_ms_mean=round(len(lat) / (span_s * 1000), 2),
        sends_per_ms_p99=buckets[int(0.99 * (len(buckets) - 1))] if buckets else 0,
        load_core_busy=load_busy,
        other_load=round(other, 3),
        proxy_core_busy=busy,
    )
    if other > 0.05:
        result.notes.append(f"other processes used {other:.0%} of a benchmark core")
    if result.achieved_rate < 0.97 * rate:
        result.notes.append(
            f"achieved {result.achieved_rate:.0f} req/s of {rate}: the schedule slipped "
            "(generator or target saturated)"
        )
    if load_busy > 0.85:
        result.notes.append(
            f"the load generator's core was {load_busy:.0%} busy: its own queueing is in the "
            "tail percentiles; lower LAT_RATE"
        )
    if result.slow_share > 0.002:
        result.notes.append(
            f"{result.slow_share:.2%} of responses took longer than the per-connection "
            f"interval ({interval_us / 1000:.1f} ms), delaying the next send: p99 is "
            "understated"
        )
    return result


# --------------------------------------------------------------------------- run


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    backend: Server | None = None
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    tls_info: dict[str, str] = field(default_factory=dict)
    lat_rate: int = 0
    lat_capped_from: int = 0
    lat_probes: list[dict[str, float]] = field(default_factory=list)

    def start_proxies(self, tls: Path | None) -> list[Server]:
        s, backend = self.settings, self.backend
        assert backend is not None
        servers = []
        suffix = "-tls" if tls else ""
        for name in s.proxies:
            port = free_port()
            if name == "nginx":
                conf = nginx_proxy_conf(self.work, f"nginx-proxy{suffix}", port, backend.port, tls)
                server = start_nginx(self.procs, s, "nginx", conf, port, s.proxy_cpu, bool(tls))
            else:
                conf = quiver_conf(self.work, f"quiver{suffix}", port, backend.port, tls)
                server = start_quiver(self.procs, s, conf, port, tls is not None)
            check_response(server)
            if server.tls_info:
                self.tls_info[name] = server.tls_info
            servers.append(server)
            say(f"  {name:6} {server.url}  pid {server.proc.pid}  {server.tls_info}".rstrip())
        return servers

    def throughput_rounds(self, servers: list[Server]) -> None:
        s, backend = self.settings, self.backend
        assert backend is not None
        if s.warmup:
            for server in servers:
                warm = run_wrk(self.procs, s, self.work, server, backend, s.warmup, 0)
                if warm.errors:
                    say(f"  !! warm-up through {server.label}: ERRORS {warm.errors}")
        for rnd in range(1, s.rounds + 1):
            for server in servers:
                t = run_wrk(self.procs, s, self.work, server, backend, s.duration, rnd)
                self.throughput.append(t)
                flag = f"  !! ERRORS {t.errors}" if t.errors else ""
                if t.other_load_on_proxy_core > 0.05:
                    flag += f"  !! other processes used {t.other_load_on_proxy_core:.0%} of core"
                say(
                    f"  round {rnd} {t.scheme:5} {t.proxy:6} {t.rps:>9,.0f} req/s  "
                    f"{t.req_per_cpu_s:>9,.0f} req/CPU-s  proxy core {t.proxy_core_busy:4.0%}  "
                    f"load core {t.load_core_busy:4.0%}{flag}"
                )

    def latency_rounds(self, servers: list[Server]) -> None:
        s, backend = self.settings, self.backend
        assert backend is not None
        rate = s.lat_rate
        if not rate:
            plain = [t for t in self.throughput if t.scheme == "http"]
            medians = {
                name: statistics.median(t.rps for t in plain if t.proxy == name)
                for name in s.proxies
            }
            base = medians.get("quiver", min(medians.values()))
            rate = max(100, int(round(base / 2, -2)))
            rate = self.calibrate(rate)
        self.lat_rate = rate
        say(f"latency at a fixed {rate:,} req/s (h2load, {s.lat_duration} s per run)")
        for rnd in range(1, s.lat_rounds + 1):
            for target in [backend, *servers]:
                lat = run_h2load(
                    self.procs, s, self.work, target, backend, rate, rnd, s.lat_duration
                )
                self.latency.append(lat)
                flag = f"  !! ERRORS {lat.errors}" if lat.errors else ""
                say(
                    f"  round {rnd} {lat.target:7} p50 {lat.p50_us / 1000:6.2f} ms  "
                    f"p99 {lat.p99_us / 1000:6.2f} ms  p99.9 {lat.p999_us / 1000:6.2f} ms  "
                    f"({lat.achieved_rate:,.0f} req/s, {lat.connections} conns, "
                    f"load core {lat.load_core_busy:.0%}"
                    + (f", proxy core {lat.proxy_core_busy:.0%}" if lat.proxy_core_busy else "")
                    + f"){flag}"
                )
                for note in lat.notes:
                    say(f"    note: {note}")

    def calibrate(self, rate: int) -> int:
        """Lower `rate` until h2load + backend leave headroom on their core.

        Through a proxy, core 0 does the same work per request as direct (h2load sends
        and receives it, the backend answers it), so a direct probe stands for all
        targets. A saturated generator core would add its own queueing to every
        percentile and slip the schedule.
        """
        s, backend = self.settings, self.backend
        assert backend is not None
        wanted = rate
        for _ in range(8):
            probe = run_h2load(self.procs, s, self.work, backend, backend, rate, 0, 3)
            self.lat_probes.append({"rate": rate, "load_core_busy": probe.load_core_busy})
            if probe.load_core_busy <= LOAD_CORE_LIMIT and probe.achieved_rate >= 0.97 * rate:
                break
            lower = max(
                500, int(round(rate * min(0.8, LOAD_CORE_LIMIT / probe.load_core_busy), -2))
            )
            say(
                f"  {rate:,} req/s keeps the load core {probe.load_core_busy:.0%} busy "
                f"(limit {LOAD_CORE_LIMIT:.0%}); trying {lower:,}"
            )
            if lower >= rate:
                break
            rate = lower
        if rate != wanted:
            self.lat_capped_from = wanted
        return rate

    def execute(self) -> None:
        s = self.settings
        (self.work / "report.lua").write_text(WRK_LUA)
        port = free_port()
        self.backend = start_nginx(
            self.procs, s, "backend", backend_conf(self.work, port), port, s.load_cpu, False
        )
        check_response(self.backend)
        say(f"backend nginx {self.backend.url} on core {s.load_cpu}; proxies on core {s.proxy_cpu}")

        say("plain HTTP:")
        servers = self.start_proxies(None)
        self.throughput_rounds(servers)
        if s.latency:
            self.latency_rounds(servers)
        for server in servers:
            self.procs.stop(server.proc)

        if s.tls:
            say("HTTPS (TLS terminated by the proxy, plain HTTP to the backend):")
            servers = self.start_proxies(make_certificate(self.work))
            self.throughput_rounds(servers)
            for server in servers:
                self.procs.stop(server.proc)


# --------------------------------------------------------------------------- report


def say(msg: str) -> None:
    print(msg, flush=True)


def _version(argv: list[str]) -> str:
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (run.stdout + run.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def environment(s: Settings) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    env = {
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nginx": _version(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": _version(["wrk", "-v"]).split(" [")[0],
        "h2load": _version(["h2load", "--version"]),
        "openssl": _version(["openssl", "version"]),
    }
    if "quiver" in s.proxies:
        env["quiver"] = _version([*s.quiver, "--version"])
    return env


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def summarize(run: Run) -> dict[str, Any]:
    s = run.settings
    summary: dict[str, Any] = {}
    for scheme in ("http", "https"):
        rows = [t for t in run.throughput if t.scheme == scheme]
        if not rows:
            continue
        per: dict[str, Any] = {}
        for name in s.proxies:
            mine = [t for t in rows if t.proxy == name]
            per[name] = {
                "rps": round(_median([t.rps for t in mine]), 1),
                "req_per_cpu_s": round(_median([t.req_per_cpu_s for t in mine]), 1),
                "proxy_core_busy": round(_median([t.proxy_core_busy for t in mine]), 3),
                "load_core_busy": round(_median([t.load_core_busy for t in mine]), 3),
            }
        if "nginx" in per and "quiver" in per:
            per["quiver_over_nginx"] = {
                k: round(per["quiver"][k] / per["nginx"][k], 3) if per["nginx"][k] else None
                for k in ("rps", "req_per_cpu_s")
            }
        summary[scheme] = per
    if run.latency:
        lat: dict[str, Any] = {"rate": run.lat_rate, "rate_capped_from": run.lat_capped_from}
        for name in ("backend", *s.proxies):
            taken = [x for x in run.latency if x.target == name]
            lat[name] = {
                k: int(_median([getattr(x, k) for x in taken]))
                for k in ("p50_us", "p90_us", "p99_us", "p999_us")
            }
            lat[name]["connections"] = taken[0].connections
        for name in s.proxies:
            lat[name]["p99_added_us"] = lat[name]["p99_us"] - lat["backend"]["p99_us"]
            lat[name]["p50_added_us"] = lat[name]["p50_us"] - lat["backend"]["p50_us"]
        summary["latency"] = lat
    return summary


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def markdown(run: Run, summary: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    s = run.settings
    names = {"nginx": f"nginx {env['nginx'].split('/')[-1]}", "quiver": "Quiver"}
    if env.get("quiver", "").startswith("quiver "):
        names["quiver"] = "Quiver " + env["quiver"].split()[1]
    both = "nginx" in s.proxies and "quiver" in s.proxies
    cols = [names[p] for p in s.proxies] + (["Quiver / nginx"] if both else [])
    out = [
        f"Proxy benchmark, {stamp} (`bench/proxy.sh`): {env['cpu_model']}, {env['cpus']} cores. "
        f"Proxy pinned to core {s.proxy_cpu}; backend (nginx, 1 worker, {len(BODY)}-byte JSON) "
        f"and load generator on core {s.load_cpu}. wrk -t1 -c{s.connections}, median of "
        f"{s.rounds} x {s.duration} s rounds, proxies alternated.",
        "",
        "| " + " | ".join(["measurement", *cols]) + " |",
        "|---" + "|---:" * len(cols) + "|",
    ]
    for scheme, title in (("http", "HTTP"), ("https", "HTTPS")):
        per = summary.get(scheme)
        if not per:
            continue
        ratio = per.get("quiver_over_nginx", {})
        cells = [_n(per[p]["req_per_cpu_s"]) for p in s.proxies]
        if both:
            cells.append(f"**{ratio['req_per_cpu_s']:.2f}**")
        out.append(f"| {title} requests per proxy CPU-second | " + " | ".join(cells) + " |")
        cells = [
            f"{_n(per[p]['rps'])} (proxy core {per[p]['proxy_core_busy']:.0%})" for p in s.proxies
        ]
        if both:
            cells.append(f"{ratio['rps']:.2f}")
        out.append(f"| {title} requests/s | " + " | ".join(cells) + " |")
    lat = summary.get("latency")
    if lat:
        out += [
            "",
            f"Latency at a fixed {lat['rate']:,} req/s (h2load open-loop schedule, "
            f"{lat['backend']['connections']} connections, median of {s.lat_rounds} x "
            f"{s.lat_duration} s)"
            + (
                f"; half of the measured maximum would be {lat['rate_capped_from']:,} req/s, "
                "more than the load generator's core can schedule evenly:"
                if lat["rate_capped_from"]
                else ":"
            ),
            "",
            "| target | p50 | p90 | p99 | p99.9 | p99 added by the proxy |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in ("backend", *s.proxies):
            row = lat[name]
            label = "backend direct" if name == "backend" else f"through {names[name]}"
            added = "—" if name == "backend" else _ms(row["p99_added_us"])
            out.append(
                f"| {label} | {_ms(row['p50_us'])} | {_ms(row['p90_us'])} | "
                f"{_ms(row['p99_us'])} | {_ms(row['p999_us'])} | {added} |"
            )
    if run.tls_info:
        out += ["", "TLS: " + "; ".join(f"{names[k]} {v}" for k, v in run.tls_info.items())]
    return "\n".join(out)


def cautions(run: Run, idle: dict[int, float]) -> list[str]:
    """Things that make numbers noisy or biased without making them wrong."""
    found = [
        f"core {c} was {b:.0%} busy before the run started (other processes)"
        for c, b in idle.items()
        if b > 0.05
    ]
    found += [
        f"{t.scheme} {t.proxy} round {t.round}: other processes used "
        f"{t.other_load_on_proxy_core:.0%} of the proxy core"
        for t in run.throughput
        if t.other_load_on_proxy_core > 0.05
    ]
    found += [f"latency {x.target} round {x.round}: {n}" for x in run.latency for n in x.notes]
    return found


def problems(run: Run) -> list[str]:
    found = [
        f"{t.scheme} {t.proxy} round {t.round}: {t.errors}" for t in run.throughput if t.errors
    ]
    found += [
        f"latency {x.target} round {x.round}: {x.errors} failed requests"
        for x in run.latency
        if x.errors
    ]
    return found


# --------------------------------------------------------------------------- main


def _raise_exit(signum: int, _frame: object) -> None:
    # Leave the run; further signals must not interrupt stopping the servers.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    say(f"\nproxy bench: stopped by signal {signum}")
    raise SystemExit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory")
    parser.add_argument("--results", type=Path, required=True, help="where the JSON goes")
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_exit)

    s = Settings.from_env()
    if "quiver" in s.proxies and not shutil.which(s.quiver[0]):
        say(
            f"proxy bench: {s.quiver[0]!r} not found; activate the virtualenv where Quiver is "
            "installed, set QUIVER=/path/to/quiver, or run with PROXIES=nginx"
        )
        return 2
    for cpu in (s.load_cpu, s.proxy_cpu):
        if cpu not in os.sched_getaffinity(0):
            say(f"proxy bench: core {cpu} is not available (cores: {os.sched_getaffinity(0)})")
            return 2

    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    started = dt.datetime.now(dt.UTC)
    env = environment(s)
    idle_meter = CoreMeter((s.load_cpu, s.proxy_cpu))
    idle_meter.start()
    time.sleep(1.0)
    idle = idle_meter.stop()
    for core, busy in idle.items():
        if busy > 0.05:
            say(
                f"!! core {core} is {busy:.0%} busy before the run: other processes are "
                "running, expect noisy numbers"
            )
    say(
        f"proxy bench: {', '.join(s.proxies)}; {s.rounds} rounds x {s.duration} s; "
        f"nginx {env['nginx']}, {env['wrk']}, {env['h2load']}"
    )
    try:
        run.execute()
    except BenchError as exc:
        say(f"\nproxy bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()

    summary = summarize(run)
    stamp = started.strftime("%Y-%m-%d")
    found = problems(run)
    caution = cautions(run, idle)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "settings": {k: getattr(s, k) for k in s.__dataclass_fields__ if k != "quiver"}
        | {"quiver_command": list(s.quiver), "body_bytes": len(BODY)},
        "environment": env,
        "summary": summary,
        "tls": run.tls_info,
        "throughput": [vars(t) for t in run.throughput],
        "latency": [vars(x) for x in run.latency],
        "latency_rate_probes": run.lat_probes,
        "busy_before_run": idle,
        "cautions": caution,
        "errors": found,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"proxy-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, default=list) + "\n")

    say("\n" + markdown(run, summary, env, stamp) + "\n")
    say(f"results: {path}")
    if caution:
        say("\ncautions:")
        for line in caution:
            say(f"  - {line}")
    if found:
        bar = "!" * 72
        say(f"\n{bar}\nERRORS during the run; the numbers above are not trustworthy:")
        for line in found:
            say(f"  - {line}")
        say(bar)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
