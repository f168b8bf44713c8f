"""The ``quiver`` command line.

Each command imports the planes it uses inside its function: ``quiver --version``
and ``--help`` load nothing beyond argparse (tests/test_cli.py checks it).
"""

from __future__ import annotations

import argparse
import os  # loaded with the interpreter anyway; pathlib costs about 2 ms
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quiver import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

    from quiver.config.models import Config, Listen
    from quiver.plugins.catalog import Catalog

DEFAULT_CONFIG = "quiver.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from quiver.errors import ConfigError
    from quiver.logconfig import configure_logging

    configure_logging(verbose=getattr(args, "verbose", False))
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"quiver: invalid config ({len(exc.issues)} problem(s)):", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quiver", description="Quiver: API gateway, AI gateway and API platform."
    )
    parser.add_argument("--version", action="version", version=f"quiver {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the gateway",
        description=(
            "Run the gateway. Without -c, ./quiver.yaml is used when present. A config "
            "file with a declaration is served as it is (file mode); without one (or with "
            "--store, or a file holding only settings and store:) the declaration comes "
            "from the config store (store mode: ./quiver.db by default, seeded with a "
            "built-in demo target, admin API on 127.0.0.1:8081)."
        ),
    )
    _config_option(serve, required=False)
    serve.add_argument(
        "--store",
        metavar="URL",
        help="config store: a SQLite file path or a postgresql:// URL (default quiver.db); "
        "overrides the config's store",
    )
    serve.add_argument(
        "--admin-listen",
        metavar="HOST:PORT",
        help="run the admin API on this address (store mode default 127.0.0.1:8081); "
        "overrides the config's admin_listen",
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        help='worker processes sharing the port (a number or "auto"); overrides the config',
    )
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="accept plain HTTP on this address instead of the config's listen entries",
    )
    serve.add_argument(
        "--drain-timeout",
        metavar="DURATION",
        help='on SIGTERM, how long requests in flight may take to finish (e.g. "30s"); '
        "overrides the config's drain_timeout",
    )
    serve.add_argument(
        "--access-log",
        metavar="TO",
        help="write an access log line per request to stdout, stderr, syslog or a file; "
        "sets the config's access_log.to (the section's other keys stay)",
    )
    serve.add_argument(
        "--takeover",
        action="store_true",
        help="share the listen addresses with a running `quiver serve` that this one "
        "replaces (stop the old one once this one is listening); without it, an "
        "address in use is an error",
    )
    _run_dir_option(serve)
    serve.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    serve.set_defaults(handler=_serve)

    check = commands.add_parser(
        "check",
        help="validate a config file",
        description="Validate a config file (./quiver.yaml without -c) and list every problem.",
    )
    _config_option(check, required=False)
    check.set_defaults(handler=_check)

    routes = commands.add_parser(
        "routes",
        help="print the compiled route table",
        description="Print the route table in the order requests are matched against it.",
    )
    _config_option(routes, required=False)
    routes.set_defaults(handler=_routes)

    plugins = commands.add_parser(
        "plugins",
        help="list the available plugins and their config",
        description="List every plugin (built in or installed) with its phases and config keys.",
    )
    plugins.add_argument("name", nargs="?", help="show only this plugin")
    plugins.add_argument("--json", action="store_true", help="print JSON Schemas instead")
    plugins.set_defaults(handler=_plugins)

    keys = commands.add_parser(
        "keys",
        help="make an API key for a consumer",
        description="Print a new random API key and the key_hash to put in the config.",
    )
    keys.add_argument("action", choices=["new"], help="new: make a key")
    keys.set_defaults(handler=_keys)

    status = commands.add_parser(
        "status",
        help="show the nodes of each target as the running workers see them",
        description=(
            "Show each target's nodes (up, requests in flight, pooled connections, circuit "
            "breaker, health checks) from the status the workers of a running "
            "`quiver serve` write every second."
        ),
    )
    _config_option(status, required=False)
    _run_dir_option(status)
    status.add_argument("--json", action="store_true", help="print the raw worker documents")
    status.set_defaults(handler=_status)

    cache = commands.add_parser(
        "cache",
        help="manage the response cache of a running gateway",
        description="Purge entries of the proxy-cache plugin: Redis entries directly, "
        "memory entries through the workers of the running `quiver serve`.",
    )
    cache.add_argument("action", choices=["purge"], help="purge: drop entries")
    _config_option(cache, required=False)
    _run_dir_option(cache)
    which = cache.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every entry (the default)")
    which.add_argument("--route", metavar="NAME", help="the entries under a route's paths")
    which.add_argument("--url", metavar="URL", help="the entries of one URL (host and path)")
    which.add_argument("--path", metavar="PATH", help="the entries of one path, on any host")
    cache.set_defaults(handler=_cache)

    from quiver.admin.commands import add_commands as add_admin_commands
    from quiver.declarative.commands import add_commands
    from quiver.sync.commands import add_commands as add_sync_commands

    add_commands(commands)
    add_admin_commands(commands)
    add_sync_commands(commands)
    from quiver.resources.commands import add_commands as add_resource_commands

    add_resource_commands(commands, lambda args: _load(_config_path(args), _catalog()), _serve_data)
    return parser


