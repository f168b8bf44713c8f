#!/usr/bin/env python3
"""Cache benchmark: what a ``proxy-cache`` HIT costs next to a proxied request.

Run it through ``bench/cache.sh``, which installs the tools and owns the scratch
directory; see ``bench/README.md`` for the rig and what the numbers mean.

The rig of ``bench/proxy.sh``, step 1::

    core 0: backend nginx (1 worker, ``return 200`` + 60-byte JSON) + wrk -t1 -c64
    core 1: the proxy under test (nginx, or Quiver with 1 worker)

Configurations, measured in alternated rounds in one run: nginx as a proxy (the
reference), Quiver without plugins (every request goes to the backend), and Quiver
with ``proxy-cache`` on the route (memory backend; the backend's response carries
no freshness of its own, so ``default_ttl`` gives it an hour: after the first
request every one is a HIT answered in the access phase). The headline is
*requests per proxy CPU-second*; ``hit / plain`` above 1 means a HIT is cheaper.

Standard library only; servers, CPU meters and wrk come from ``rig``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import sys
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
    Processes,
    Server,
    Throughput,
    free_port,
    nginx_proxy_conf,
    run_wrk,
    say,
    start_nginx,
    write_config,
)

#: configuration -> the route's plugins (None: nginx)
CONFIGS: dict[str, dict[str, Any] | None] = {
    "nginx": None,
    "plain": {},
    "cache_hit": {"proxy-cache": {"default_ttl": 3600}},
}
#: the X-Cache-Status every measured response of a configuration must carry
EXPECTED_STATUS = {"nginx": None, "plain": None, "cache_hit": "HIT"}


def _env_int(name: str, default: int) -> int:
    return driver.env_int("cache", name, default)


@dataclass(frozen=True)
class Settings:
    configs: tuple[str, ...]
    quiver: tuple[str, ...]
    duration: int
    rounds: int
    connections: int
    warmup: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        wanted = os.environ.get("CONFIGS", "").split() or list(CONFIGS)
        wrong = [w for w in wanted if w not in CONFIGS]
        if wrong:
            sys.exit(f"cache bench: CONFIGS takes some of {' '.join(CONFIGS)}, got {wrong!r}")
        s = cls(
            configs=tuple(k for k in CONFIGS if k in wanted),
            quiver=driver.quiver_command(),
            duration=_env_int("DURATION", 10),
            rounds=_env_int("ROUNDS", 3),
            connections=_env_int("CONNECTIONS", 64),
            warmup=_env_int("WARMUP", 2),
            load_cpu=_env_int("LOAD_CPU", 0),
            proxy_cpu=_env_int("PROXY_CPU", 1),
            start_timeout=driver.env_float("cache", "START_TIMEOUT", 30.0),
        )
        if s.duration < 1 or s.rounds < 1:
            sys.exit("cache bench: DURATION and ROUNDS must be at least 1")
        return s


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    backend: Server | None = None
    throughput: list[Throughput] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start(self, key: str) -> Server:
        s, backend = self.settings, self.backend
        assert backend is not None
        base = self.work / key
        base.mkdir(parents=True, exist_ok=True)
        (base / "report.lua").write_text(WRK_LUA)
        port = free_port()
        plugins = CONFIGS[key]
        if plugins is None:
            conf = nginx_proxy_conf(base, "nginx", port, backend.port, None)
            return start_nginx(self.procs, s, key, conf, port, s.proxy_cpu, False)
        route: dict[str, Any] = {"name": "all", "paths": ["/"], "target": "backend"}
        if plugins:
            route["plugins"] = plugins
        path = base / "quiver.yaml"
        document = {
            "listen": f"127.0.0.1:{port}",
            "workers": 1,
            "targets": [{"name": "backend", "url": f"http://127.0.0.1:{backend.port}"}],
            "routes": [route],
        }
        write_config(path, document)
        return rig.start_quiver(self.procs, s, key, path, port, run_dir=base / "run")

    def verify(self, key: str, server: Server) -> None:
        """Two requests: the second gets the backend's body, and a HIT where expected."""
        for _ in range(2):
            status, body, cache = request(server)
        if status != 200 or body != BODY or cache != EXPECTED_STATUS[key]:
            raise BenchError(
                f"{key}: GET {server.url} returned {status} {body[:200]!r} with "
                f"X-Cache-Status {cache}; expected 200 {BODY!r} and {EXPECTED_STATUS[key]}"
                f"; the proxy's output:\n{rig.tail(server.log)}"
            )
        say(f"    ok: {key} -> {status}" + (f" ({cache})" if cache else ""))

    def measure(self, server: Server, seconds: int, rnd: int) -> Throughput:
        assert self.backend is not None
        work = self.work / server.label
        return run_wrk(self.procs, self.settings, work, server, self.backend, seconds, rnd)

    def execute(self) -> None:
        s = self.settings
        self.backend = rig.start_backend(self.procs, s, self.work)
        servers = []
        for key in s.configs:
            server = self.start(key)
            say(f"  {key:10} {server.url}  pid {server.proc.pid}")
            self.verify(key, server)
            servers.append(server)
        say(f"throughput: wrk -t1 -c{s.connections}, {s.rounds} rounds x {s.duration} s")
        self.throughput = rig.wrk_rounds(s, servers, self.measure, lambda t: f"{t.proxy:10}")
        self.errors += rig.round_errors(self.throughput, lambda t: t.proxy)
        self.cautions += rig.round_cautions(self.throughput, lambda t: t.proxy)
        for server in servers:
            self.procs.stop(server.proc)


