"""``quiver cache purge``: what to purge, from which backends, and what to print."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

from quiver.config.models import Config
from quiver.plugins.proxy_cache.purge import (
    Scope,
    cache_configs,
    purge_redis,
    purge_workers,
    route_scope,
)


def purge(
    config: Config,
    run_dir: Path,
    pids: list[int],
    *,
    route: str | None = None,
    url: str | None = None,
    path: str | None = None,
) -> int:
    """Purge the entries named (all when nothing is); the exit status."""
    scope = Scope()
    if route is not None:
        found = [each for each in config.routes if each.name == route]
        if not found:
            print(f"quiver: no route named {route!r} in the config", file=sys.stderr)
            return 1
        scope = route_scope(found[0])
    elif url is not None:
        parts = urlsplit(url)
        if not parts.netloc or not parts.path.startswith("/"):
            print(f"quiver: {url!r} is not an absolute URL (http://host/path)", file=sys.stderr)
            return 1
        scope = Scope(parts.netloc.lower(), (parts.path,), exact=True)
    elif path is not None:
        if not path.startswith("/"):
            print(f"quiver: {path!r} is not a path (it starts with /)", file=sys.stderr)
            return 1
        scope = Scope(None, (path,), exact=True)
    configs = cache_configs(config, route)
    if not configs:
        print("quiver: no proxy-cache plugin in the config", file=sys.stderr)
        return 1
    dropped = 0
    try:
        dropped += asyncio.run(purge_redis(configs, scope))
    except Exception as exc:  # (redis' own errors, unreachable server)
        print(f"quiver: could not purge Redis: {exc}", file=sys.stderr)
        return 1
    if any(each.backend == "memory" for each in configs):
        if not pids:
            print(f"quiver: no running worker reports status in {run_dir}", file=sys.stderr)
            return 1
        try:
            dropped += purge_workers(run_dir, scope, pids)
        except TimeoutError as exc:
            print(f"quiver: {exc}", file=sys.stderr)
            return 1
    print(f"purged {dropped} entr{'y' if dropped == 1 else 'ies'}")
    return 0