def _run_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir",
        metavar="DIR",
        help="where workers write their status (default: from the first listen address)",
    )


def _config_option(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-c", "--config", metavar="FILE", required=required, help="config file (YAML or JSON)"
    )


def _load(path: str, catalog: Catalog) -> Config:
    from quiver.config import load_config

    return load_config(path, catalog)


def _serve_data(data: dict[str, Any]) -> int:
    """Serves a config a command made (``quiver resources serve db.json``)."""
    from quiver.config.loader import validate

    catalog = _catalog()
    return serve_config(validate(data, catalog), path=None, catalog=catalog, overrides={})


def _catalog() -> Catalog:
    from quiver.target_types import default_catalog

    return default_catalog()


def _config_path(args: argparse.Namespace) -> str:
    """``-c``, else $QUIVER_CONFIG, else ./quiver.yaml."""
    return str(args.config or os.environ.get("QUIVER_CONFIG") or DEFAULT_CONFIG)


def _keys(args: argparse.Namespace) -> int:
    import hashlib
    import secrets

    key = secrets.token_urlsafe(32)
    print(f"key:      {key}")
    print(f"key_hash: sha256:{hashlib.sha256(key.encode()).hexdigest()}")
    print("Give the key to the consumer now: only its hash belongs in the config.", file=sys.stderr)
    return 0


def _plugins(args: argparse.Namespace) -> int:
    import json

    from quiver.config.apis import API_PLUGIN
    from quiver.config.reference import describe_default

    plugins = {name: cls for name, cls in _catalog().items() if name != API_PLUGIN}
    if args.name is not None:
        if args.name not in plugins:
            print(f"quiver: no plugin named {args.name!r}", file=sys.stderr)
            return 1
        plugins = {args.name: plugins[args.name]}
    if args.json:
        schemas = {name: cls.Config.model_json_schema() for name, cls in plugins.items()}
        print(json.dumps(schemas, indent=2))
        return 0
    for name, cls in sorted(plugins.items(), key=lambda item: -item[1].priority):
        print(f"{name}  (priority {cls.priority}; phases: {', '.join(cls.phases())})")
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        if doc:
            print("  " + " ".join(doc.split()))
        for key, field in cls.Config.model_fields.items():
            default = describe_default(field, nested=None).replace("`", "")
            if default != "required":
                default = "default " + default
            print(f"    {key} ({default}): {field.description}")
    return 0


def _status(args: argparse.Namespace) -> int:
    import json

    from quiver.config.loader import load_settings
    from quiver.proxy.status import default_run_dir, read_status, render

    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        # only the settings: the secrets the rest of the file names need not be set here
        path = _config_path(args)
        if args.config or Path(path).is_file():
            settings = load_settings(path)
            address, configured = settings.listen[0].address, settings.run_dir
        else:
            address, configured = "127.0.0.1:8080", None
        run_dir = Path(configured) if configured else default_run_dir(address)
    workers = read_status(run_dir)
    if not workers:
        print(f"quiver: no running worker reports status in {run_dir}", file=sys.stderr)
        return 1
    print(json.dumps(workers, indent=2) if args.json else render(workers))
    return 0


def _cache(args: argparse.Namespace) -> int:
    from quiver.plugins.proxy_cache.cli import purge
    from quiver.proxy.status import default_run_dir, read_status

    config = _load(_config_path(args), _catalog())
    run_dir = Path(args.run_dir or config.run_dir or default_run_dir(config.listen[0].address))
    pids = [int(worker["pid"]) for worker in read_status(run_dir)]
    return purge(config, run_dir, pids, route=args.route, url=args.url, path=args.path)


