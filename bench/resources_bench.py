#!/usr/bin/env python3
"""Instant REST resources benchmark: Quiver's declared resources against json-server
0.17.4, the same 10,000 items, in one run.

Run it through ``bench/resources.sh``, which installs the tools and owns the scratch
directory; see ``bench/README.md`` for what every number means.

Layout on a 2-core machine::

    core 0: wrk
    core 1: the server under test: Quiver (1 worker, SQLite in WAL mode with
            synchronous=FULL) or json-server (one Node.js process)

Three measurements, the servers alternated within each round, each reported as
requests per CPU-second of the server and as requests per second:

1. **get**: ``GET /items/{id}`` with a random id of the 10,000 (goal: Quiver at
   least 5x json-server per CPU-second).
2. **page**: a filtered, sorted page of 20: ``status=S`` (a random one of the three,
   each about a third of the items) by descending price (goal: at least 50x).  Quiver's
   resource declares an index on ``(status, price)``, as its docs advise for the
   filters and sorts clients use.
3. **wide**: the same with a filter that keeps nearly every item, ``price >= P`` (P
   one of 0, 10, 25, 50 of prices up to 1,000), so that json-server sorts nearly the
   whole list per request (goal: at least 50x; Quiver's resource indexes ``price``).
4. **create**: ``POST /items`` of a new item (goal: Quiver at least 1,000 durable
   creates per second on its one core: each 201 answered after the WAL reached the
   disk).  json-server rewrites its whole db.json per write, without fsync.

Standard library only; servers, CPU meters and wrk come from ``rig``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import driver
import rig
from rig import WRK_LUA, BenchError, Processes, Server, Throughput, free_port, say

PROG = "resources"
SERVERS = ("quiver", "json-server")
SCENARIOS = ("get", "page", "wide", "create")
CATEGORIES = 10
STATUSES = ("draft", "active", "archived")
#: the lowest prices of the ``wide`` pages: each keeps 95% of the items or more
FLOORS = (0, 10, 25, 50)
GOALS = {"get": 5.0, "page": 50.0, "wide": 50.0}  # Quiver / json-server per CPU-second, at least
CREATE_GOAL = 1000.0  # Quiver's durable creates per second on one core, at least
JSON_SERVER_SPEC = "json-server@0.17.4"


@dataclass(frozen=True)
class Settings:
    servers: tuple[str, ...]
    scenarios: tuple[str, ...]
    quiver: tuple[str, ...]
    json_server_dir: Path
    items: int
    duration: int
    rounds: int
    connections: int
    warmup: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        def chosen(name: str, known: tuple[str, ...]) -> tuple[str, ...]:
            wanted = os.environ.get(name, "").split() or list(known)
            wrong = [w for w in wanted if w not in known]
            if wrong:
                sys.exit(f"resources bench: {name} takes some of {' '.join(known)}, got {wrong}")
            return tuple(k for k in known if k in wanted)

        home = Path.home() / ".cache/quiver-bench/json-server"
        s = cls(
            servers=chosen("SERVERS", SERVERS),
            scenarios=chosen("SCENARIOS", SCENARIOS),
            quiver=driver.quiver_command(),
            json_server_dir=Path(os.environ.get("JSON_SERVER_DIR") or home),
            items=driver.env_int(PROG, "ITEMS", 10_000),
            duration=driver.env_int(PROG, "DURATION", 10),
            rounds=driver.env_int(PROG, "ROUNDS", 3),
            connections=driver.env_int(PROG, "CONNECTIONS", 16),
            warmup=driver.env_int(PROG, "WARMUP", 2),
            load_cpu=driver.env_int(PROG, "LOAD_CPU", 0),
            proxy_cpu=driver.env_int(PROG, "PROXY_CPU", 1),
            start_timeout=driver.env_float(PROG, "START_TIMEOUT", 60.0),
        )
        if s.duration < 1 or s.rounds < 1 or s.items < CATEGORIES:
            sys.exit("resources bench: DURATION and ROUNDS must be positive, ITEMS >= 10")
        return s


# --------------------------------------------------------------------------- data


def make_items(count: int) -> list[dict[str, Any]]:
    """The same items for both servers; prices are distinct, so that a page sorted by
    price is one answer whichever way a server breaks ties."""
    rng = random.Random(20261206)
    prices = rng.sample(range(count * 10), count)
    return [
        {
            "id": i,
            "name": f"item-{i:05d}",
            "price": prices[i - 1] / 100,
            "category": f"c{rng.randrange(CATEGORIES)}",
            "status": rng.choice(STATUSES),
            "tags": rng.sample(["red", "green", "blue", "small", "large"], 2),
        }
        for i in range(1, count + 1)
    ]


def quiver_config(port: int, database: Path) -> dict[str, Any]:
    return {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "resources_db": str(database),
        "resources": [
            {
                "name": "items",
                "path": "/items",
                "fields": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 60},
                    "price": {"type": "number", "minimum": 0},
                    "category": {"type": "string"},
                    "status": {
                        "type": "string",
                        "enum": ["draft", "active", "archived"],
                        "default": "draft",
                    },
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["name", "price"],
                "unique": ["name"],
                "indexes": [["status", "price"], "price"],
                "limit": {"default": 20, "max": 100},
            }
        ],
    }


# --------------------------------------------------------------------------- wrk scripts


def wide_path(server: str, floor: int) -> str:
    if server == "quiver":
        return f"/items?price[gte]={floor}&sort=-price&limit=20"
    return f"/items?price_gte={floor}&_sort=price&_order=desc&_limit=20"


def page_path(server: str, status: str) -> str:
    if server == "quiver":
        return f"/items?status={status}&sort=-price&limit=20"
    return f"/items?status={status}&_sort=price&_order=desc&_limit=20"


def wrk_script(server: str, scenario: str, items: int, prefix: str) -> str:
    """The Lua that makes ``scenario``'s requests (``prefix`` keeps created names new)."""
    if scenario == "get":
        body = f"""request = function()
  return wrk.format("GET", "/items/" .. math.random(1, {items}))
end
"""
    elif scenario in ("page", "wide"):
        if scenario == "page":
            chosen = [page_path(server, status) for status in STATUSES]
        else:
            chosen = [wide_path(server, floor) for floor in FLOORS]
        paths = ", ".join(json.dumps(path) for path in chosen)
        body = f"""local paths = {{{paths}}}
request = function()
  return wrk.format("GET", paths[math.random(1, #paths)])
end
"""
    else:
        body = f"""local n = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format("POST", "/items", nil,
    '{{"name":"{prefix}-' .. n .. '","price":9.5,"category":"c1","tags":["new"]}}')
end
"""
    return f"math.randomseed({random.randrange(1 << 30)})\n" + body + WRK_LUA


