#!/usr/bin/env python3
"""WebSocket benchmark: 10,000 concurrent WebSocket connections held through one
Quiver worker, the echo round trip they get at a fixed message rate, the memory
each one costs, and whether an ordinary HTTP request still answers meanwhile;
against nginx and against the echo server reached directly, in one run.

Run it through ``bench/websocket.sh``, which owns the scratch directory; see
``bench/README.md`` for what every number means.

Layout on a 2-core machine::

    core 0: the echo server (this script with --echo: one process), the load
            clients (this script with --client: CLIENTS processes) and this driver
            (the plain HTTP requests)
    core 1: the proxy under test: Quiver (`workers: 1`, or 2 when one worker's file
            descriptors cannot hold every connection) or nginx (as many workers)

Setups, each with a fresh echo server and proxy:

- ``direct``: clients to the echo server, the baseline round trip;
- ``quiver-opaque``: route ``/ws`` without ``websocket:``, the Upgrade relayed as
  opaque bytes;
- ``quiver-frames``: route ``/ws`` with ``websocket: {max_message_size: ...}``
  (frames parsed); skipped, with the reason, when the installed Quiver refuses that
  key;
- ``nginx``: ``proxy_http_version 1.1`` with the Upgrade and Connection headers set.

Each setup: the clients open ``CONNECTIONS`` WebSockets (spread over several source
addresses, so that the client side never runs out of ephemeral ports), the proxy's
memory is read, then every connection takes its turn sending a text message at an
aggregate ``RATE`` for ``WARMUP`` + ``DURATION`` seconds; each echo's round trip is
timed from the write to the read of the whole echoed frame.  Meanwhile the driver
sends ``HTTP_REQUESTS`` plain ``GET /http`` requests through the same proxy, one at
a time on a fresh connection each, spread evenly over the measured seconds.

The driver is standard library only; the echo server and the clients use uvloop when
the interpreter that runs them has it (by default the one of the Quiver under test).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
import rig
from rig import BenchError, CoreMeter, CpuMeter, Processes, free_port, percentile, say
from websocket_load import (
    KEY,
    ClientPlan,
    accept_value,
    frame,
    next_frame,
    run_client,
    run_loop,
    serve_echo,
)
from websocket_probes import (
    Snapshot,
    http_get,
    http_probe,
    per_connection_kb,
    real_time,
    sockets_open,
)

PROG = "websocket"
SETUPS = ("direct", "quiver-opaque", "quiver-frames", "nginx")
FD_SLACK = 64  # a worker's own descriptors: listeners, epoll, pipes, logs


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    quiver: tuple[str, ...]
    setups: tuple[str, ...]
    connections: int  # WebSockets held open per setup
    rate: float  # messages per second over all connections
    message_bytes: int
    warmup: float
    duration: float
    http_requests: int  # plain GETs through the proxy while the echoes run
    clients: int  # client processes
    sources: int  # client source addresses 127.0.0.2 ...
    fd_limit: int  # RLIMIT_NOFILE of every process this run starts
    max_message_size: str  # the quiver-frames route's websocket.max_message_size
    connect_timeout: float
    concurrency: int
    ws_python: str  # interpreter of the echo server and the clients
    load_cpu: int
    proxy_cpu: int
    start_timeout: float
    isolate: bool  # move the machine's other processes off the proxy core meanwhile

    @classmethod
    def from_env(cls) -> Settings:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard = hard if hard != resource.RLIM_INFINITY else 1 << 20
        quiver = driver.quiver_command()
        setups = tuple(os.environ.get("SETUPS", " ".join(SETUPS)).split())
        s = cls(
            quiver=quiver,
            setups=setups,
            connections=driver.env_int(PROG, "CONNECTIONS", 10_000),
            rate=driver.env_float(PROG, "RATE", 2_000.0),
            message_bytes=driver.env_int(PROG, "MESSAGE_BYTES", 64),
            warmup=driver.env_float(PROG, "WARMUP", 5.0),
            duration=driver.env_float(PROG, "DURATION", 20.0),
            http_requests=driver.env_int(PROG, "HTTP_REQUESTS", 200),
            clients=driver.env_int(PROG, "CLIENTS", 2),
            sources=driver.env_int(PROG, "SOURCES", 4),
            fd_limit=driver.env_int(PROG, "FD_LIMIT", hard),
            max_message_size=os.environ.get("MAX_MESSAGE_SIZE", "1MiB"),
            connect_timeout=driver.env_float(PROG, "CONNECT_TIMEOUT", 10.0),
            concurrency=driver.env_int(PROG, "CONCURRENCY", 200),
            ws_python=os.environ.get("WS_PYTHON", "") or driver.quiver_python(quiver),  # has uvloop
            load_cpu=driver.env_int(PROG, "LOAD_CPU", 0),
            proxy_cpu=driver.env_int(PROG, "PROXY_CPU", 1),
            start_timeout=driver.env_float(PROG, "START_TIMEOUT", 60.0),
            isolate=driver.env_int(PROG, "ISOLATE", 0) == 1,
        )
        if unknown := set(s.setups) - set(SETUPS):
            sys.exit(f"websocket bench: unknown SETUPS {sorted(unknown)}; known: {SETUPS}")
        if s.connections < 1 or s.clients < 1 or s.sources < 1 or s.duration <= 0:
            sys.exit("websocket bench: CONNECTIONS, CLIENTS, SOURCES, DURATION must be positive")
        if not 32 <= s.message_bytes < 126:
            sys.exit("websocket bench: MESSAGE_BYTES must be 32 to 125")
        if s.fd_limit > hard:
            sys.exit(f"websocket bench: FD_LIMIT={s.fd_limit} is above the hard limit {hard}")
        if s.connections // s.clients + FD_SLACK > s.fd_limit:
            sys.exit(
                "websocket bench: each client process needs CONNECTIONS/CLIENTS fds; raise CLIENTS"
            )
        return s


# --------------------------------------------------------------------------- proxies


@dataclass
class Proxy:
    """A proxy under test (or none, for direct): where the clients go, its processes."""

    setup: str
    port: int
    server: rig.Server | None
    workers: int
    http_port: int  # where the plain GETs go: the proxy, or for direct their node

    def worker_pids(self) -> list[int]:
        if self.server is None:
            return []
        root = self.server.proc.pid
        children = [p for p in rig.process_tree(root) if p != root]
        return children or [root]


def quiver_config(
    port: int, echo: int, workers: int, frames: str | None, http: int | None = None
) -> dict[str, Any]:
    ws_route: dict[str, Any] = {"name": "ws", "paths": ["/ws"], "target": "echo"}
    if frames is not None:
        ws_route["websocket"] = {"max_message_size": frames}
    config: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "workers": workers,
        "targets": [
            {
                "name": "echo",
                "url": f"http://127.0.0.1:{echo}",
                "timeouts": {"tunnel_idle": 3600},
            },
            {"name": "http", "url": f"http://127.0.0.1:{http or echo}"},
        ],
        "routes": [ws_route, {"name": "http", "paths": ["/http"], "target": "http"}],
    }
    access_log = os.environ.get("ACCESS_LOG")
    if access_log:  # to split a slow GET into the gateway's time and the node's
        config["access_log"] = {"to": access_log, "format": "json"}
    return config


def nginx_conf(
    work: Path, port: int, echo: int, workers: int, fd_limit: int, http: int | None = None
) -> Path:
    base = work / "nginx"
    (base / "temp").mkdir(parents=True, exist_ok=True)
    temp = "\n".join(
        f"    {kind}_temp_path {base}/temp/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    reuseport = " reuseport" if workers > 1 else ""
    conf = base / "nginx.conf"
    conf.write_text(
        f"""worker_processes {workers};
