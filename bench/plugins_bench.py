#!/usr/bin/env python3
"""Plugin benchmark: what authentication plugins cost Quiver per request.

Run it through ``bench/plugins.sh``, which installs the tools and owns the
scratch directory; see ``bench/README.md`` for what every number means.

The rig of ``bench/proxy.sh``, step 1::

    core 0: backend nginx (1 worker, ``return 200`` + 60-byte JSON) + wrk -t1 -c64
    core 1: the proxy under test (nginx with 1 worker, or Quiver with 1 worker)

Configurations (``CONFIGS`` below), measured in alternated rounds in one run:
nginx as a proxy (the reference), Quiver without plugins, Quiver with ``key-auth``
on the route and ``CONSUMERS`` consumers with one key each, Quiver with
``key-auth`` + ``acl`` allowing the consumer's group, and Quiver with ``jwt``
verifying an RS256 token (2048-bit RSA) against the same consumers. The headline is *requests per
proxy CPU-second*; the cost of a plugin configuration is
``1 - (its req/CPU-s / Quiver plain's req/CPU-s)``.

Standard library only; servers, CPU meters and wrk come from ``rig``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

# --------------------------------------------------------------------------- settings


def _env_int(name: str, default: int) -> int:
    return driver.env_int("plugins", name, default)


@dataclass(frozen=True)
class Settings:
    configs: tuple[str, ...]  # keys of CONFIGS to measure, in table order
    quiver: tuple[str, ...]
    duration: int
    rounds: int
    connections: int
    warmup: int
    consumers: int
    load_cpu: int
    proxy_cpu: int
    start_timeout: float
    isolate: bool  # move the machine's other threads off the proxy core for the rounds

    @classmethod
    def from_env(cls) -> Settings:
        known = [c.key for c in CONFIGS]
        wanted = os.environ.get("CONFIGS", "").split() or known
        wrong = [w for w in wanted if w not in known]
        if wrong:
            sys.exit(f"plugins bench: CONFIGS takes some of {' '.join(known)}, got {wrong!r}")
        s = cls(
            configs=tuple(k for k in known if k in wanted),
            quiver=driver.quiver_command(),
            duration=_env_int("DURATION", 10),
            rounds=_env_int("ROUNDS", 3),
            connections=_env_int("CONNECTIONS", 64),
            warmup=_env_int("WARMUP", 2),
            consumers=_env_int("CONSUMERS", 100),
            load_cpu=_env_int("LOAD_CPU", 0),
            proxy_cpu=_env_int("PROXY_CPU", 1),
            start_timeout=driver.env_float("plugins", "START_TIMEOUT", 30.0),
            isolate=_env_int("ISOLATE", 0) == 1,
        )
        if s.duration < 1 or s.rounds < 1:
            sys.exit("plugins bench: DURATION and ROUNDS must be at least 1")
        if s.consumers < 2:
            sys.exit("plugins bench: CONSUMERS must be at least 2 (one outside the allowed group)")
        return s


# --------------------------------------------------------------------------- credentials


GROUPS = 10  # consumer i is in group "group-<i mod GROUPS>"


@dataclass(frozen=True)
class Fixture:
    """Consumers and credentials shared by every configuration of a run.

    Keys are random per run (32 hex digits), never written anywhere but the scratch
    directory. The consumer whose key wrk sends is in the middle of the list; another
    consumer, in a different group, is used to check that ``acl`` refuses it. Every
    consumer also has a ``jwt`` RS256 credential (one RSA key pair made per run with
    ``openssl``; the consumer's name is the token's ``iss``), and ``token`` is a token
    signed for the measured consumer.
    """

    consumers: list[dict[str, Any]]  # the config's `consumers:` entries
    name: str  # the consumer whose key the measured requests carry
    key: str
    group: str
    other_name: str  # a consumer outside `group`
    other_key: str
    token: str  # RS256, iss = name, valid for a day
    forged: str  # the same token with its signature damaged

    @classmethod
    def make(cls, count: int, work: Path) -> Fixture:
        public_pem = _rsa_key_pair(work)
        consumers: list[dict[str, Any]] = [
            {
                "name": f"consumer-{i:04d}",
                "groups": [f"group-{i % GROUPS}"],
                "credentials": {
                    "key-auth": [{"key": secrets.token_hex(16)}],
                    "jwt": [
                        {
                            "key": f"consumer-{i:04d}",
                            "algorithm": "RS256",
                            "public_key": public_pem,
                        }
                    ],
                },
            }
            for i in range(count)
        ]
        me, other = consumers[count // 2], consumers[count // 2 + 1]
        token = _rs256_token(work, {"iss": me["name"], "exp": int(time.time()) + 86400})
        head, _, signature = token.rpartition(".")
        forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
        return cls(
            consumers=consumers,
            name=me["name"],
            key=me["credentials"]["key-auth"][0]["key"],
            group=me["groups"][0],
            other_name=other["name"],
            other_key=other["credentials"]["key-auth"][0]["key"],
            token=token,
            forged=forged,
        )


def _rsa_key_pair(work: Path) -> str:
    """Make work/jwt-key.pem (RSA 2048) and return its public key in PEM."""
    key = work / "jwt-key.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        stdout=key.open("wb"),
        check=True,
    )
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout"], capture_output=True, check=True
    )
    return public.stdout.decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _rs256_token(work: Path, claims: dict[str, Any]) -> str:
    """A compact JWS (RFC 7515) of ``claims`` signed RS256 with work/jwt-key.pem."""
    header = {"alg": "RS256", "typ": "JWT"}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(work / "jwt-key.pem")],
        input=signing_input.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return signing_input + "." + _b64url(signature)


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Check:
    """One request sent before measuring, and the status it must get. A 200 must also
    carry the backend's body byte for byte."""

    what: str
    headers: dict[str, str]
    status: int
    cache: str | None = None  # the X-Cache-Status it must carry, when given


