"""``quiver sync --dry-run``: the first page of each resource, its first records and
the tables they would make, without touching the destination."""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from quiver.client import AsyncClient, ClientEvent, RequestSpec, paginator_from_config
from quiver.sync.columnar import parse, require_key, row_ids, shape
from quiver.sync.config import Resource, SyncConfig
from quiver.sync.fetch import client_for
from quiver.sync.runner import failure
from quiver.sync.schema import Schema, type_name
from quiver.sync.select import Selector
from quiver.sync.tokens import TokenFile

SHOWN = 3


async def dry_run(config: SyncConfig, console: Console) -> None:
    """Each resource's first page shown; a failure ends the dry run as it ends a run:
    a :class:`SyncError` naming the source and resource. A refresh token rotated on
    the way is kept, as a run keeps it: the endpoint has revoked the one before."""
    tokens = TokenFile.open(config)
    for number, source in enumerate(config.sources):
        client = client_for(source, tokens)
        firsts: dict[str, list[object]] = {}
        try:
            for index, resource in enumerate(source.resources):
                try:
                    await _first_page(client, source.name, resource, firsts, console)
                except Exception as exc:  # the same fault boundary as the runner's
                    raise failure(config, number, index, exc) from exc
        finally:
            await client.aclose()


async def _first_page(
    client: AsyncClient,
    source: str,
    resource: Resource,
    firsts: dict[str, list[object]],
    console: Console,
) -> None:
    path = resource.path
    if resource.parent is not None:
        name, resolve = resource.parent
        parents = firsts.get(resolve.resource) or [{}]
        value = parents[0].get(resolve.field) if isinstance(parents[0], dict) else None
        path = path.replace("{" + name + "}", str(value))
    params = {k: v for k, v in resource.params.items() if isinstance(v, str | int | float | bool)}
    chosen: list[ClientEvent] = []
    paginator = paginator_from_config(resource.paginator, chosen.append)
    request = paginator.first(RequestSpec(resource.method, path, params, resource.headers))
    response = await client.send(request)
    selector = Selector(resource.data_selector)
    firsts[resource.name] = selector.records(response.json())
    paginator.parallel(response, firsts[resource.name])  # ``auto`` decides on it
    _show(console, source, resource, response.content, selector, firsts[resource.name])
    for event in chosen:
        _show_paginator(console, event)


def _show_paginator(console: Console, event: ClientEvent) -> None:
    """What ``auto`` chose, as the ``paginator:`` line that would pin it."""
    console.print(event.message, soft_wrap=True, markup=False, highlight=False)
    config = {"type": event.fields["paginator"], **event.fields.get("config", {})}
    pinned = ", ".join(f"{key}: {value}" for key, value in config.items() if value is not None)
    console.print(f"  paginator: {{{pinned}}}", soft_wrap=True, markup=False, highlight=False)


def _show(
    console: Console,
    source: str,
    resource: Resource,
    content: bytes,
    selector: Selector,
    records: list[object],
) -> None:
    console.rule(f"{source}.{resource.name}: {len(records)} records in the first page")
    console.print(
        Syntax(orjson.dumps(records[:SHOWN], option=orjson.OPT_INDENT_2).decode(), "json")
    )
    arrays = parse(content, selector)
    require_key(arrays, resource.key)
    single = len(resource.key) == 1 and len(arrays)
    parent_id = arrays.field(resource.key[0]) if single else row_ids(0, len(arrays))
    schema = Schema({})
    table = Table(title=f"tables of {resource.name}")
    for column in ("table", "column", "type"):
        table.add_column(column)
    for name, rows in shape(
        arrays, resource.table, nested=resource.nested, parent_id=parent_id
    ).items():
        fitted, _ = schema.fit(name, rows)
        for field in fitted.schema:
            table.add_row(name, field.name, type_name(field.type))
    console.print(table)
