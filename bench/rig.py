#!/usr/bin/env python3
"""What every benchmark driver runs on: the two-core rig of ``bench/proxy.sh``.

Processes pinned to a core and stopped at the end, nginx and Quiver servers with
their configs in the scratch directory, CPU meters (per process tree and per core),
and wrk runs.

Standard library only: this runs before anything else is installed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import ssl
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# 60 bytes, served by the backend and expected byte for byte through every proxy.
BODY = b'{"id":1042,"name":"quiver-bench","tags":["a","b"],"ok":true}'

CLK_TCK = os.sysconf("SC_CLK_TCK")

# wrk prints this line from its done() hook; parsing it beats scraping the text report.
# A script that checks each answer in a response() hook counts the wrong ones in a
# global `bad` of each thread and keeps the threads from setup() in a global `checked`:
# their sum is reported as bad_responses.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local bad = 0
  for _, thread in ipairs(checked or {}) do
    bad = bad + thread:get("bad")
  end
  io.write(string.format(
    "WRK_RESULT {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d," ..
    "\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d," ..
    "\"status_errors\":%d,\"timeouts\":%d,\"bad_responses\":%d," ..
    "\"latency_p50_us\":%d,\"latency_p99_us\":%d,\"latency_max_us\":%d}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


# --------------------------------------------------------------------------- settings


class RigSettings(Protocol):
    """What the rig reads from a driver's settings."""

    @property
    def quiver(self) -> tuple[str, ...]: ...  # command that runs the quiver CLI
    @property
    def connections(self) -> int: ...  # wrk connections
    @property
    def load_cpu(self) -> int: ...  # core of the backends and load generators
    @property
    def proxy_cpu(self) -> int: ...  # core of the proxy under test
    @property
    def start_timeout(self) -> float: ...


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
                f"on 127.0.0.1:{port}; its output:\n{tail(log)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(
        f"nothing accepted connections on 127.0.0.1:{port} within {timeout:.0f} s "
        f"(START_TIMEOUT); output of {_command(proc)}:\n{tail(log)}"
    )


def _command(proc: subprocess.Popen[bytes]) -> str:
    """The command line without the taskset prefix that spawn() adds."""
    args = proc.args
    return shlex.join(args[3:]) if isinstance(args, list) else str(args)


def tail(path: Path, lines: int = 30) -> str:
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


def work_left(meter: CpuMeter, *, idle: float = 0.02, quiet: float = 1.5) -> float:
    """CPU seconds ``meter``'s processes spend from now until they have been idle
    (busy under ``idle``) for ``quiet`` seconds, at most 30 s: the work a round of
    load left them, which is the round's cost too.  ``quiet`` outlasts a turn of
    the work that waits for its next round (spools are handed over and ingested
    once a second)."""
    window = 0.25
    windows = round(quiet / window)  # (the readings a quiet stretch spans, less one)
    meter.start()
    deadline = time.monotonic() + 30.0
    readings = [0.0]
    while time.monotonic() < deadline:
        time.sleep(window)
        readings.append(meter.stop()[0])
        if len(readings) > windows and readings[-1] - readings[-1 - windows] < idle * quiet:
            break
    return readings[-1]


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0.5, 0.99) of ``values``; 0.0 for none."""
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0.0


def core_times(cpus: tuple[int, ...]) -> dict[int, tuple[int, int, int]]:
    """(busy, total, stolen) jiffies per core from /proc/stat, for spotting other load;
    busy counts the time a hypervisor took from the core (steal) too."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            # user nice system idle iowait irq softirq steal (guest is inside user)
            v = [int(x) for x in values[:8]]
            times[int(name[3:])] = (sum(v) - v[3] - v[4], sum(v), v[7])
    return times


class CoreMeter:
    """Busy fraction of whole cores (all processes) between start() and stop();
    ``stolen`` then holds the fraction a hypervisor took from each (part of busy)."""

    def __init__(self, cpus: tuple[int, ...]) -> None:
        self.cpus = cpus
        self.stolen: dict[int, float] = {}

    def start(self) -> None:
        self.before = core_times(self.cpus)

    def stop(self) -> dict[int, float]:
        after = core_times(self.cpus)
        busy, stolen = {}, {}
        for c in self.cpus:
            (b0, t0, s0), (b1, t1, s1) = self.before[c], after[c]
            busy[c] = round((b1 - b0) / max(1, t1 - t0), 3)
            stolen[c] = round((s1 - s0) / max(1, t1 - t0), 3)
        self.stolen = stolen
        return busy