# --------------------------------------------------------------------------- servers


def json_server_bin(s: Settings) -> Path:
    """json-server's CLI, installed with npm into its own directory when missing."""
    cli = s.json_server_dir / "node_modules/json-server/lib/cli/bin.js"
    if not cli.exists():
        if not shutil.which("npm"):
            raise BenchError("npm is needed to install json-server (apt-get install npm)")
        say(f"installing {JSON_SERVER_SPEC} into {s.json_server_dir}")
        s.json_server_dir.mkdir(parents=True, exist_ok=True)
        npm = ["npm", "install", "--no-audit", "--no-fund", "--silent"]
        subprocess.run(
            [*npm, "--prefix", str(s.json_server_dir), JSON_SERVER_SPEC],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return cli


def fetch(server: Server, path: str) -> Any:
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=10) as answer:
        return json.load(answer)


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    items: list[dict[str, Any]] = field(default_factory=list)
    servers: dict[str, Server] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    throughput: dict[str, list[Throughput]] = field(default_factory=dict)
    cautions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def start_quiver(self) -> Server:
        s = self.settings
        base = self.work / "quiver"
        base.mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = base / "quiver.yaml"
        rig.write_config(conf, quiver_config(port, base / "resources.db"))
        seed = base / "items.json"
        seed.write_text(json.dumps({"items": self.items}))
        load = subprocess.run(
            [*s.quiver, "resources", "load", str(seed), "-c", str(conf)],
            capture_output=True,
            text=True,
        )
        if load.returncode:
            raise BenchError(f"quiver resources load failed:\n{load.stderr}")
        return rig.start_quiver(self.procs, s, "quiver", conf, port, run_dir=base / "run")

    def start_json_server(self) -> Server:
        s = self.settings
        cli = json_server_bin(s)
        base = self.work / "json-server"
        base.mkdir(parents=True, exist_ok=True)
        (base / "db.json").write_text(json.dumps({"items": self.items}))
        port = free_port()
        log = base / "json-server.log"
        argv = ["node", str(cli), "db.json", "--port", str(port), "--quiet"]
        proc = self.procs.spawn(
            ["sh", "-c", f'cd "{base}" && exec "$@"', "sh", *argv], cpu=s.proxy_cpu, out=log
        )
        rig.wait_for_port(port, proc, log, s.start_timeout)
        return Server("json-server", "http", port, proc, log)

    def verify(self) -> None:
        """Both answer the same item and the same pages before anything is measured."""
        Item = dict[str, Any]
        wanted: dict[str, tuple[Callable[[str], str], Callable[[Item], bool]]] = {
            "active": (
                lambda name: page_path(name, "active"),
                lambda item: item["status"] == "active",
            ),
            "wide": (lambda name: wide_path(name, 25), lambda item: item["price"] >= 25),
        }
        for name, server in self.servers.items():
            one = fetch(server, "/items/42")
            if one != self.items[41]:
                raise BenchError(f"{name} answered item 42 as {one!r}")
            for label, (path, keep) in wanted.items():
                ids = [item["id"] for item in fetch(server, path(name))]
                kept = sorted(filter(keep, self.items), key=lambda item: -item["price"])
                if ids != [item["id"] for item in kept[:20]]:
                    raise BenchError(f"{name}'s {label} page by price is {ids}")
                self.checks[f"{label}_page_ids"] = ids
        self.checks["item_42"] = self.items[41]

    def measure(self, scenario: str, server: Server, seconds: int, rnd: int) -> Throughput:
        s = self.settings
        work = self.work / server.label
        prefix = f"{scenario}{rnd}-{random.randrange(1 << 30):x}"
        (work / "report.lua").write_text(wrk_script(server.label, scenario, s.items, prefix))
        t = rig.run_wrk(
            self.procs, s, work, server, None, seconds, rnd, wrk_options=("--timeout", "30s")
        )
        t.proxy = f"{server.label} {scenario}"
        return t

    def execute(self) -> None:
        s = self.settings
        self.items = make_items(s.items)
        starters = {"quiver": self.start_quiver, "json-server": self.start_json_server}
        for name in s.servers:
            self.servers[name] = starters[name]()
            say(f"  {name:11} {self.servers[name].url} on core {s.proxy_cpu}")
        self.verify()
        servers = list(self.servers.values())
        for scenario in s.scenarios:
            say(f"{scenario}: wrk -t1 -c{s.connections}, {s.rounds} rounds x {s.duration} s")

            def measure(
                server: Server, seconds: int, rnd: int, scenario: str = scenario
            ) -> Throughput:
                return self.measure(scenario, server, seconds, rnd)

            rows = rig.wrk_rounds(s, servers, measure, lambda t: f"{t.proxy:20}")
            self.throughput[scenario] = [t for t in rows if t.round > 0]
            self.errors += rig.round_errors(rows, lambda t: t.proxy)
            self.cautions += rig.round_cautions(rows, lambda t: t.proxy)
        for server in servers:
            self.procs.stop(server.proc)