def _check(args: argparse.Namespace) -> int:
    path = _config_path(args)
    config = _load(path, _catalog())
    if config.resources:
        from quiver.config.resources import DEFAULT_DATABASE
        from quiver.resources.migrate import pending_refusals

        database = config.resources_db or DEFAULT_DATABASE
        refused = pending_refusals(database, config.resources, config.resources_migrate)
        if refused:
            print(f"quiver: {len(refused)} change(s) of the resources refused:", file=sys.stderr)
            for issue in refused:
                print(f"  {issue}", file=sys.stderr)
            return 1
    print(
        f"{path}: OK ({len(config.targets)} targets, {len(config.routes)} routes, "
        f"{len(config.listen)} listen addresses)"
    )
    return 0


def _routes(args: argparse.Namespace) -> int:
    from quiver.proxy.routing import Router

    config = _load(_config_path(args), _catalog())
    rows = Router([(route, route.target) for route in config.routes]).table()
    if not rows:
        print("no routes")
        return 0
    columns = list(rows[0])
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row_cells in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row_cells, widths, strict=True)).rstrip())
    return 0


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _serve(args: argparse.Namespace) -> int:
    import logging

    log = logging.getLogger("quiver")
    path = args.config or os.environ.get("QUIVER_CONFIG") or None
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    catalog = _catalog()
    overrides: dict[str, object] = {}  # kept over the file's settings on reload too
    if args.listen is not None:
        overrides["listen"] = [_listen(args.listen)]
    if args.drain_timeout is not None:
        overrides["drain_timeout"] = _seconds(args.drain_timeout)
    if args.store is not None:
        overrides["store"] = _checked("--store", args.store, "store")
    if args.admin_listen is not None:
        overrides["admin_listen"] = _checked("--admin-listen", args.admin_listen, "admin_listen")
    if path is None or _is_bootstrap(path):
        return _serve_store(args, path, overrides, catalog)
    config = _load(path, catalog)
    log.info("config loaded from %s", path)
    if args.access_log is not None:  # (its other keys from the file, if it has them)
        overrides["access_log"] = _access_log(args.access_log, config.access_log)
    config = config.model_copy(update=overrides)
    return serve_config(
        config,
        path=path,
        catalog=catalog,
        overrides=overrides,
        takeover=args.takeover,
        workers=args.workers,
        admin=args.admin_listen is not None or "admin_listen" in config.model_fields_set,
        run_dir=args.run_dir,
    )


def serve_config(
    config: Config,
    *,
    path: str | None,
    catalog: Catalog,
    overrides: dict[str, object],
    takeover: bool = False,
    workers: str | None = None,
    admin: bool = False,
    run_dir: str | None = None,
) -> int:
    """Serve ``config`` (read from ``path``, None: made by a command) in file mode:
    one worker, or a supervisor with workers and the admin API beside them."""
    import logging

    from quiver.proxy.exclusive import refuse_taken
    from quiver.proxy.server import BoundAddress, listen_socket

    log = logging.getLogger("quiver")
    refuse_taken(config.listen, takeover=takeover)
    if config.resources:  # schema changes once, before any worker, refused ones stop here
        import sqlite3

        from quiver.config.resources import DEFAULT_DATABASE
        from quiver.resources.storage import open_database

        database = config.resources_db or DEFAULT_DATABASE
        try:
            open_database(database, config.resources, config.resources_migrate).close()
        except sqlite3.Error as exc:  # (PostgreSQL's errors come as sqlite3's too)
            print(f"quiver: the resources database: {exc}", file=sys.stderr)
            return 1
    count = _worker_count(workers if workers is not None else config.workers)

    from quiver.proxy.tls import warn_unverified

    warn_unverified(config.targets)
    if count > 1 or admin:
        from quiver.proxy.supervisor import Supervisor

        sidecar = None
        calls = None
        run_dir = run_dir or config.run_dir
        if admin:  # (a master process runs it, even beside one worker)
            assert path is not None, "the admin API runs beside a config file"
            from quiver.proxy.status import default_run_dir
            from quiver.storemode.serve import admin_beside_file

            # the workers' call spools (None with port 0 in `listen` and no run dir:
            # no call log then) and metrics, in the run directory the supervisor uses
            calls = _calls_dir(run_dir, config.listen[0].address)
            node_dir = Path(run_dir or default_run_dir(config.listen[0].address))
            sidecar = admin_beside_file(
                config, path, catalog, takeover=takeover, run_dir=node_dir, calls_dir=calls
            )

        return Supervisor(
            config,
            count,
            config_path=path,
            run_dir=Path(run_dir) if run_dir else None,
            catalog=catalog,
            overrides=overrides,
            sidecar=sidecar,
            calls_dir=calls,
        ).run()

    from quiver.proxy.worker import run_worker

    sockets = [(spec, listen_socket(spec.address, reuse_port=True)) for spec in config.listen]

    def announce(addresses: list[BoundAddress]) -> None:
        for address in addresses:
            log.info("proxy listening on %s", address.url)

    from quiver.proxy.status import default_run_dir

    host, port = sockets[0][1].getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    run_worker(
        config,
        sockets,
        announce=announce,
        grace=config.drain_timeout,
        config_path=path,
        watch=config.watch,
        run_dir=Path(run_dir or config.run_dir or default_run_dir(f"{shown}:{port}")),
        catalog=catalog,
        overrides=overrides,
    )
    return 0


