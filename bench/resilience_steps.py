"""The resilience benchmark's steps: reloads under load, a node killed under load, and
the requests per CPU-second of balancing and passive health (see resilience_bench)."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rig
from resilience_rig import (
    Backend,
    BackgroundWrk,
    LogEntry,
    LogFollower,
    Run,
    backend_block,
    check_spread,
    core_note,
    fetch,
    is_problem,
    reload_time,
    seconds,
    show_log_problems,
    wrk_errors,
)
from rig import (
    WRK_LUA,
    CpuMeter,
    Server,
    Throughput,
    free_port,
    nginx_main_conf,
    nginx_proxy_conf,
    quiver_conf,
    run_wrk,
    say,
    start_nginx,
    write_config,
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
        f"{len(times)}/{count} reloads logged (median {reload_time(out, 'median')}, "
        f"max {reload_time(out, 'max')}), p99 {result['latency_p99_us'] / 1000:.1f} ms, "
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
            and not (
                e.logger in ("quiver.health", "quiver.breaker", "quiver.exchange")
                and victim.label in e.message
            )
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
        f"    kill -> out of rotation {seconds(out['out_of_rotation_after_s'])} (ejected "
        f"{seconds(out['ejected_after_s'])}, unhealthy {seconds(out['unhealthy_after_s'])}); "
        f"restart -> back in rotation {seconds(out['back_in_rotation_after_restart_s'])}, "
        "first proxied request "
        f"{seconds(out['first_proxied_request_after_restart_s'])}"
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