pid {base}/nginx.pid;
error_log {base}/error.log warn;
worker_rlimit_nofile {fd_limit};
events {{
    worker_connections {fd_limit};
}}
http {{
    access_log off;
    server_tokens off;
{temp}
    upstream http {{
        server 127.0.0.1:{http or echo};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=8192{reuseport};
        location /ws {{
            proxy_pass http://127.0.0.1:{echo};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}
        location /http {{
            proxy_pass http://http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    return conf


def frames_refused(s: Settings, work: Path) -> str:
    """Why the installed Quiver cannot run quiver-frames ('' when it can)."""
    conf = work / "frames-check.json"
    conf.write_text(json.dumps(quiver_config(free_port(), free_port(), 1, s.max_message_size)))
    try:
        run = subprocess.run(
            [*s.quiver, "check", "-c", str(conf)], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`quiver check` did not run: {exc}"
    if run.returncode == 0:
        return ""
    lines = [line.strip() for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    detail = next(
        (line for line in lines if "websocket" in line.lower()), lines[-1] if lines else ""
    )
    detail = detail.removeprefix(f"{conf}:1: ")
    return f"the installed Quiver refuses `websocket:` on a route ({detail})"


# --------------------------------------------------------------------------- one setup


@dataclass
class Client:
    proc: subprocess.Popen[bytes]
    plan: ClientPlan
    log: Path


class Run:
    """The processes and files of one bench run."""

    def __init__(self, s: Settings, procs: Processes, work: Path) -> None:
        self.s = s
        self.procs = procs
        self.work = work
        self.sources = [f"127.0.0.{2 + i}" for i in range(s.sources)]
        self.loop_name = "?"

    def start_echo(self, setup: str) -> tuple[int, rig.Server]:
        port = free_port()
        log = self.work / f"echo-{setup}.log"
        proc = self.procs.spawn(
            [self.s.ws_python, __file__, "--echo", str(port)], cpu=self.s.load_cpu, out=log
        )
        rig.wait_for_port(port, proc, log, self.s.start_timeout)
        return port, rig.Server("echo", "http", port, proc, log)

    def start_http(self, setup: str) -> tuple[int, rig.Server]:
        """The node of the plain GETs: an echo server of its own, at real-time priority
        when the bench may set it, so that a GET's time is the proxy's and not the
        share of core 0 the load clients leave it."""
        port = free_port()
        log = self.work / f"http-{setup}.log"
        proc = self.procs.spawn(
            [self.s.ws_python, __file__, "--http", str(port)], cpu=self.s.load_cpu, out=log
        )
        rig.wait_for_port(port, proc, log, self.s.start_timeout)
        return port, rig.Server("http", "http", port, proc, log)

    def start_proxy(self, setup: str, echo: int, workers: int, http: int | None = None) -> Proxy:
        s = self.s
        port = free_port()
        if setup == "direct":
            return Proxy(setup, echo, None, 0, http or echo)
        if setup == "nginx":
            conf = nginx_conf(
                self.work / f"{setup}-{workers}", port, echo, workers, s.fd_limit, http
            )
            server = rig.start_nginx(self.procs, s, "nginx", conf, port, s.proxy_cpu, False)
        else:
            frames = s.max_message_size if setup == "quiver-frames" else None
            base = self.work / f"{setup}-{workers}"
            base.mkdir(parents=True, exist_ok=True)
            conf = base / "quiver.json"
            conf.write_text(json.dumps(quiver_config(port, echo, workers, frames, http), indent=2))
            server = rig.start_quiver(self.procs, s, setup, conf, port, run_dir=base / "run")
        proxy = Proxy(setup, port, server, workers, port)
        # every worker must be listening before the idle memory is read
        deadline = time.monotonic() + s.start_timeout
        while len(proxy.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return proxy

    def stop(self, *servers: rig.Server | None) -> None:
        for server in servers:
            if server is not None:
                self.procs.stop(server.proc)

    def check(self, proxy: Proxy) -> None:
        """One WebSocket echo and one GET through the proxy before anything is measured
        (and so that what a first request sets up is in the idle memory)."""
        try:
            http_get(proxy.http_port)
        except OSError as exc:
            raise BenchError(f"GET /http through {proxy.setup} failed: {exc}") from exc
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(
                f"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade"
                f"\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            data = b""
            while b"\r\n\r\n" not in data and (chunk := sock.recv(4096)):
                data += chunk
            if not data.startswith(b"HTTP/1.1 101") or accept_value(KEY.encode()) not in data:
                raise BenchError(f"WebSocket handshake through {proxy.setup}: {data[:200]!r}")
            rest = bytearray(data.split(b"\r\n\r\n", 1)[1])
            message = b"check " + b"x" * 58
            sock.sendall(frame(0x1, message, os.urandom(4)))
            while (found := next_frame(rest)) is None and (chunk := sock.recv(4096)):
                rest += chunk
            if found is None or found[1] != message:
                raise BenchError(f"WebSocket echo through {proxy.setup}: {found!r}")

    def clients(self, setup: str, port: int, *, stop: bool) -> list[Client]:
        s = self.s
        tag = f"{setup}-{'probe' if stop else 'run'}"
        started = []
        for index in range(s.clients):
            share = s.connections // s.clients + (1 if index < s.connections % s.clients else 0)
            plan = ClientPlan(
                port=port,
                path="/ws",
                connections=share,
                sources=self.sources,
                rate=s.rate / s.clients,
                offset_ns=int(1e9 / s.rate * index) if s.rate else 0,
                message_bytes=s.message_bytes,
                warmup=s.warmup,
                duration=s.duration,
                connect_timeout=s.connect_timeout,
                concurrency=max(1, s.concurrency // s.clients),
                top_up=stop,
                ready=str(self.work / f"{tag}-{index}.ready"),
                go=str(self.work / f"{tag}.go"),
                result=str(self.work / f"{tag}-{index}.result"),
            )
            for name in (plan.ready, plan.go, plan.result):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
            argv = [s.ws_python, __file__, "--client", json.dumps(dataclasses.asdict(plan))]
            log = self.work / f"client-{tag}-{index}.log"
            started.append(Client(self.procs.spawn(argv, cpu=s.load_cpu, out=log), plan, log))
        return started

    def wait_files(self, clients: list[Client], which: str, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        for client in clients:
            path = Path(getattr(client.plan, which))
            while not path.exists():
                if client.proc.poll() is not None and not path.exists():
                    raise BenchError(
                        f"a client exited with {client.proc.returncode} before its {which} "
                        f"file; its output:\n{rig.tail(client.log)}"
                    )
                if time.monotonic() > deadline:
                    raise BenchError(f"no {which} file from a client within {timeout:.0f} s")
                time.sleep(0.05)
            time.sleep(0.05)  # written in one call, but give the writer its close()
            found.append(json.loads(path.read_text()))
        return found

    def go(self, clients: list[Client], *, stop: bool) -> int:
        """Tells the clients to start sending 0.3 s from now (or to close): returns
        that start on the monotonic clock every process shares."""
        t0 = time.monotonic_ns() + 300_000_000
        go = Path(clients[0].plan.go)
        fresh = go.with_suffix(".tmp")
        fresh.write_text(json.dumps({"t0_ns": t0, "stop": stop}))
        os.replace(fresh, go)
        return t0

    def connect_budget(self) -> float:
        # generous: handshakes in Python on a shared core, plus the timeouts of failures
        return 60 + self.s.connections / 200 + 3 * self.s.connect_timeout

    def capacity(self, setup: str, echo: int) -> dict[str, Any]:
        """How many WebSockets one worker holds within FD_LIMIT: the clients try every
        connection through a one-worker proxy and stop after a run of failures."""
        proxy = self.start_proxy(setup, echo, 1)
        try:
            self.check(proxy)
            pid = proxy.worker_pids()[0]
            idle = sockets_open(pid)
            clients = self.clients(setup, proxy.port, stop=True)
            ready = self.wait_files(clients, "ready", self.connect_budget())
            held_sockets = sockets_open(pid) - idle
            self.go(clients, stop=True)
            for client in clients:
                self.procs.wait_rusage(client.proc, 60)
        finally:
            self.stop(proxy.server)
        errors: dict[str, int] = {}
        for r in ready:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        return {
            "one_worker_held": sum(r["open"] for r in ready),
            "one_worker_handshakes": sum(r["connected"] for r in ready),
            "one_worker_sockets": held_sockets,
            "failed_handshakes": sum(r["failed"] for r in ready),
            "failure_kinds": errors,
        }

    def measure(self, setup: str) -> dict[str, Any]:
        s = self.s
        echo_port, echo = self.start_echo(setup)
        http_port, http_node = self.start_http(setup)
        result: dict[str, Any] = {"setup": setup}
        proxy: Proxy | None = None
        try:
            workers = 1
            if setup != "direct" and 2 * s.connections + FD_SLACK > s.fd_limit:
                say(
                    f"  {s.connections:,} WebSockets need {2 * s.connections + FD_SLACK:,} fds "
                    f"in one worker, the limit is {s.fd_limit:,}: how many one worker holds"
                )
                cap = self.capacity(setup, echo_port)
                say(
                    f"  one worker held {cap['one_worker_held']:,} "
                    f"({cap['failed_handshakes']} handshakes failed: {cap['failure_kinds']}); "
                    "two workers for the measured run"
                )
                result["capacity"] = cap
                workers = 2
            proxy = self.start_proxy(setup, echo_port, workers, http_port)
            result["workers"] = proxy.workers
            self.check(proxy)
            time.sleep(1.0)  # the check's sockets closed on both sides before counting
            pids = proxy.worker_pids()
            idle = Snapshot.take(pids)
            clients = self.clients(setup, proxy.port, stop=False)
            t_connect = time.monotonic()
            ready = self.wait_files(clients, "ready", self.connect_budget())
            connect_s = time.monotonic() - t_connect
            connected = sum(r["connected"] for r in ready)
            time.sleep(1.0)  # let the proxy finish what the last handshakes started
            loaded = Snapshot.take(pids)
            result["connected"] = connected
            result["connect_seconds"] = round(connect_s, 1)
            result["handshake_failures"] = sum(r["failed"] for r in ready)
            say(
                f"  {connected:,} of {s.connections:,} WebSockets open in {connect_s:.1f} s"
                + (
                    f", {result['handshake_failures']} failed"
                    if result["handshake_failures"]
                    else ""
                )
            )
            result["per_worker_connections"] = [
                (loaded.sockets[p] - idle.sockets[p]) // 2  # one to the client, one upstream
                for p in pids
            ]
            result["memory_per_connection"] = per_connection_kb(idle, loaded, connected)
            result["worker_rss_kb"] = {"idle": idle.rss_kb, "loaded": loaded.rss_kb}
            t0 = self.go(clients, stop=False)
            measure_start = time.monotonic() + (t0 - time.monotonic_ns()) / 1e9 + s.warmup
            meter = CpuMeter(proxy.server.proc.pid) if proxy.server is not None else None
            probe: dict[str, Any] = {}
            thread = threading.Thread(
                target=http_probe,
                args=(proxy.http_port, s.http_requests, measure_start, s.duration, probe),
                daemon=True,
            )
            thread.start()
            time.sleep(max(0.0, measure_start - time.monotonic()))
            if meter is not None:
                meter.start()
            cores = CoreMeter((s.proxy_cpu,))
            cores.start()
            time.sleep(s.duration / 2)
            during = Snapshot.take(pids)
            time.sleep(max(0.0, measure_start + s.duration - time.monotonic()))
            cpu = meter.stop()[0] if meter is not None else 0.0
            proxy_core_busy = cores.stop()[s.proxy_cpu]
            stolen = cores.stolen[s.proxy_cpu]
            thread.join(s.duration + 30)
            results = self.wait_files(clients, "result", 60)
            for client in clients:
                self.procs.wait_rusage(client.proc, 60)
        finally:
            self.stop(proxy.server if proxy else None, echo, http_node)
        latencies = [v for r in results for v in r["latencies_us"]]
        sent = sum(r["sent"] for r in results)
        result.update(
            {
                "memory_per_connection_echoing": per_connection_kb(idle, during, connected),
                "messages_sent": sent,
                "messages_echoed": len(latencies),
                "messages_lost": sent - len(latencies),
                "bad_echoes": sum(r["bad_echoes"] for r in results),
                "closed_early": sum(r["closed_early"] for r in results),
                "rate_msg_s": round(sent / s.duration, 1),
                "rtt_p50_us": percentile(latencies, 0.5),
                "rtt_p99_us": percentile(latencies, 0.99),
                "rtt_max_us": float(max(latencies, default=0)),
                "rtt_mean_us": round(statistics.fmean(latencies), 1) if latencies else 0.0,
                "send_late_p99_us": max((r["late_p99_us"] for r in results), default=0),
                "send_late_max_us": max((r["late_max_us"] for r in results), default=0),
                "proxy_cpu_s": round(cpu, 2),
                # the proxy core's busy share that was not the proxy: other processes,
                # and the time the hypervisor ran something else on it (stolen)
                "other_load_on_proxy_core": round(max(0.0, proxy_core_busy - cpu / s.duration), 3),
                "stolen_from_proxy_core": stolen,
                "http_requests": len(probe.get("times_ms", [])),
                "http_errors": probe.get("errors", ["the probe did not finish"]),
                "http_p50_ms": round(percentile(probe.get("times_ms", []), 0.5), 2),
                "http_p99_ms": round(percentile(probe.get("times_ms", []), 0.99), 2),
                "http_max_ms": round(max(probe.get("times_ms", []), default=0.0), 2),
                "http_slowest": probe.get("slowest", []),
            }
        )
        return result


# --------------------------------------------------------------------------- report


def table(s: Settings, rows: list[dict[str, Any]], skipped: dict[str, str]) -> str:
    direct = next((r for r in rows if r["setup"] == "direct"), None)
    lines = [
        f"{s.connections:,} WebSockets per setup, {s.message_bytes}-byte text messages at "
        f"{s.rate:,.0f} msg/s in all ({s.rate / s.connections:.2f} per connection per s), "
        f"{s.duration:g} s measured after {s.warmup:g} s warm-up; "
        f"{s.http_requests} plain GETs meanwhile; fd limit {s.fd_limit:,}.",
        "",
        "| setup | connections held per worker | msg/s | RTT p50 | RTT p99 | added p50 / p99 "
        "vs direct | memory per connection (RSS) | HTTP meanwhile p50 / p99 / max |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["setup"] == "direct":
            held = "(no proxy)"
            memory = "—"
        else:
            per_worker = " + ".join(f"{n:,}" for n in r["per_worker_connections"])
            held = f"{per_worker} ({r['workers']} worker{'s' if r['workers'] > 1 else ''})"
            if cap := r.get("capacity"):
                held += f"; one worker alone held {cap['one_worker_held']:,}"
            rss = r["memory_per_connection"]["rss_kb"]
            memory = f"{rss:.1f} KB" if rss is not None else "?"
        if direct is not None and r is not direct:
            added = (
                f"{(r['rtt_p50_us'] - direct['rtt_p50_us']) / 1000:+.2f} / "
                f"{(r['rtt_p99_us'] - direct['rtt_p99_us']) / 1000:+.2f} ms"
            )
        else:
            added = "—"
        lines.append(
            f"| {r['setup']} | {held} | {r['rate_msg_s']:,.0f} | {r['rtt_p50_us'] / 1000:.2f} ms | "
            f"{r['rtt_p99_us'] / 1000:.2f} ms | {added} | {memory} | "
            f"{r['http_p50_ms']:.2f} / {r['http_p99_ms']:.2f} / {r['http_max_ms']:.2f} ms |"
        )
    for setup, why in skipped.items():
        lines.append(f"| {setup} | skipped: {why} | | | | | | |")
    return "\n".join(lines)


def problems(s: Settings, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(errors, cautions) of the measured setups."""
    errors, cautions = [], []
    for r in rows:
        name = r["setup"]
        if r["connected"] < s.connections:
            errors.append(f"{name}: {r['connected']:,} of {s.connections:,} WebSockets opened")
        for key in ("messages_lost", "bad_echoes", "closed_early"):
            if r[key]:
                errors.append(f"{name}: {key.replace('_', ' ')}: {r[key]}")
        if r["http_errors"]:
            errors.append(
                f"{name}: {len(r['http_errors'])} GETs failed, e.g. {r['http_errors'][0]}"
            )
        if r["send_late_p99_us"] > 1000:
            cautions.append(
                f"{name}: the clients wrote 1% of messages more than "
                f"{r['send_late_p99_us'] / 1000:.1f} ms behind schedule (core {s.load_cpu} busy)"
            )
        if r["other_load_on_proxy_core"] > 0.05:
            stolen = r["stolen_from_proxy_core"]
            cautions.append(
                f"{name}: other work took {r['other_load_on_proxy_core']:.0%} of the proxy "
                f"core (core {s.proxy_cpu}) while measuring, {stolen:.0%} of it taken by the "
                "hypervisor (steal)"
            )
        if r["setup"] != "direct" and r["http_max_ms"] >= 10:
            cautions.append(f"{name}: a plain GET took {r['http_max_ms']:.1f} ms (target < 10 ms)")
    return errors, cautions


def raise_fd_limit(limit: int) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        real_time()
        run_loop(serve_echo(int(sys.argv[2])))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--echo":
        run_loop(serve_echo(int(sys.argv[2])))
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        plan = ClientPlan(**json.loads(sys.argv[2]))
        say(f"client loop: {run_loop(run_client(plan))}")
        return 0
    args = driver.parse_args(__doc__ or "", PROG)
    s = Settings.from_env()
    uses_quiver = any(x.startswith("quiver") for x in s.setups)
    if driver.missing(PROG, s, uses_quiver=uses_quiver):
        return 2
    raise_fd_limit(s.fd_limit)  # inherited by every process started from here
    procs = Processes(args.workdir / "pids")
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver if uses_quiver else None, h2load=False)
    env.pop("wrk", None)  # not used here
    loop_check = subprocess.run(
        [s.ws_python, "-c", "import uvloop; print(uvloop.__version__)"],
        capture_output=True,
        text=True,
    )
    env["client_loop"] = (
        f"uvloop {loop_check.stdout.strip()}" if loop_check.returncode == 0 else "asyncio"
    )
    env["ws_python"] = s.ws_python
    idle = driver.busy_before_run(s)
    say(
        f"websocket bench: {', '.join(s.setups)}; {s.connections:,} WebSockets each, "
        f"{s.rate:,.0f} msg/s for {s.warmup:g} + {s.duration:g} s; fd limit {s.fd_limit:,}; "
        f"{s.clients} client processes ({env['client_loop']}) from "
        f"{s.sources} source addresses"
    )
    run = Run(s, procs, args.workdir)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    os.sched_setaffinity(0, {s.load_cpu})  # the driver's GETs share the clients' core
    kept_clear: list[str] | None = None
    stack = contextlib.ExitStack()
    try:
        if s.isolate:
            kept_clear = stack.enter_context(rig.core_kept_clear(s.proxy_cpu))
            say(f"core {s.proxy_cpu} kept clear of: {', '.join(kept_clear) or 'nothing'}")
        for setup in s.setups:
            if setup == "quiver-frames" and (why := frames_refused(s, args.workdir)):
                say(f"{setup}: skipped: {why}")
                skipped[setup] = why
                continue
            say(f"{setup}:")
            row = run.measure(setup)
            rows.append(row)
            say(
                f"  {row['rate_msg_s']:,.0f} msg/s, RTT p50 {row['rtt_p50_us'] / 1000:.2f} ms "
                f"p99 {row['rtt_p99_us'] / 1000:.2f} ms; GET p50 {row['http_p50_ms']:.2f} ms "
                f"max {row['http_max_ms']:.2f} ms"
                + (
                    f"; {row['memory_per_connection']['rss_kb']} KB per connection, "
                    f"proxy CPU {row['proxy_cpu_s']} s"
                    if setup != "direct"
                    else ""
                )
                + f"; proxy core stolen {row['stolen_from_proxy_core']:.1%}"
            )
    except BenchError as exc:
        say(f"\nwebsocket bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()
        stack.close()
    errors, cautions = problems(s, rows)
    text = table(s, rows, skipped)
    say("")
    say(text)
    for r in rows:
        r.pop("latencies_us", None)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "run": f"websocket-{started.strftime('%Y%m%dT%H%M%SZ')}",
        "settings": driver.settings_record(s),
        "environment": env,
        "setups": rows,
        "skipped": skipped,
        "busy_before_run": idle,
        # the processes moved off the proxy core for the run (ISOLATE=1), else None
        "proxy_core_kept_clear": kept_clear,
        "errors": errors,
        "cautions": cautions,
    }
    path = driver.write_results(args.results, PROG, started, result)
    path.with_suffix(".md").write_text(text + "\n")
    return driver.closing_report(path, driver.idle_cautions(idle) + cautions, errors)


if __name__ == "__main__":
    sys.exit(main())
