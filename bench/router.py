"""Route lookup latency with 5,000 routes.

    python bench/router.py [--routes 5000] [--lookups 200000]

Builds a realistic table (per-service prefixes, templates, exact health checks,
host-bound routes, wildcard hosts, method/header conditions, a few regexes),
checks that every probe finds the route it should, then times ``Router.match``
one call at a time with ``time.perf_counter_ns`` and prints mean, p50 and p99 in
microseconds for hits and misses.  Those include one clock read (shown, not
subtracted); "loop mean" times the same calls in a plain loop, without it.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from quiver.config.models import Route
from quiver.proxy.routing import Router, normalize_path

Probe = tuple[bytes, bytes, bytes, dict[bytes, bytes], str | None]


def route(name: str, paths: list[str], **options: Any) -> Route:
    return Route(name=name, paths=paths, target="backend", **options)


def build_routes(count: int) -> list[Route]:
    routes: list[Route] = []
    services = count // 10
    for i in range(services):
        svc = f"/svc{i}"
        routes += [
            route(f"svc{i}-all", [svc]),
            route(f"svc{i}-orders", [f"{svc}/orders/"], strip_path=True),
            route(f"svc{i}-user", [f"{svc}/users/{{id}}"]),
            route(
                f"svc{i}-post",
                [f"{svc}/users/{{id}}/posts/{{post}}"],
                rewrite="/v2/posts/{post}",
            ),
            route(f"svc{i}-health", [f"={svc}/health"]),
            route(f"svc{i}-write", [f"{svc}/items"], methods=["POST", "PUT"]),
            route(f"svc{i}-items", [f"{svc}/items"]),
            route(f"svc{i}-beta", [f"{svc}/items"], headers={"x-beta": ["1", "~^yes"]}),
            route(f"svc{i}-host", ["/"], hosts=[f"api{i}.example.com"]),
        ]
        if i % 10 == 0:
            routes.append(route(f"svc{i}-legacy", [f"~^/legacy{i}/v[0-9]+/"]))
        else:
            routes.append(route(f"svc{i}-tenant", ["/"], hosts=[f"*.t{i}.example.com"]))
    return routes


def build_probes(services: int, rng: random.Random) -> tuple[list[Probe], list[Probe]]:
    hits: list[Probe] = []
    misses: list[Probe] = []
    for _ in range(2000):
        i = rng.randrange(services)
        svc = f"/svc{i}".encode()
        n = str(rng.randrange(10**6)).encode()
        hits += [
            (b"GET", b"", svc + b"/users/" + n, {}, f"svc{i}-user"),
            (b"GET", b"", svc + b"/users/" + n + b"/posts/9", {}, f"svc{i}-post"),
            (b"GET", b"", svc + b"/orders/" + n, {}, f"svc{i}-orders"),
            (b"GET", b"", svc + b"/health", {}, f"svc{i}-health"),
            (b"POST", b"", svc + b"/items/" + n, {}, f"svc{i}-write"),
            (b"GET", b"", svc + b"/items", {b"x-beta": b"yes-please"}, f"svc{i}-beta"),
            (b"GET", b"", svc + b"/other/deep/path", {}, f"svc{i}-all"),
            (b"GET", f"api{i}.example.com".encode(), b"/x/y", {}, f"svc{i}-host"),
        ]
        if i % 10 == 0:
            hits.append((b"GET", b"", f"/legacy{i}/v3/a".encode(), {}, f"svc{i}-legacy"))
        else:
            host = f"a.b.t{i}.example.com".encode()
            hits.append((b"GET", host, b"/q", {}, f"svc{i}-tenant"))
        misses += [
            (b"GET", b"", b"/nosuch/" + n, {}, None),
            (b"GET", b"", svc + b"x/users/" + n, {}, None),
            (b"GET", b"unknown.example.org", b"/a/b/c/d", {}, None),
        ]
    return hits, misses


def timed(lookup: Callable[[Probe], object], probes: list[Probe], total: int) -> list[int]:
    clock = time.perf_counter_ns
    samples: list[int] = []
    rounds = total // len(probes) + 1
    for _ in range(rounds):
        for probe in probes:
            start = clock()
            lookup(probe)
            samples.append(clock() - start)
    return samples[:total]


def looped(run: Callable[[list[Probe]], object], probes: list[Probe], total: int) -> float:
    """Mean microseconds per probe when ``run`` goes through them in a plain loop."""
    rounds = max(1, total // len(probes))
    start = time.perf_counter_ns()
    for _ in range(rounds):
        run(probes)
    return (time.perf_counter_ns() - start) / (rounds * len(probes)) / 1000


def row(label: str, samples: list[int], loop_mean: float) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] / 1000
    p99 = ordered[int(len(ordered) * 0.99)] / 1000
    mean = statistics.fmean(samples) / 1000
    return f"{label:<26}{mean:>9.2f}{p50:>9.2f}{p99:>9.2f}{loop_mean:>11.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=5000)
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()

    routes = build_routes(args.routes)
    started = time.perf_counter()
    router: Router[str] = Router([(route, route.name) for route in routes])
    compile_ms = (time.perf_counter() - started) * 1000
    hits, misses = build_probes(args.routes // 10, random.Random(7))
    for method, host, path, headers, expected in hits + misses:
        found = router.match(method, host, path, headers)
        got = found.value if found else None
        if got != expected:
            raise SystemExit(f"wrong route for {method!r} {host!r} {path!r}: {got} != {expected}")

    def lookup(probe: Probe) -> object:
        return router.match(probe[0], probe[1], probe[2], probe[3])

    def normalize(probe: Probe) -> object:
        return normalize_path(probe[2])

    def match_all(probes: list[Probe]) -> None:
        match = router.match
        for method, host, path, headers, _ in probes:
            match(method, host, path, headers)

    def normalize_all(probes: list[Probe]) -> None:
        for probe in probes:
            normalize_path(probe[2])

    dotted: list[Probe] = [(b"GET", b"", b"/svc1/./a/%2e%2E/users/%7e%41", {}, None)]
    clock = time.perf_counter_ns
    gc.collect()
    gc.freeze()
    overhead = min(-clock() + clock() for _ in range(10000)) / 1000
    print(
        f"{len(routes)} routes ({len(router.table())} path/host entries), compiled in "
        f"{compile_ms:.0f} ms; {args.lookups} lookups per row; clock read {overhead:.2f} us"
    )
    print(f"{'':<26}{'mean us':>9}{'p50 us':>9}{'p99 us':>9}{'loop mean':>11}")
    n = args.lookups
    for label, one, run, probes in [
        ("match, hit", lookup, match_all, hits),
        ("match, miss", lookup, match_all, misses),
        ("normalize_path, plain", normalize, normalize_all, hits),
        ("normalize_path, %-escapes", normalize, normalize_all, dotted),
    ]:
        print(row(label, timed(one, probes, n), looped(run, probes, n)))


if __name__ == "__main__":
    main()
