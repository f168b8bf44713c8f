"""``quiver sync -c sources.yaml``: load every resource, or show what it would load."""

from __future__ import annotations

import argparse
import sys


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser(
        "sync",
        help="pull REST APIs into SQLite, PostgreSQL, DuckDB, JSONL or Parquet",
        description="Load the resources of a sources file (dlt rest_api style) into its "
        "destination. Each batch of rows is committed with the state that accounts for "
        "it: a run that stops, however it stops, is resumed by the next one.",
    )
    sync.add_argument(
        "-c", "--config", metavar="FILE", required=True, help="the sources file (YAML or JSON)"
    )
    sync.add_argument(
        "--dry-run",
        action="store_true",
        help="fetch the first page of each resource, show its first records and the "
        "inferred tables; load nothing",
    )
    sync.set_defaults(handler=run_sync)


def run_sync(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from rich.console import Console

    from quiver.errors import SyncError
    from quiver.sync.config import load_sync_config

    config = load_sync_config(args.config)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per page otherwise
    console = Console(stderr=True)
    try:
        if args.dry_run:
            from quiver.sync.dry_run import dry_run

            asyncio.run(dry_run(config, Console()))
            return 0
        import gc

        from quiver.sync.runner import sync

        # what start-up made (modules, classes, the config) lives as long as the
        # process: out of the collector's way, its full passes stop walking all of it
        gc.freeze()
        sync(config, console)
    except SyncError as exc:
        print(f"quiver sync: {exc}", file=sys.stderr)
        return 1
    return 0
