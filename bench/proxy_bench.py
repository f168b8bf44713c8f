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

import datetime as dt
import itertools
import math
import os
import re
import statistics
import sys
import time
from collections import Counter
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
    check_response,
    free_port,
    make_certificate,
    nginx_proxy_conf,
    quiver_conf,
    run_wrk,
    say,
    start_nginx,
)

# --------------------------------------------------------------------------- settings


def _env_int(name: str, default: int) -> int:
    return driver.env_int("proxy", name, default)


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
            quiver=driver.quiver_command(),
            warmup=_env_int("WARMUP", 2),
            tls=os.environ.get("TLS", "1") != "0",
            latency=os.environ.get("LATENCY", "1") != "0",
            lat_rate=_env_int("LAT_RATE", 0),
            lat_duration=_env_int("LAT_DURATION", duration),
            lat_rounds=_env_int("LAT_ROUNDS", rounds),
            load_cpu=_env_int("LOAD_CPU", 0),
            proxy_cpu=_env_int("PROXY_CPU", 1),
            start_timeout=driver.env_float("proxy", "START_TIMEOUT", 30.0),
        )


# --------------------------------------------------------------------------- latency


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
                server = rig.start_quiver(self.procs, s, "quiver", conf, port, tls=tls is not None)
            check_response(server)
            if server.tls_info:
                self.tls_info[name] = server.tls_info
            servers.append(server)
            say(f"  {name:6} {server.url}  pid {server.proc.pid}  {server.tls_info}".rstrip())
        return servers

    def throughput_rounds(self, servers: list[Server]) -> None:
        s, backend = self.settings, self.backend
        assert backend is not None

        def measure(server: Server, seconds: int, rnd: int) -> Throughput:
            return run_wrk(self.procs, s, self.work, server, backend, seconds, rnd)

        self.throughput += rig.wrk_rounds(
            s, servers, measure, lambda t: f"{t.scheme:5} {t.proxy:6}"
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
        self.backend = rig.start_backend(self.procs, s, self.work)

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


def _row(t: Throughput) -> str:
    return f"{t.scheme} {t.proxy}"


def cautions(run: Run, idle: dict[int, float]) -> list[str]:
    """Things that make numbers noisy or biased without making them wrong."""
    found = driver.idle_cautions(idle, " (other processes)")
    found += rig.round_cautions(run.throughput, _row)
    found += [f"latency {x.target} round {x.round}: {n}" for x in run.latency for n in x.notes]
    return found


def problems(run: Run) -> list[str]:
    found = rig.round_errors(run.throughput, _row)
    found += [
        f"latency {x.target} round {x.round}: {x.errors} failed requests"
        for x in run.latency
        if x.errors
    ]
    return found


# --------------------------------------------------------------------------- main


def main() -> int:
    args = driver.parse_args(__doc__, "proxy")
    s = Settings.from_env()
    hint = ", set QUIVER=/path/to/quiver, or run with PROXIES=nginx"
    if driver.missing("proxy", s, "quiver" in s.proxies, hint, "cores: "):
        return 2

    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver if "quiver" in s.proxies else None)
    idle = driver.busy_before_run(s, "other processes are running, expect noisy numbers")
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
        "settings": driver.settings_record(s),
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
    path = driver.write_results(args.results, "proxy", started, result)
    say("\n" + markdown(run, summary, env, stamp) + "\n")
    return driver.closing_report(path, caution, found)


if __name__ == "__main__":
    sys.exit(main())
