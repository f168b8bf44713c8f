"""``quiver resources serve db.json`` and ``quiver resources snapshot db.json``.

``serve`` seeds the SQLite file next to db.json on first start (:mod:`.database`),
declares the collections as ``json-server`` resources, the singular documents,
``/db`` and the nested routes (``/posts/{postId}/comments``) in a config made here,
and runs it as ``quiver serve`` runs a config file.  ``snapshot`` prints the data
as db.json-shaped JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from quiver.config.resources import JSON_SERVER_TARGET_TYPE
from quiver.resources.jsonserver.database import (
    default_database,
    open_sqlite,
    prepare,
    snapshot,
)
from quiver.resources.jsonserver.documents import DATABASE_TARGET_TYPE, DOCUMENT_TARGET_TYPE
from quiver.resources.jsonserver.infer import DbJsonError, Layout, foreign_key

DEFAULT_PORT = 3000  # json-server's
_PREFIX = "json-server-"
#: what json-server lets browsers read besides the safelisted headers
_EXPOSED = ["X-Total-Count", "Link", "Location"]


def serve(args: argparse.Namespace, serve_data: Callable[[dict[str, Any]], int]) -> int:
    """Serves the db.json ``args.file`` until stopped (``serve_data`` serves a config
    made of plain data)."""
    log = logging.getLogger("quiver")
    database = args.db or default_database(args.file)
    try:
        layout, seeded = prepare(args.file, database)
    except (DbJsonError, OSError) as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    if seeded:
        log.info("seeded %s from %s", database, args.file)
    else:
        log.info(
            "serving the data kept in %s (%s is read only when that file does not exist; "
            "`quiver resources snapshot %s` prints the data)",
            database,
            args.file,
            args.file,
        )
    served = [f"/{name}" for name in layout.order] + ["/db"]
    log.info("serving %s", ", ".join(served))
    data = config_data(layout, database, listen=_address(args.host, args.port), cors=args.cors)
    return serve_data(data)


def print_snapshot(args: argparse.Namespace) -> int:
    """Prints the served data of the db.json ``args.file`` in db.json's shape."""
    from quiver.resources.jsonserver.database import read_layout

    database = args.db or default_database(args.file)
    try:
        layout = read_layout(database)
    except DbJsonError as exc:
        print(f"quiver: {exc}", file=sys.stderr)
        return 1
    connection = open_sqlite(database)
    try:
        print(json.dumps(snapshot(connection, layout), indent=2))
    finally:
        connection.close()
    return 0


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def config_data(layout: Layout, database: str, *, listen: str, cors: bool) -> dict[str, Any]:
    """The config serving ``layout`` from ``database`` on ``listen``, as plain data."""
    targets: list[dict[str, Any]] = [
        {"name": _PREFIX + "db", "type": DATABASE_TARGET_TYPE, "options": {"database": database}}
    ]
    routes: list[dict[str, Any]] = [
        {"name": _PREFIX + "db", "paths": ["=/db"], "target": _PREFIX + "db"}
    ]
    for name in layout.singulars:
        document = {"document": name, "database": database}
        targets.append({"name": _PREFIX + name, "type": DOCUMENT_TARGET_TYPE, "options": document})
        routes.append({"name": _PREFIX + name, "paths": [f"=/{name}"], "target": _PREFIX + name})
    declared = [
        resource.model_dump(mode="json", exclude_defaults=True) for resource in layout.resources
    ]
    for child in layout.resources:
        # /posts/{postId}/comments for every other collection: a target of the child's
        # own (the section's generated targets cannot be named here)
        nested = f"{_PREFIX}nested-{child.name}"
        options: dict[str, Any] = {
            "resource": child.name,
            "resources": declared,
            "database": database,
        }
        targets.append({"name": nested, "type": JSON_SERVER_TARGET_TYPE, "options": options})
        for parent in layout.resources:
            if parent.name != child.name:
                path = f"/{parent.name}/{{{foreign_key(parent.name)}}}/{child.name}"
                routes.append(
                    {
                        "name": f"{_PREFIX}{parent.name}-{child.name}",
                        "paths": [path],
                        "target": nested,
                        "priority": 1,
                    }
                )
    data: dict[str, Any] = {
        "listen": [listen],
        "resources_db": database,
        "resources": declared,
        "targets": targets,
        "routes": routes,
    }
    if cors:  # json-server answers every origin unless started with --no-cors
        data["plugins"] = {"cors": {"origins": ["*"], "exposed_headers": _EXPOSED}}
    return data
