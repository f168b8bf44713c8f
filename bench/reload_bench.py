"""Driver of bench/reload.sh: reloads of a large config under wrk load.

A nginx answers for every target.  `quiver serve` runs with WORKERS workers on a
config of ROUTES routes (50 targets, a CORS plugin on every fifth route); wrk loads
one route for the whole run.  Each reload rewrites the file with a route that only
the new config has, sends SIGHUP to the master and records:

- the time until every worker logged ``config reloaded`` and the new route answers
  on fresh connections;
- each worker's longest event-loop stall, from the ``loop`` field of its status
  document (``quiver status``'s run directory);
- wrk's socket errors, non-2xx answers, p99 and max latency from 1 s before the
  SIGHUP to 1 s after the new config is live, next to those of a run without reloads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

WORKERS = int(os.environ.get("WORKERS", "2"))
ROUTES = int(os.environ.get("ROUTES", "5000"))
RELOADS = int(os.environ.get("RELOADS", "3"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
QUIVER = os.environ.get("QUIVER", "quiver")
GAP = 4.0  # seconds of the wrk run without reloads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def declaration(backend: int, variant: int, routes: int = ROUTES) -> dict[str, Any]:
    """``routes`` routes over 50 targets at ``backend``: ``/load`` for wrk, a CORS plugin
    on every fifth, and ``/probe<variant>``, which only this variant has."""
    targets = [{"name": f"t{i}", "url": f"http://127.0.0.1:{backend}/api{i}"} for i in range(50)]
    items: list[dict[str, Any]] = [{"name": "load", "paths": ["=/load"], "target": "t0"}]
    for i in range(routes - 2):
        route: dict[str, Any] = {
            "name": f"r{i}",
            "paths": [f"/svc{i // 10}/p{i % 10}/{{id}}"],
            "target": f"t{i % 50}",
        }
        if i % 5 == 0:
            route["plugins"] = {"cors": {"origins": ["https://app.example.com"]}}
        if i % 7 == 0:
            route["methods"] = ["GET", "POST"]
        items.append(route)
    items.append({"name": f"probe{variant}", "paths": [f"=/probe{variant}"], "target": "t0"})
    return {"targets": targets, "routes": items}


def config_text(port: int, backend: int, run_dir: Path, variant: int) -> str:
    settings = {"listen": f"127.0.0.1:{port}", "workers": WORKERS, "run_dir": str(run_dir)}
    return yaml.safe_dump(settings | declaration(backend, variant), sort_keys=False)


def start_nginx(work: Path, port: int) -> None:
    conf = work / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{{"ok":true}}'; }} }}
}}
"""
    )
    subprocess.run(["nginx", "-p", str(work), "-c", str(conf), "-g", "daemon on;"], check=True)


def status_code(url: str) -> int:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            code: int = response.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def stalls(run_dir: Path) -> dict[str, float]:
    found = {}
    for path in sorted(run_dir.glob("worker-*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        loop = document.get("loop") or {}
        found[str(document["pid"])] = loop.get("longest_stall_ms", -1.0)
    return found


def wait_reloaded(log: Path, before: int, url: str, timeout: float = 60.0) -> float | None:
    """Seconds until WORKERS more `config reloaded` lines and `url` answers 200 on
    ten fresh connections in a row; None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        logged = log.read_text().count("config reloaded from") >= before + WORKERS
        if logged and all(status_code(url) == 200 for _ in range(10)):
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def parse_wrk(text: str) -> dict[str, Any]:
    def grab(pattern: str) -> str | None:
        match = re.search(pattern, text)
        return match.group(1) if match else None

    return {
        "requests": grab(r"(\d+) requests in"),
        "socket_errors": grab(r"Socket errors: (.*)"),
        "non_2xx": grab(r"Non-2xx or 3xx responses: (\d+)") or "0",
        "p99": grab(r"\s99%\s+(\S+)"),
        "max": grab(r"Latency\s+\S+\s+\S+\s+(\S+)"),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    work: Path = args.workdir
    run_dir = work / "run"
    backend, port = free_port(), free_port()
    start_nginx(work, backend)
    config = work / "quiver.yaml"
    config.write_text(config_text(port, backend, run_dir, 0))
    log = work / "quiver.log"
    env = {**os.environ, "QUIVER_RUN_DIR": str(run_dir)}
    with open(log, "w") as err:
        proxy = subprocess.Popen(
            [QUIVER, "serve", "-c", str(config)], stderr=err, env=env, start_new_session=True
        )
    (work / "pids").write_text(f"{proxy.pid}\n")
    try:
        deadline = time.monotonic() + 120
        while "listening on" not in log.read_text():
            if time.monotonic() > deadline or proxy.poll() is not None:
                print(log.read_text())
                return 1
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/load"
        load = ["wrk", "-t1", f"-c{CONNECTIONS}", "--latency"]
        subprocess.run([*load, "-d2s", url], capture_output=True, check=True)  # warm-up
        baseline = subprocess.run(
            [*load, f"-d{int(GAP)}s", url], capture_output=True, text=True, check=True
        ).stdout
        before_stalls = stalls(run_dir)
        reloads, during = [], []
        for variant in range(1, RELOADS + 1):
            # wrk from 1 s before the SIGHUP until 1 s after every worker serves the new
            # config: its numbers are those of the swap
            wrk = subprocess.Popen([*load, "-d600s", url], stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)
            count = log.read_text().count("config reloaded from")
            config.write_text(config_text(port, backend, run_dir, variant))
            os.kill(proxy.pid, signal.SIGHUP)
            live = wait_reloaded(log, count, f"http://127.0.0.1:{port}/probe{variant}")
            time.sleep(1.0)
            wrk.send_signal(signal.SIGINT)  # (wrk prints its summary when interrupted)
            output, _ = wrk.communicate()
            reloads.append(live)
            during.append(parse_wrk(output))
            print(f"reload {variant}: live on every worker after {live}s", flush=True)
            print(f"  wrk during it: {during[-1]}", flush=True)
        time.sleep(1.2)  # a status document written after the last reload
        result = {
            "workers": WORKERS,
            "routes": ROUTES,
            "connections": CONNECTIONS,
            "live_seconds": reloads,
            "longest_stall_ms_before_reloads": before_stalls,
            "longest_stall_ms": stalls(run_dir),
            "wrk_without_reloads": parse_wrk(baseline),
            "wrk_during_reloads": during,
            "reload_lines": re.findall(r"config reloaded from .*", log.read_text()),
        }
        print(json.dumps(result, indent=2))
        args.results.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (args.results / f"reload-{stamp}.json").write_text(json.dumps(result, indent=2))
        return 0
    finally:
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(30)
        except subprocess.TimeoutExpired:
            proxy.kill()
        subprocess.run(["nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-s", "quit"])


if __name__ == "__main__":
    raise SystemExit(main())
