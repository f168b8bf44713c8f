"""Driver of bench/apply.sh: applies of a large declaration under wrk load.

A nginx answers for every target.  The store (SQLite in the scratch directory, or
the PostgreSQL database STORE names, in a schema of its own) holds a declaration of
ROUTES routes (50 targets, a CORS plugin on every fifth route) before `quiver serve
--store` starts with WORKERS workers; wrk loads one route for the whole run.  Each
apply adds a route that only the new revision has (a probe) and records:

- how long ``quiver apply -c declaration.json`` took, from starting the command to
  its exit: reading the file, the upload, the admin API's validation and the
  store's transaction (the declaration the gateway starts with is written with
  Store.apply before it starts);
- the time from the apply's return until every worker logged ``config reloaded
  from store revision N`` and the probe answers on ten fresh connections in a row;
- each worker's longest event-loop stall, from the ``loop`` field of its status
  document (``quiver status``'s run directory);
- wrk's socket errors, non-2xx answers, p99 and max latency from 1 s before the
  apply to 1 s after it is live, next to those of a run without applies.

Goals: live within 1 s of the apply's return, no stall over 50 ms, no failed request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from reload_bench import declaration as reload_declaration
from reload_bench import free_port, parse_wrk, stalls, start_nginx, status_code

WORKERS = int(os.environ.get("WORKERS", "2"))
ROUTES = int(os.environ.get("ROUTES", "5000"))
APPLIES = int(os.environ.get("APPLIES", "3"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
STORE = os.environ.get("STORE", "")
QUIVER = os.environ.get("QUIVER", "quiver")
GAP = 4.0  # seconds of the wrk run without applies
GOAL_LIVE, GOAL_STALL_MS = 1.0, 50.0


def quiver_apply(admin: str, token: str, document: Path) -> dict[str, Any]:
    """``quiver apply`` of ``document`` through the admin API at ``admin``: the
    ``revision`` it made, ``seconds`` from starting the command to its exit, and
    ``returned`` (time.monotonic() at its exit)."""
    env = {**os.environ, "QUIVER_ADMIN_TOKEN": token}
    started = time.monotonic()
    done = subprocess.run(
        [QUIVER, "apply", "-c", str(document), "--admin", admin, "-m", "apply bench"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    returned = time.monotonic()
    found = re.search(r"revision (\d+) applied", done.stdout)
    if found is None:
        raise RuntimeError(f"quiver apply made no revision: {done.stdout}{done.stderr}")
    return {"revision": int(found.group(1)), "seconds": returned - started, "returned": returned}


def apply_step(store: str, document: Path) -> dict[str, Any]:
    """Apply the declaration in ``document`` to ``store`` in a process of its own
    (before the gateway runs); what it reports, as :func:`quiver_apply`."""
    done = subprocess.run(
        [sys.executable, __file__, "apply", store, str(document)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _admin_url(log: str) -> str:
    found = re.search(r"admin API listening on (http://\S+)", log)
    if found is None:
        raise RuntimeError(f"the admin API did not start:\n{log}")
    return found.group(1)


def apply_main(store_url: str, document: str) -> int:
    """The apply process: Store.apply of the JSON declaration in ``document``."""
    from quiver.store import open_store
    from quiver.target_types import default_catalog

    data = json.loads(Path(document).read_text())
    store = open_store(store_url, default_catalog())
    try:
        started = time.monotonic()
        revision = store.apply(data, author="bench", message="apply bench")
        returned = time.monotonic()
    finally:
        store.close()
    number = revision.number if revision is not None else None
    print(json.dumps({"revision": number, "seconds": returned - started, "returned": returned}))
    return 0


def wait_live(log: Path, revision: int, url: str, timeout: float = 60.0) -> float | None:
    """time.monotonic() once every worker logged revision ``revision`` and ``url``
    answers 200 on ten fresh connections in a row; None on timeout."""
    line = f"config reloaded from store revision {revision} "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text().count(line) >= WORKERS and all(
            status_code(url) == 200 for _ in range(10)
        ):
            return time.monotonic()
        time.sleep(0.005)
    return None


def store_url(work: Path) -> tuple[str, str | None]:
    """The store to use and, on PostgreSQL, the schema made for the run."""
    if not STORE:
        return str(work / "quiver.db"), None
    import psycopg

    schema = f"quiver_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(STORE, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in STORE else "?"
    return f"{STORE}{separator}options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str | None) -> None:
    if schema is None:
        return
    import psycopg

    with psycopg.connect(STORE, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args()
    work: Path = args.workdir
    run_dir = work / "run"
    backend, port = free_port(), free_port()
    start_nginx(work, backend)
    store, schema = store_url(work)
    document = work / "declaration.json"
    document.write_text(json.dumps(reload_declaration(backend, 0, ROUTES)))
    first = apply_step(store, document)
    log = work / "quiver.log"
    token = "qv_" + uuid.uuid4().hex
    env = {**os.environ, "QUIVER_ADMIN_TOKEN": token}
    command = [QUIVER, "serve", "--store", store, "--listen", f"127.0.0.1:{port}"]
    command += ["--admin-listen", "127.0.0.1:0", "--workers", str(WORKERS)]
    command += ["--run-dir", str(run_dir)]
    with open(log, "w") as err:
        proxy = subprocess.Popen(command, stderr=err, env=env, start_new_session=True, cwd=work)
    (work / "pids").write_text(f"{proxy.pid}\n")
    try:
        deadline = time.monotonic() + 120
        started = ("proxy listening on", "admin API listening on")
        while not all(line in log.read_text() for line in started):
            if time.monotonic() > deadline or proxy.poll() is not None:
                print(log.read_text())
                return 1
            time.sleep(0.1)
        admin = _admin_url(log.read_text())
        url = f"http://127.0.0.1:{port}/load"
        load = ["wrk", "-t1", f"-c{CONNECTIONS}", "--latency"]
        subprocess.run([*load, "-d2s", url], capture_output=True, check=True)  # warm-up
        baseline = subprocess.run(
            [*load, f"-d{int(GAP)}s", url], capture_output=True, text=True, check=True
        ).stdout
        before_stalls = stalls(run_dir)
        applies, during = [], []
        for variant in range(1, APPLIES + 1):
            document.write_text(json.dumps(reload_declaration(backend, variant, ROUTES)))
            # wrk from 1 s before the apply until 1 s after every worker serves it
            wrk = subprocess.Popen([*load, "-d600s", url], stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)
            applied = quiver_apply(admin, token, document)
            live_at = wait_live(log, applied["revision"], f"http://127.0.0.1:{port}/probe{variant}")
            time.sleep(1.0)
            wrk.send_signal(signal.SIGINT)  # (wrk prints its summary when interrupted)
            output, _ = wrk.communicate()
            live = None if live_at is None else round(live_at - applied["returned"], 3)
            applies.append(
                {
                    "revision": applied["revision"],
                    "apply_seconds": round(applied["seconds"], 3),
                    "live_seconds": live,
                }
            )
            during.append(parse_wrk(output))
            print(f"apply {variant}: {applies[-1]}", flush=True)
            print(f"  wrk during it: {during[-1]}", flush=True)
        time.sleep(1.2)  # a status document written after the last apply
        longest = stalls(run_dir)
        lives = [a["live_seconds"] for a in applies]
        result = {
            "workers": WORKERS,
            "routes": ROUTES,
            "connections": CONNECTIONS,
            "store": "postgresql" if STORE else "sqlite",
            "first_apply_seconds": round(first["seconds"], 3),
            "applies": applies,
            "longest_stall_ms_before_applies": before_stalls,
            "longest_stall_ms": longest,
            "wrk_without_applies": parse_wrk(baseline),
            "wrk_during_applies": during,
            "goals": {
                "live_within_1s": all(v is not None and v <= GOAL_LIVE for v in lives),
                "stall_at_most_50ms": all(0 <= v <= GOAL_STALL_MS for v in longest.values()),
                "no_failed_request": all(
                    not w["socket_errors"] and w["non_2xx"] == "0" for w in during
                ),
            },
            "master_lines": re.findall(r"config store revision \d+ is valid.*", log.read_text()),
            "reload_lines": re.findall(r"config reloaded from .*", log.read_text()),
        }
        print(json.dumps(result, indent=2))
        args.results.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (args.results / f"apply-{stamp}.json").write_text(json.dumps(result, indent=2))
        return 0
    finally:
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(30)
        except subprocess.TimeoutExpired:
            proxy.kill()
        subprocess.run(["nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-s", "quit"])
        drop_schema(schema)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "apply":
        raise SystemExit(apply_main(sys.argv[2], sys.argv[3]))
    raise SystemExit(main())