@dataclass(frozen=True)
class Config:
    """One measured configuration.

    ``plugins`` is None for the nginx reference; for Quiver it gives the route's
    ``plugins:`` (empty: no plugins), ``settings`` the process settings beside it.
    ``consumers`` adds the fixture's consumers to
    Quiver's config. ``headers`` are the headers of every measured request (wrk sets
    them in its Lua script, as ``-H`` would). ``checks`` must all pass before the run
    measures anything. ``cost_goal``, when set, is the highest acceptable cost over
    Quiver without plugins (1 - req/CPU-s ÷ plain req/CPU-s).
    """

    key: str
    title: str  # "{consumers}" is replaced by the number of consumers
    plugins: Callable[[Fixture], dict[str, Any]] | None
    checks: Callable[[Fixture], list[Check]]
    consumers: bool = False
    headers: Callable[[Fixture], dict[str, str]] = lambda f: {"apikey": f.key}
    cost_goal: float | None = None
    #: process settings beside the route (access log, metrics, tracing ...), given
    #: the configuration's scratch directory and the run's OTLP collector URL
    settings: Callable[[Path, str], dict[str, Any]] = lambda base, collector: {}


def _with_key(f: Fixture) -> list[Check]:
    return [Check("with the consumer's key", {"apikey": f.key}, 200)]


def _key_auth_checks(f: Fixture) -> list[Check]:
    return [
        Check("without a key", {}, 401),
        Check("with an unknown key", {"apikey": "0" * 32}, 401),
        *_with_key(f),
    ]


def _acl_checks(f: Fixture) -> list[Check]:
    other = f"with the key of {f.other_name}, outside {f.group}"
    return [*_key_auth_checks(f), Check(other, {"apikey": f.other_key}, 403)]


def _jwt_checks(f: Fixture) -> list[Check]:
    return [
        Check("without a token", {}, 401),
        Check("with a damaged signature", {"Authorization": f"Bearer {f.forged}"}, 401),
        Check("with the consumer's RS256 token", {"Authorization": f"Bearer {f.token}"}, 200),
    ]