# --------------------------------------------------------------------------- report


def summarize(run: Run) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for scenario, rows in run.throughput.items():
        by_server = {
            name: rig.medians([t for t in rows if t.proxy.startswith(name + " ")])
            for name in run.servers
        }
        entry: dict[str, Any] = {"servers": by_server}
        if "quiver" in by_server and "json-server" in by_server:
            rounds = [
                round(q.req_per_cpu_s / j.req_per_cpu_s, 1)
                for q, j in zip(
                    [t for t in rows if t.proxy.startswith("quiver ")],
                    [t for t in rows if t.proxy.startswith("json-server ")],
                    strict=True,
                )
                if j.req_per_cpu_s
            ]
            j = by_server["json-server"]["req_per_cpu_s"]
            ratio = round(by_server["quiver"]["req_per_cpu_s"] / j, 1) if j else 0.0
            entry["ratio"] = {"ratio": ratio, "by_round": rounds}
            if scenario in GOALS:
                entry["ratio"]["goal_met"] = ratio >= GOALS[scenario]
        if scenario == "create" and "quiver" in by_server:
            entry["quiver_creates_per_s_goal_met"] = by_server["quiver"]["rps"] >= CREATE_GOAL
        summary[scenario] = entry
    return summary


def markdown(summary: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    lines = [
        f"Run `resources-{stamp}` on {env['cpu_model']}, json-server {env['json_server']}, "
        f"{env['wrk']}.",
        "",
        "| scenario | server | requests/CPU-s | requests/s | server core busy |",
        "|---|---|---:|---:|---:|",
    ]
    for scenario, entry in summary.items():
        for name, m in entry["servers"].items():
            lines.append(
                f"| {scenario} | {name} | {m['req_per_cpu_s']:,.0f} | {m['rps']:,.0f} | "
                f"{m['proxy_core_busy']:.0%} |"
            )
    return "\n".join(lines)


def goal_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for scenario, goal in GOALS.items():
        ratio = summary.get(scenario, {}).get("ratio")
        if ratio:
            met = ratio["goal_met"]
            lines.append(
                f"{'' if met else '!! '}{scenario}: Quiver / json-server per CPU-second "
                f"{ratio['ratio']:,.1f} (rounds: {', '.join(map(str, ratio['by_round']))}); "
                f"goal ≥ {goal:g}: {'met' if met else 'MISSED'}"
            )
    create = summary.get("create", {})
    if "quiver_creates_per_s_goal_met" in create:
        met = create["quiver_creates_per_s_goal_met"]
        rps = create["servers"]["quiver"]["rps"]
        lines.append(
            f"{'' if met else '!! '}create: Quiver {rps:,.0f} durable creates/s on one core; "
            f"goal ≥ {CREATE_GOAL:,.0f}: {'met' if met else 'MISSED'}"
        )
    return lines


# --------------------------------------------------------------------------- main


def main() -> int:
    args = driver.parse_args(__doc__, PROG)
    s = Settings.from_env()
    if driver.missing(PROG, s, "quiver" in s.servers):
        return 2
    procs = Processes(args.workdir / "pids")
    run = Run(s, args.workdir, procs)
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    env = driver.environment(s.quiver if "quiver" in s.servers else None, h2load=False)
    try:
        if "json-server" in s.servers:
            cli = json_server_bin(s)
            env["json_server"] = json.loads(
                (cli.parents[2] / "package.json").read_text(encoding="utf-8")
            )["version"]
            env["node"] = subprocess.run(
                ["node", "--version"], capture_output=True, text=True
            ).stdout.strip()
        else:
            env["json_server"] = "-"
        idle = driver.busy_before_run(s)
        run.cautions += driver.idle_cautions(idle)
        run.execute()
    except (BenchError, subprocess.CalledProcessError) as exc:
        say(f"\nresources bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()
    summary = summarize(run)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "run": f"resources-{stamp}",
        "settings": driver.settings_record(s) | {"json_server_dir": str(s.json_server_dir)},
        "environment": env,
        "checks": run.checks,
        "summary": summary,
        "throughput": {k: [vars(t) for t in v] for k, v in run.throughput.items()},
        "busy_before_run": idle,
        "cautions": run.cautions,
        "errors": run.errors,
    }
    path = driver.write_results(args.results, PROG, started, result)
    say("\n" + markdown(summary, env, stamp) + "\n")
    for line in goal_lines(summary):
        say(line)
    return driver.closing_report(path, run.cautions, run.errors)


if __name__ == "__main__":
    sys.exit(main())
