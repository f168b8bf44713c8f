"""``quiver resources openapi|export|load``: the resources of a config file, offline.

``export`` prints every item of every resource as one JSON document,
``{"items": [...], "events": [...]}``; ``load`` writes such a document back (keys
kept, so children still name their parents), or the rows of a CSV file into one
resource (``items.csv`` into ``items``, or ``--resource``), all of it or nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quiver.config.models import Config

# the command imports what it uses when it runs: `quiver --help` stays instant
LoadConfig = Callable[[argparse.Namespace], "Config"]
#: serves a config made of plain data (validated first) until stopped; the exit status
ServeData = Callable[[dict[str, Any]], int]


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    load: LoadConfig,
    serve_data: ServeData,
) -> None:
    """Adds ``quiver resources``; ``load`` reads the config the arguments name,
    ``serve_data`` serves the config ``serve`` makes of a db.json."""
    parser = commands.add_parser(
        "resources",
        help="print the resources' OpenAPI document, export or load their items; "
        "serve a json-server db.json",
        description="openapi: print the OpenAPI 3.1 document of the declared resources; "
        "export: print every item as JSON; load FILE: write the items of such a JSON "
        "document, or the rows of a CSV file with a header row naming the fields "
        "(all or none). serve DB.JSON: serve a json-server db.json as json-server "
        "0.17 does, its data kept in a SQLite file beside it (seeded from DB.JSON when "
        "that file does not exist); snapshot DB.JSON: print that data as db.json.",
    )
    parser.add_argument("action", choices=["openapi", "export", "load", "serve", "snapshot"])
    parser.add_argument(
        "file",
        nargs="?",
        help="load: the JSON document of items, or a .csv file of rows; serve, snapshot: db.json",
    )
    parser.add_argument(
        "--resource",
        metavar="NAME",
        help="load FILE.csv: the resource its rows are items of (by default the file's "
        "name: items.csv loads into items)",
    )
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="config file (./quiver.yaml by default)"
    )
    parser.add_argument(
        "--port", type=int, default=3000, help="serve: the port (3000 as json-server; 0: any)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="serve: the address (127.0.0.1)")
    parser.add_argument(
        "--db",
        metavar="PATH",
        help="serve, snapshot: the SQLite file of the data (default: db.json's name with "
        ".quiver.sqlite)",
    )
    parser.add_argument(
        "--no-cors",
        dest="cors",
        action="store_false",
        help="serve: no CORS headers (by default every origin may read, as in json-server)",
    )
    parser.set_defaults(handler=lambda args: run(args, load, serve_data))


def run(args: argparse.Namespace, load: LoadConfig, serve_data: ServeData) -> int:
    import sqlite3

    from quiver.config.resources import DEFAULT_DATABASE
    from quiver.errors import QuiverError
    from quiver.resources.openapi import openapi_document
    from quiver.resources.storage import open_database
    from quiver.resources.transfer import export, load_csv, load_items

    if args.action in ("serve", "snapshot"):
        from quiver.resources.jsonserver.command import print_snapshot, serve

        if args.file is None:
            print(f"quiver: resources {args.action} needs the db.json to serve", file=sys.stderr)
            return 2
        return serve(args, serve_data) if args.action == "serve" else print_snapshot(args)
    config = load(args)
    if not config.resources:
        print("quiver: the config declares no resources", file=sys.stderr)
        return 1
    if args.action == "openapi":
        print(json.dumps(openapi_document(config.resources), indent=2))
        return 0
    database = config.resources_db or DEFAULT_DATABASE
    try:
        connection = open_database(database, config.resources, config.resources_migrate)
    except (OSError, QuiverError, sqlite3.Error) as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "export":
            print(json.dumps(export(connection, config.resources), indent=2))
            return 0
        if args.file is None:
            print("quiver: resources load needs the FILE to load", file=sys.stderr)
            return 2
        if args.resource is not None and not args.file.lower().endswith(".csv"):
            print("quiver: --resource names the resource of a .csv file", file=sys.stderr)
            return 2
        if args.file.lower().endswith(".csv"):
            counts = load_csv(connection, config.resources, Path(args.file), args.resource)
        else:
            with open(args.file, "rb") as file:
                document = json.load(file)
            counts = load_items(connection, config.resources, document)
    except (OSError, ValueError, QuiverError, sqlite3.Error) as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    print(", ".join(f"{name}: {count} loaded" for name, count in counts.items()))
    return 0