# Every configuration but jwt sends the same request (the `apikey` header with a valid
# key), so the rows differ only in what the proxy does with it: nginx and Quiver without
# plugins pass the header upstream as any other. The jwt row sends a bearer token instead.
#
# To measure another plugin, add a Config here; the table, the JSON, the checks before
# measuring and the cost over Quiver plain follow from it.
CONFIGS: list[Config] = [
    Config("nginx", "nginx (reference)", None, _with_key),
    Config("plain", "Quiver, no plugins", lambda f: {}, _with_key),
    Config(
        "key_auth",
        "Quiver, `key-auth`, {consumers} consumers",
        lambda f: {"key-auth": {}},
        _key_auth_checks,
        consumers=True,
        cost_goal=0.10,
    ),
    Config(
        "key_auth_acl",
        "Quiver, `key-auth` + `acl` (allow the consumer's group)",
        lambda f: {"key-auth": {}, "acl": {"allow": [f.group]}},
        _acl_checks,
        consumers=True,
    ),
    Config(
        "key_auth_rate_limit",
        "Quiver, `key-auth` + `rate-limit` (local store, per consumer)",
        lambda f: {
            "key-auth": {},
            "rate-limit": {"limit": 1_000_000_000, "window": 60, "by": "consumer"},
        },
        _key_auth_checks,
        consumers=True,
    ),
    Config(
        "cache_hit",
        "Quiver, `proxy-cache` HIT (memory, `default_ttl: 3600`)",
        lambda f: {"proxy-cache": {"default_ttl": 3600}},
        # the first request fills the entry; from the second on, every one is a HIT
        lambda f: [*_with_key(f), Check("again, from the cache", {"apikey": f.key}, 200, "HIT")],
    ),
    Config(
        "jwt_rs256",
        "Quiver, `jwt` (RS256, 2048-bit key), {consumers} consumers",
        lambda f: {"jwt": {"algorithms": ["RS256"]}},
        _jwt_checks,
        consumers=True,
        headers=lambda f: {"Authorization": f"Bearer {f.token}"},
    ),
]


def _observed(base: Path, collector: str) -> dict[str, Any]:
    """Everything that watches the traffic, as production runs it: a JSON access
    log to a file, the call log (spooled by the worker, ingested into a SQLite
    store by the admin API's process, which runs beside it) and the request
    counters of ``GET /metrics``."""
    return {
        "access_log": {"to": str(base / "access.log")},
        "metrics": {"requests": True},
        "admin_listen": f"127.0.0.1:{free_port()}",
        "store": str(base / "quiver.db"),
    }


def _traced(base: Path, collector: str) -> dict[str, Any]:
    """Trace context on every request, 1% sampled into spans for an OTLP collector."""
    return {"tracing": {"sample": 0.01, "otlp": {"endpoint": collector}}}


def _key_auth_rate_limit(f: Fixture) -> dict[str, Any]:
    return {
        "key-auth": {},
        "rate-limit": {"limit": 1_000_000_000, "window": 60, "by": "consumer"},
    }


CONFIGS += [
    Config(
        "traced",
        "Quiver, no plugins, tracing (1% sampled, OTLP/HTTP)",
        lambda f: {},
        _with_key,
        settings=_traced,
    ),
    Config(
        "observed",
        "Quiver, `key-auth` + `rate-limit`, access log (file) + call log + metrics",
        _key_auth_rate_limit,
        _key_auth_checks,
        consumers=True,
        settings=_observed,
    ),
    Config(
        "observed_traced",
        "the same, and tracing (1% sampled, OTLP/HTTP)",
        _key_auth_rate_limit,
        _key_auth_checks,
        consumers=True,
        settings=lambda base, collector: {
            **_observed(base, collector),
            **_traced(base, collector),
        },
    ),
]
CONFIG_BY_KEY = {c.key: c for c in CONFIGS}