@contextlib.contextmanager
def core_kept_clear(cpu: int) -> Iterator[list[str]]:
    """Move every thread that may run on core ``cpu`` and elsewhere too off it, for
    the ``with`` block, then give each its affinity back; yields the names of the
    processes moved.  Threads bound to that one core (the kernel's per-core ones)
    stay; threads the kernel or their owner will not move stay too.  A process that
    a moved one starts meanwhile keeps the narrower affinity it inherited."""
    moved: list[tuple[int, set[int]]] = []
    names: set[str] = set()
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        tid = int(task.name)
        try:
            allowed = os.sched_getaffinity(tid)
            if cpu not in allowed or len(allowed) == 1:
                continue
            os.sched_setaffinity(tid, allowed - {cpu})
        except OSError:  # gone, a kernel thread, or not ours to move
            continue
        moved.append((tid, allowed))
        with contextlib.suppress(OSError):
            names.add((task.parent.parent / "comm").read_text().strip())
    try:
        yield sorted(names)
    finally:
        for tid, allowed in moved:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, allowed)


def settle(cpu: int, *, below: float = 0.05, window: float = 1.5, timeout: float = 15.0) -> bool:
    """Wait until core ``cpu`` is nearly idle (busy under ``below`` of a ``window``),
    at most ``timeout`` seconds; False when it never was: what a round left running
    (an admin sidecar ingesting the calls it spooled, a file a second) must not share
    the core with the next round's configuration.  What the rounds before wrote
    (access logs, spools, a store's WAL) is written back to disk first (``sync``):
    the kernel would otherwise do it during a later round, whose process its
    interrupts would be charged to."""
    os.sync()
    meter = CoreMeter((cpu,))
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        meter.start()
        time.sleep(window)
        if meter.stop()[cpu] < below:
            return True
    return False


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
    procs: Processes, s: RigSettings, label: str, conf: Path, port: int, cpu: int, tls: bool
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


def start_quiver(
    procs: Processes,
    s: RigSettings,
    label: str,
    conf: Path,
    port: int,
    *,
    tls: bool = False,
    options: tuple[str, ...] = (),
    run_dir: Path | None = None,
) -> Server:
    """``quiver serve -c conf [options]`` on the proxy core; ``run_dir`` sets
    QUIVER_RUN_DIR."""
    log = conf.parent / "quiver.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if run_dir is not None:
        env["QUIVER_RUN_DIR"] = str(run_dir)
    argv = [*s.quiver, "serve", "-c", str(conf), *options]
    proc = procs.spawn(argv, cpu=s.proxy_cpu, out=log, env=env)
    wait_for_port(port, proc, log, s.start_timeout)
    return Server(label, "https" if tls else "http", port, proc, log)


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
            + tail(server.log)
        ) from exc
    finally:
        conn.close()
    ctype = resp.getheader("Content-Type", "")
    if resp.status != 200 or body != BODY or not ctype.startswith("application/json"):
        raise BenchError(
            f"GET {server.url} through {server.label} returned {resp.status} "
            f"({ctype or 'no content type'}) {body[:300]!r}; expected 200 application/json "
            f"{BODY!r}; its output:\n" + tail(server.log)
        )


def start_backend(procs: Processes, s: RigSettings, work: Path) -> Server:
    """The backend nginx (BODY on every path) on the load core, checked."""
    port = free_port()
    backend = start_nginx(procs, s, "backend", backend_conf(work, port), port, s.load_cpu, False)
    check_response(backend)
    say(f"backend nginx {backend.url} on core {s.load_cpu}; proxies on core {s.proxy_cpu}")
    return backend


# --------------------------------------------------------------------------- load


@dataclass
class Throughput:
    proxy: str
    scheme: str
    round: int
    requests: int
    seconds: float
    rps: float
    proxy_cpu_s: float  # while wrk ran, and what the round left it to do after (below)
    req_per_cpu_s: float
    #: CPU seconds the proxy's processes spent after wrk ended, finishing the round's
    #: work (an admin sidecar ingesting the calls spooled in the round's last seconds)
    proxy_cpu_after_s: float
    proxy_core_busy: float  # proxy CPU seconds while wrk ran / wall seconds
    load_core_busy: float  # (backend + wrk) CPU seconds / wall seconds
    proxy_processes: int
    errors: dict[str, int]
    latency_p50_us: int
    latency_p99_us: int
    other_load_on_proxy_core: float  # whole-core busy minus the proxy's own share