def _is_bootstrap(path: str) -> bool:
    """Whether the file at ``path`` starts store mode: ``store:`` and settings only."""
    from quiver.config.loader import declares

    keys = declares(path)
    return keys is not None and "store" in keys and not keys - _settings_keys()


def _settings_keys() -> set[str]:
    from quiver.config.models import Settings

    return set(Settings.model_fields)


def _serve_store(
    args: argparse.Namespace, path: str | None, overrides: dict[str, object], catalog: Catalog
) -> int:
    """Store mode: the settings from the bootstrap file at ``path`` (if any) and the
    command line; the declaration from the store."""
    import logging

    from quiver.config.loader import load_settings
    from quiver.config.models import Settings
    from quiver.proxy.status import default_run_dir
    from quiver.storemode.serve import serve_store

    settings = Settings()
    if path is not None:
        settings = load_settings(path)
        logging.getLogger("quiver").info("settings loaded from %s", path)
    settings = settings.model_copy(update=overrides)
    workers = _worker_count(args.workers if args.workers is not None else settings.workers)
    given = args.run_dir or settings.run_dir
    run_dir = Path(given or default_run_dir(settings.listen[0].address))
    return serve_store(
        settings,
        workers=workers,
        run_dir=run_dir,
        catalog=catalog,
        takeover=args.takeover,
        calls_dir=_calls_dir(given, settings.listen[0].address),
    )


def _calls_dir(run_dir: str | None, address: str) -> Path | None:
    """Where the workers spool the call log and the admin sidecar ingests it:
    ``<run_dir>/calls``.  None (no call log) when the run directory would be named
    after port 0: gateways started that way would share it and ingest each other's
    calls."""
    from quiver.config.models import split_address
    from quiver.proxy.status import RUN_DIR_ENV, default_run_dir

    if run_dir is not None:
        return Path(run_dir) / "calls"
    if split_address(address)[1] == 0 and not os.environ.get(RUN_DIR_ENV):
        return None
    return default_run_dir(address) / "calls"


def _checked(option: str, value: str, key: str) -> str:
    """``value`` of a command-line ``option`` standing for the setting ``key``."""
    from pydantic import ValidationError

    from quiver.config.models import Settings

    try:
        Settings.model_validate({key: value})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise SystemExit(f"quiver: {option}: {message}") from None
    return value


def _access_log(to: str, written: object) -> object:
    """The access_log setting with ``to`` from ``--access-log`` over the file's."""
    from pydantic import BaseModel, ValidationError

    from quiver.config.access_log import AccessLog

    data = written.model_dump(exclude_unset=True) if isinstance(written, BaseModel) else {}
    try:
        return AccessLog.model_validate({**data, "to": to})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise SystemExit(f"quiver: --access-log: {message}") from None


def _listen(address: str) -> Listen:
    from quiver.config.models import Listen

    try:
        return Listen(address=address)
    except ValueError as exc:
        raise SystemExit(f"quiver: --listen: expected HOST:PORT, got {address!r}") from exc


def _seconds(value: str) -> float:
    from quiver.config.units import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError:
        raise SystemExit(
            f'quiver: --drain-timeout takes a duration such as "30s", not {value!r}'
        ) from None
    assert isinstance(seconds, float)  # a string is parsed or refused
    return seconds


def _worker_count(value: object) -> int:
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(str(value))
    except ValueError:
        raise SystemExit(f'quiver: --workers takes a number or "auto", not {value!r}') from None
    if count < 1:
        raise SystemExit("quiver: --workers must be at least 1")
    return count


if __name__ == "__main__":
    sys.exit(main())