def quiver_config(
    config: Config, f: Fixture, port: int, backend: int, base: Path, collector: str
) -> dict[str, Any]:
    assert config.plugins is not None
    route: dict[str, Any] = {"name": "all", "paths": ["/"], "target": "backend"}
    plugins = config.plugins(f)
    if plugins:
        route["plugins"] = plugins
    doc: dict[str, Any] = {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "targets": [{"name": "backend", "url": f"http://127.0.0.1:{backend}"}],
        "routes": [route],
    }
    if config.consumers:
        doc["consumers"] = f.consumers
    doc.update(config.settings(base, collector))
    return doc


# --------------------------------------------------------------------------- run


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of printable ASCII is a valid Lua string


@dataclass
class Run:
    settings: Settings
    work: Path
    procs: Processes
    fixture: Fixture
    backend: Server | None = None
    throughput: list[Throughput] = field(default_factory=list)
    checked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cautions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    collector: str = ""  # the OTLP/HTTP endpoint traced configurations export to
    #: the processes moved off the proxy core for the rounds (ISOLATE=1), else None
    kept_clear: list[str] | None = None

    def start(self, config: Config) -> Server:
        """The proxy of ``config`` on the proxy core, its scratch dir holding the wrk
        script with the configuration's request headers."""
        s, backend = self.settings, self.backend
        assert backend is not None
        base = self.work / config.key
        base.mkdir(parents=True, exist_ok=True)
        headers = "".join(
            f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}\n"
            for k, v in config.headers(self.fixture).items()
        )
        (base / "report.lua").write_text(headers + WRK_LUA)
        port = free_port()
        if config.plugins is None:
            conf = nginx_proxy_conf(base, "nginx", port, backend.port, None)
            return start_nginx(self.procs, s, config.key, conf, port, s.proxy_cpu, False)
        conf = base / "quiver.yaml"
        document = quiver_config(config, self.fixture, port, backend.port, base, self.collector)
        write_config(conf, document)
        return rig.start_quiver(self.procs, s, config.key, conf, port, run_dir=base / "run")

    def verify(self, config: Config, server: Server) -> None:
        """Every check of ``config`` gets its status (and a 200 the backend's body), or
        the run stops here."""
        results = []
        for check in config.checks(self.fixture):
            status, ctype, body, challenge, cache = request(server, check.headers)
            results.append({"check": check.what, "status": status, "expected": check.status})
            wrong = status != check.status or (check.cache is not None and cache != check.cache)
            if status == 200 and not wrong:
                wrong = body != BODY or not ctype.startswith("application/json")
            if wrong:
                raise BenchError(
                    f"{config.key}: GET {server.url} {check.what} returned {status} "
                    f"({ctype or 'no content type'}) {body[:300]!r}; expected {check.status}"
                    + (f" with {BODY!r}" if check.status == 200 else "")
                    + (f" and X-Cache-Status {check.cache} (got {cache})" if check.cache else "")
                    + f"; the proxy's output:\n{rig.tail(server.log)}"
                )
            extra = f" ({challenge})" if challenge else ""
            say(f"    ok: {check.what} -> {status}{extra}")
        self.checked[config.key] = results

    def measure(self, server: Server, seconds: int, rnd: int) -> Throughput:
        """wrk through ``server``, with the script in its configuration's directory."""
        assert self.backend is not None
        work = self.work / server.label
        return run_wrk(self.procs, self.settings, work, server, self.backend, seconds, rnd)

    def execute(self) -> None:
        s = self.settings
        self.backend = rig.start_backend(self.procs, s, self.work)
        collector = Collector()
        self.collector = collector.url
        configs = [CONFIG_BY_KEY[k] for k in s.configs]
        servers = []
        for config in configs:
            server = self.start(config)
            say(f"  {config.key:14} {server.url}  pid {server.proc.pid}")
            self.verify(config, server)
            servers.append(server)

        say(
            f"throughput: wrk -t1 -c{s.connections}, {s.rounds} rounds x {s.duration} s, "
            "configurations alternated"
        )
        with contextlib.ExitStack() as stack:
            if s.isolate:
                self.kept_clear = stack.enter_context(rig.core_kept_clear(s.proxy_cpu))
                say(f"  proxy core kept clear of: {', '.join(self.kept_clear) or 'nothing'}")
            self.throughput = rig.wrk_rounds(s, servers, self.measure, lambda t: f"{t.proxy:14}")
        self.errors += rig.round_errors(self.throughput, lambda t: t.proxy)
        self.cautions += rig.round_cautions(self.throughput, lambda t: t.proxy)
        for server in servers:
            self.procs.stop(server.proc)
        collector.close()
        if collector.exports:
            say(f"  OTLP collector: {collector.exports} exports received")