def run_wrk(
    procs: Processes,
    s: RigSettings,
    work: Path,
    target: Server,
    backend: Server | None,
    seconds: int,
    rnd: int,
    *,
    wrk_options: tuple[str, ...] = (),
) -> Throughput:
    """wrk through ``target`` with ``work/report.lua``; ``wrk_options`` go before the
    URL (e.g. ``--timeout 30s`` for a slow server). ``backend`` is None for a server
    that answers itself."""
    out = work / f"wrk-{target.label}-{target.scheme}-{rnd}.txt"
    proxy_cpu = CpuMeter(target.proc.pid)
    backend_cpu = CpuMeter(backend.proc.pid) if backend is not None else None
    cores = CoreMeter((s.load_cpu, s.proxy_cpu))
    proxy_cpu.start()
    if backend_cpu is not None:
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
            *wrk_options,
            target.url,
        ],
        cpu=s.load_cpu,
        out=out,
    )
    code, wrk_cpu = procs.wait_rusage(proc, seconds + 60)
    wall = time.monotonic() - t0
    busy = cores.stop()
    during, nprocs = proxy_cpu.stop()
    bcpu = backend_cpu.stop()[0] if backend_cpu is not None else 0.0
    after = work_left(proxy_cpu)
    cpu = during + after
    r = wrk_result(out, code, f"wrk against {target.url}")
    errors = {
        k: r[k]
        for k in (
            "connect_errors",
            "read_errors",
            "write_errors",
            "status_errors",
            "timeouts",
            "bad_responses",
        )
        if r.get(k)
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
        proxy_cpu_after_s=round(after, 2),
        proxy_core_busy=round(during / wall, 3),
        load_core_busy=round((bcpu + wrk_cpu) / wall, 3),
        proxy_processes=nprocs,
        errors=errors,
        latency_p50_us=r["latency_p50_us"],
        latency_p99_us=r["latency_p99_us"],
        other_load_on_proxy_core=round(max(0.0, busy[s.proxy_cpu] - during / wall), 3),
    )


def wrk_result(out: Path, code: int, what: str) -> dict[str, Any]:
    """The WRK_RESULT line of a wrk run's output (see WRK_LUA)."""
    text = out.read_text(errors="replace")
    match = re.search(r"^WRK_RESULT (\{.*\})$", text, re.M)
    if code or not match:
        raise BenchError(f"{what} failed (exit {code}):\n{text}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def wrk_rounds(
    s: Any,
    servers: list[Server],
    measure: Callable[[Server, int, int], Throughput],
    label: Callable[[Throughput], str],
) -> list[Throughput]:
    """An unmeasured warm-up of ``s.warmup`` seconds through each server, then
    ``s.rounds`` rounds of ``s.duration`` seconds, the servers alternated within each
    round, each once the proxy core has settled (``settle``).  ``measure(server,
    seconds, round)`` runs wrk; ``label`` names a row."""
    if s.warmup:
        for server in servers:
            warm = measure(server, s.warmup, 0)
            if warm.errors:
                say(f"  !! warm-up through {server.label}: ERRORS {warm.errors}")
    rows = []
    for rnd in range(1, s.rounds + 1):
        for server in servers:
            if not settle(s.proxy_cpu):
                say(f"  !! the proxy core was still busy 15 s before {server.label}'s round")
            t = measure(server, s.duration, rnd)
            rows.append(t)
            flag = f"  !! ERRORS {t.errors}" if t.errors else ""
            if t.other_load_on_proxy_core > 0.05:
                flag += f"  !! other processes used {t.other_load_on_proxy_core:.0%} of core"
            say(
                f"  round {rnd} {label(t)} {t.rps:>9,.0f} req/s  "
                f"{t.req_per_cpu_s:>9,.0f} req/CPU-s  proxy core {t.proxy_core_busy:4.0%}  "
                f"load core {t.load_core_busy:4.0%}{flag}"
            )
    return rows


def round_cautions(rows: Iterable[Throughput], name: Callable[[Throughput], str]) -> list[str]:
    """Rounds in which other processes took more than 5% of the proxy core."""
    return [
        f"{name(t)} round {t.round}: other processes used "
        f"{t.other_load_on_proxy_core:.0%} of the proxy core"
        for t in rows
        if t.other_load_on_proxy_core > 0.05
    ]


def round_errors(rows: Iterable[Throughput], name: Callable[[Throughput], str]) -> list[str]:
    """Rounds in which wrk saw errors."""
    return [f"{name(t)} round {t.round}: {t.errors}" for t in rows if t.errors]


def medians(rows: list[Throughput]) -> dict[str, float]:
    """Median req/CPU-s, req/s and core shares of one configuration's rounds."""
    return {
        "req_per_cpu_s": round(statistics.median(t.req_per_cpu_s for t in rows), 1),
        "rps": round(statistics.median(t.rps for t in rows), 1),
        "proxy_core_busy": round(statistics.median(t.proxy_core_busy for t in rows), 3),
        "load_core_busy": round(statistics.median(t.load_core_busy for t in rows), 3),
    }


# --------------------------------------------------------------------------- Quiver's config


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars (strings JSON-quoted)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{pad}{key}:", to_yaml(item, indent + 1)]
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = to_yaml(item, indent + 1)
                lines.append(f"{pad}- {nested[len(pad) + 2 :]}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value)  # true/false/null, numbers, quoted strings: all valid YAML


def write_config(path: Path, config: dict[str, Any]) -> None:
    """Replace the file in one rename, as editors and config management tools do:
    a reader sees the old file or the new one, never half of it."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(to_yaml(config) + "\n")
    os.replace(fresh, path)


# --------------------------------------------------------------------------- report


def say(msg: str) -> None:
    print(msg, flush=True)