def request(server: Server) -> tuple[int, bytes, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(f"GET {server.url} failed: {exc}\n{rig.tail(server.log)}") from exc
    finally:
        conn.close()
    return resp.status, body, resp.getheader("X-Cache-Status")


def summarize(run: Run) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key in run.settings.configs:
        summary[key] = rig.medians([t for t in run.throughput if t.proxy == key])
    if "nginx" in summary:
        for key in run.settings.configs:
            if key != "nginx":
                ratio = summary[key]["req_per_cpu_s"] / summary["nginx"]["req_per_cpu_s"]
                summary[key]["over_nginx"] = round(ratio, 3)
    if "plain" in summary and "cache_hit" in summary:
        ratio = summary["cache_hit"]["req_per_cpu_s"] / summary["plain"]["req_per_cpu_s"]
        summary["cache_hit"]["over_plain"] = round(ratio, 3)
    return summary


def markdown(run: Run, summary: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    s = run.settings
    out = [
        f"Cache benchmark, {stamp} (`bench/cache.sh`): {env['cpu_model']}, {env['cpus']} "
        f"cores; {env.get('quiver', 'quiver')}, nginx {env['nginx']}. Proxy pinned to core "
        f"{s.proxy_cpu}; backend and wrk -t1 -c{s.connections} on core {s.load_cpu}; "
        f"median of {s.rounds} x {s.duration} s rounds; higher is better.",
        "",
        "| configuration | requests per proxy CPU-second | requests/s (proxy core) | / nginx "
        "| / Quiver plain |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in s.configs:
        row = summary[key]
        over = f"{row['over_nginx']:.2f}" if "over_nginx" in row else "—"
        plain = f"**{row['over_plain']:.2f}**" if "over_plain" in row else "—"
        out.append(
            f"| {key} | {row['req_per_cpu_s']:,.0f} | {row['rps']:,.0f} "
            f"({row['proxy_core_busy']:.0%}) | {over} | {plain} |"
        )
    return "\n".join(out)


def main() -> int:
    args = driver.parse_args(__doc__, "cache")
    s = Settings.from_env()
    uses_quiver = any(CONFIGS[k] is not None for k in s.configs)
    if driver.missing("cache", s, uses_quiver):
        return 2
    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver, h2load=False)
    run.cautions += driver.idle_cautions(driver.busy_before_run(s))
    say(f"cache bench: {', '.join(s.configs)}; {env.get('quiver')}, nginx {env['nginx']}")
    try:
        run.execute()
    except BenchError as exc:
        say(f"\ncache bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()
    summary = summarize(run)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "settings": driver.settings_record(s),
        "environment": env,
        "configurations": {k: CONFIGS[k] for k in s.configs},
        "summary": summary,
        "throughput": [vars(t) for t in run.throughput],
        "cautions": run.cautions,
        "errors": run.errors,
    }
    path = driver.write_results(args.results, "cache", started, result)
    say("\n" + markdown(run, summary, env, started.strftime("%Y-%m-%d")) + "\n")
    return driver.closing_report(path, run.cautions, run.errors)


if __name__ == "__main__":
    sys.exit(main())