class Collector:
    """An OTLP/HTTP collector that takes span exports and answers 200 (what is in
    them is not read: the cost measured is the gateway's)."""

    def __init__(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.exports += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.exports = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def request(server: Server, headers: dict[str, str]) -> tuple[int, str, bytes, str, str]:
    """GET / on a new connection: status, content type, body, WWW-Authenticate,
    X-Cache-Status."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise BenchError(
            f"GET {server.url} through {server.label} failed: {exc}; its output:\n"
            + rig.tail(server.log)
        ) from exc
    finally:
        conn.close()
    return (
        resp.status,
        resp.getheader("Content-Type", ""),
        body,
        resp.getheader("WWW-Authenticate", ""),
        resp.getheader("X-Cache-Status", ""),
    )


# --------------------------------------------------------------------------- report


def summarize(run: Run) -> dict[str, Any]:
    s = run.settings
    summary: dict[str, Any] = {}
    for key in s.configs:
        mine = [t for t in run.throughput if t.proxy == key]
        summary[key] = rig.medians(mine)
    by_round: dict[tuple[str, int], float] = {
        (t.proxy, t.round): t.req_per_cpu_s for t in run.throughput
    }
    for key in s.configs:
        row, config = summary[key], CONFIG_BY_KEY[key]
        if key != "nginx" and "nginx" in summary:
            row["over_nginx"] = round(row["req_per_cpu_s"] / summary["nginx"]["req_per_cpu_s"], 3)
        if config.plugins is not None and key != "plain" and "plain" in summary:
            row["cost_over_plain"] = round(
                1 - row["req_per_cpu_s"] / summary["plain"]["req_per_cpu_s"], 4
            )
            # the same ratio within each round (the configurations ran back to back), to
            # show how much the cost moves from round to round
            row["cost_over_plain_by_round"] = [
                round(1 - by_round[key, r] / by_round["plain", r], 4)
                for r in range(1, s.rounds + 1)
            ]
            # their median: a drift of the machine from one round to the next (this
            # VM's moves by a quarter in a minute) touches both sides of a round alike
            row["cost_over_plain_paired"] = round(
                statistics.median(row["cost_over_plain_by_round"]), 4
            )
            if config.cost_goal is not None:
                row["cost_goal"] = config.cost_goal
                row["cost_goal_met"] = row["cost_over_plain"] <= config.cost_goal
    return summary


def describe(config: Config, run: Run) -> dict[str, Any]:
    """What the JSON records about a configuration (not the keys themselves)."""
    f = run.fixture
    return {
        "title": title(config, run.settings),
        "proxy": "nginx" if config.plugins is None else "quiver",
        "route_plugins": None if config.plugins is None else config.plugins(f),
        "consumers": run.settings.consumers if config.consumers else 0,
        "request_headers": sorted(config.headers(f)),
        "cost_goal": config.cost_goal,
        "checks": run.checked.get(config.key, []),
    }


def _pct(value: float) -> str:
    return f"{value:.1%}"


def title(config: Config, s: Settings) -> str:
    return config.title.replace("{consumers}", str(s.consumers))


def markdown(run: Run, summary: dict[str, Any], env: dict[str, Any], stamp: str) -> str:
    s = run.settings
    out = [
        f"Plugin benchmark, {stamp} (`bench/plugins.sh`): {env['cpu_model']}, {env['cpus']} "
        f"cores; {env.get('quiver', 'quiver')}, nginx {env['nginx']}. Proxy pinned to core "
        f"{s.proxy_cpu}; backend (nginx, 1 worker, {len(BODY)}-byte JSON) and wrk -t1 "
        f"-c{s.connections} on core {s.load_cpu}. Every request carries a valid `apikey` "
        f"header; median of {s.rounds} x {s.duration} s rounds, configurations alternated; "
        "higher is better.",
        "",
        "| configuration | requests per proxy CPU-second | requests/s (proxy core) | / nginx "
        "| cost over Quiver plain |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in s.configs:
        row, config = summary[key], CONFIG_BY_KEY[key]
        over = f"{row['over_nginx']:.2f}" if "over_nginx" in row else "—"
        cost = "—"
        if "cost_over_plain" in row:
            cost = f"{_pct(row['cost_over_plain'])} (rounds: {_pct(row['cost_over_plain_paired'])})"
            if "cost_goal" in row:
                cost = f"**{cost}** (goal ≤ {row['cost_goal']:.0%})"
        out.append(
            f"| {title(config, s)} | {row['req_per_cpu_s']:,.0f} | {row['rps']:,.0f} "
            f"({row['proxy_core_busy']:.0%}) | {over} | {cost} |"
        )
    out += [
        "",
        "cost = 1 - (req/CPU-s of the configuration ÷ req/CPU-s of Quiver plain), of the"
        " medians; (rounds:) the median of that ratio taken within each round.",
    ]
    return "\n".join(out)


def goal_lines(run: Run, summary: dict[str, Any]) -> list[str]:
    lines = []
    for key in run.settings.configs:
        row = summary[key]
        if "cost_goal" not in row:
            continue
        rounds = ", ".join(_pct(c) for c in row["cost_over_plain_by_round"])
        verdict = "met" if row["cost_goal_met"] else "MISSED"
        mark = "" if row["cost_goal_met"] else "!! "
        lines.append(
            f"{mark}cost of {title(CONFIG_BY_KEY[key], run.settings)}: "
            f"{_pct(row['cost_over_plain'])} (rounds: {rounds}); "
            f"goal ≤ {row['cost_goal']:.0%}: {verdict}"
        )
    return lines


# --------------------------------------------------------------------------- main


def main() -> int:
    args = driver.parse_args(__doc__, "plugins")
    s = Settings.from_env()
    uses_quiver = any(CONFIG_BY_KEY[k].plugins is not None for k in s.configs)
    if driver.missing("plugins", s, uses_quiver):
        return 2

    procs = Processes(args.workdir / "pids")
    fixture = Fixture.make(s.consumers, args.workdir)
    run = Run(s, args.workdir, procs, fixture)
    started = dt.datetime.now(dt.UTC)
    env = driver.environment(s.quiver, h2load=False)
    idle = driver.busy_before_run(s)
    run.cautions += driver.idle_cautions(idle)
    say(
        f"plugins bench: {', '.join(s.configs)}; {s.consumers} consumers, requests as "
        f"{fixture.name} ({fixture.group}); {env.get('quiver')}, nginx {env['nginx']}, "
        f"{env['wrk']}"
    )
    try:
        run.execute()
    except BenchError as exc:
        say(f"\nplugins bench FAILED: {exc}")
        return 1
    finally:
        procs.stop_all()

    summary = summarize(run)
    result = {
        "started": started.isoformat(timespec="seconds"),
        "settings": driver.settings_record(s),
        "environment": env,
        "configurations": {k: describe(CONFIG_BY_KEY[k], run) for k in s.configs},
        "request_consumer": {"name": fixture.name, "group": fixture.group},
        "summary": summary,
        "throughput": [vars(t) for t in run.throughput],
        "busy_before_run": idle,
        "proxy_core_kept_clear": run.kept_clear,
        "cautions": run.cautions,
        "errors": run.errors,
    }
    path = driver.write_results(args.results, "plugins", started, result)
    say("\n" + markdown(run, summary, env, started.strftime("%Y-%m-%d")) + "\n")
    for line in goal_lines(run, summary):
        say(line)
    return driver.closing_report(path, run.cautions, run.errors)


if __name__ == "__main__":
    sys.exit(main())
