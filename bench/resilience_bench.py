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

import datetime as dt
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
from resilience_rig import WRK_ERROR_KEYS, Run, Settings, reload_time, seconds
from resilience_steps import RATIO_ROWS, step_kill, step_ratio, step_reload
from rig import (
    WRK_LUA,
    BenchError,
    Processes,
    say,
)

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
                f"{reload_time(r, 'median')} / {reload_time(r, 'max')} | {_wrk_cells(w)} | "
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
                f"{seconds(r['ejected_after_s'])} / {seconds(r['unhealthy_after_s'])} | "
                f"{seconds(r['back_in_rotation_after_restart_s'])} | "
                f"{seconds(r['first_proxied_request_after_restart_s'])} |"
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
