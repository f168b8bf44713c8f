"""Purging a running gateway's cache (``quiver cache purge``).

Redis entries are deleted from Redis directly.  Memory entries live inside the
worker processes, so the command leaves a *purge request* in the run directory
(``<run dir>/cache-purge/<id>.json``: which host and paths); every worker looks
there twice a second, applies the requests made since it started to its memory
stores and answers with ``<id>.<pid>.ack`` holding how many entries it dropped.
The command waits for the answers of the live workers, then removes the files.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from quiver.config.models import Config, Route
from quiver.plugins.proxy_cache.config import ProxyCacheConfig
from quiver.plugins.proxy_cache.stores import Store
from quiver.plugins.proxy_cache.stores.memory import MemoryStore

POLL_INTERVAL = 0.5
DIRECTORY = "cache-purge"
NAME = "proxy-cache"


@dataclass(frozen=True)
class Scope:
    """What to purge: ``paths`` None means every path, ``host`` None every host;
    a path names itself only (``exact``) or also what is under it."""

    host: str | None = None
    paths: tuple[str, ...] | None = None
    exact: bool = False


class PurgeWatcher:
    """A worker's side: applies purge requests to the memory stores it holds."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None, run_dir: Path | None) -> None:
        self.stores: list[MemoryStore] = []
        self.directory = run_dir / DIRECTORY if run_dir is not None else None
        self.started = time.time()
        self.seen: set[str] = set()
        self.loop = loop
        self.handle: asyncio.TimerHandle | None = None
        if loop is not None and self.directory is not None:
            self.handle = loop.call_later(POLL_INTERVAL, self.poll)

    def add(self, store: Store) -> None:
        if isinstance(store, MemoryStore):
            self.stores.append(store)

    def poll(self) -> None:
        try:
            self.apply_pending()
        finally:
            if self.loop is not None:
                self.handle = self.loop.call_later(POLL_INTERVAL, self.poll)

    def apply_pending(self) -> None:
        directory = self.directory
        if directory is None:
            return
        try:
            names = [entry.name for entry in os.scandir(directory) if entry.name.endswith(".json")]
        except OSError:
            return  # no request was ever made
        for name in names:
            if name in self.seen:
                continue
            self.seen.add(name)
            try:
                request = json.loads((directory / name).read_text())
            except (OSError, ValueError):
                continue
            if float(request.get("at", 0)) < self.started:
                continue  # made before this worker started: its memory holds nothing of then
            dropped = sum(
                store.purge_now(request.get("host"), path, bool(request.get("exact")))
                for store in self.stores
                for path in (request.get("paths") or [None])
            )
            ack = directory / f"{name.removesuffix('.json')}.{os.getpid()}.ack"
            ack.write_text(str(dropped))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()


def cache_configs(config: Config, route: str | None = None) -> list[ProxyCacheConfig]:
    """The proxy-cache configs in ``config`` (those a route's requests may use)."""
    found = []
    levels = [config.plugins, *(c.plugins for c in config.consumers)]
    targets = {target.name: target for target in config.targets}
    # (every route has a target once validated: AI routes get theirs from the config)
    for each in config.routes:
        if route is None or each.name == route:
            levels += [targets[each.target or ""].plugins, each.plugins]
    for plugins in levels:
        if NAME in plugins:
            found.append(ProxyCacheConfig.model_validate(plugins[NAME]))
    return found


def route_scope(route: Route) -> Scope:
    """The entries a route can have stored: its path prefixes, on its host if only one."""
    prefixes = []
    for pattern in route.paths:
        literal = pattern.removeprefix("=")
        for index, char in enumerate(literal):
            if char in "{*~(":
                literal = literal[:index]
                break
        prefixes.append(literal)
    hosts = route.hosts or []
    host = hosts[0].lower() if len(hosts) == 1 and "*" not in hosts[0] else None
    return Scope(host, tuple(prefixes))


async def purge_redis(configs: Iterable[ProxyCacheConfig], scope: Scope) -> int:
    """Delete the matching entries of each distinct Redis backend."""
    from quiver.plugins.proxy_cache.stores import cache_prefix
    from quiver.plugins.proxy_cache.stores.redis import RedisStore

    dropped = 0
    done = set()
    for config in configs:
        if config.redis is None:
            continue
        backend = (config.redis.url, cache_prefix(config))
        if backend in done:
            continue
        done.add(backend)
        store = RedisStore(config.redis.url, cache_prefix(config), max(config.redis.timeout, 5.0))
        try:
            for path in scope.paths or (None,):
                dropped += await store.purge(scope.host, path, scope.exact)
        finally:
            await store.aclose()
    return dropped


def purge_workers(run_dir: Path, scope: Scope, pids: list[int], timeout: float = 5.0) -> int:
    """Ask the workers ``pids`` to purge their memory stores; entries they dropped.

    Raises TimeoutError when some did not answer within ``timeout`` seconds."""
    directory = run_dir / DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    request = {"at": time.time(), "host": scope.host, "paths": scope.paths, "exact": scope.exact}
    temporary = directory / f"{name}.tmp"
    temporary.write_text(json.dumps(request))
    # the request must not look older than the workers: they ignore those
    temporary.replace(directory / f"{name}.json")
    acks = {pid: directory / f"{name}.{pid}.ack" for pid in pids}
    deadline = time.monotonic() + timeout
    try:
        while not all(path.exists() for path in acks.values()):
            if time.monotonic() > deadline:
                missing = sorted(pid for pid, path in acks.items() if not path.exists())
                raise TimeoutError(f"worker(s) {missing} did not answer the purge in time")
            time.sleep(0.05)
        return sum(int(path.read_text() or 0) for path in acks.values())
    finally:
        (directory / f"{name}.json").unlink(missing_ok=True)
        for path in acks.values():
            path.unlink(missing_ok=True)
