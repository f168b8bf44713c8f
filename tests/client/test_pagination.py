"""Paginators: the config that builds them, auto-detection, and walks over real sockets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from quiver.client import AsyncClient, Client, RequestSpec, paginator_from_config
from quiver.client.pagination import (
    Cursor,
    LinkHeader,
    NextURL,
    Offset,
    PageNumber,
    SinglePage,
    find_records,
    next_link,
)
from quiver.errors import ConfigError
from tests.client.scripted import Answer, Events, json_answer, scripted
from tests.support.upstream import Request

pytestmark = pytest.mark.timeout(20)

ITEMS = [{"id": n} for n in range(1, 26)]


def api(request: Request) -> Answer:
    """One collection of 25 items, paginated every way the client knows, 10 at a time."""
    parts = urlsplit(request.path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if parts.path == "/pages":
        page = int(query.get("page", "1"))
        body = {"data": ITEMS[(page - 1) * 10 : page * 10], "page": page, "total_pages": 3}
        return json_answer(body)
    if parts.path == "/offset":
        offset, limit = int(query["offset"]), int(query["limit"])
        body = {"items": ITEMS[offset : offset + limit], "offset": offset, "limit": limit}
        return json_answer({**body, "total": len(ITEMS)})
    start = int(query.get("after", query.get("cursor", "0")))
    chunk, more = ITEMS[start : start + 10], start + 10 < len(ITEMS)
    if parts.path == "/cursor":
        return json_answer(
            {"results": chunk, "meta": {"next_cursor": str(start + 10) if more else None}}
        )
    if parts.path == "/link":
        link = [("Link", f'</link?after={start + 10}>; rel="next", </link>; rel="first"')]
        return json_answer(chunk, headers=link if more else [])
    if parts.path == "/next":
        return json_answer({"data": chunk, "next": f"/next?after={start + 10}" if more else None})
    return json_answer({"data": ITEMS[:3]})


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("single_page", SinglePage()),
        ({"type": "page_number", "base_page": 0}, PageNumber(base_page=0)),
        ({"type": "offset", "limit": 50}, Offset(limit=50)),
        (
            {"type": "cursor", "cursor_path": "meta.next", "cursor_param": "after"},
            Cursor(cursor_path="meta.next", cursor_param="after"),
        ),
        ("link_header", LinkHeader()),
        ({"type": "next_url", "next_url_path": "links.next"}, NextURL(next_url_path="links.next")),
        ({"type": "json_link", "next_url_path": "next"}, NextURL()),  # dlt's names
        ("header_link", LinkHeader()),
    ],
)
def test_a_config_mapping_or_name_builds_its_paginator(config: Any, expected: Any) -> None:
    assert paginator_from_config(config) == expected


@pytest.mark.parametrize(
    ("config", "location"),
    [
        ({"type": "pages"}, "paginator.type"),
        ({"limit": 10}, "paginator.type"),
        ({"type": "offset", "limt": 10}, "paginator.limt"),
        ({"type": "single_page", "page_param": "p"}, "paginator.page_param"),
        ({"type": "auto", "limit": 10}, "paginator.limit"),
    ],
)
def test_an_unknown_type_or_option_is_a_config_error_naming_it(
    config: dict[str, Any], location: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        paginator_from_config(config)
    assert [issue.location for issue in caught.value.issues] == [location]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ('<https://a.example/x?page=2>; rel="next"', "https://a.example/x?page=2"),
        ('</x?p=1>; rel="prev", </x?p=3>; rel="next last"', "/x?p=3"),
        ("</x?p=1>; rel=prev", None),
        ("", None),
    ],
)
def test_next_link_reads_the_link_field(field: str, expected: str | None) -> None:
    assert next_link(field) == expected


@pytest.mark.parametrize(
    ("body", "path", "expected"),
    [
        ([1, 2], None, [1, 2]),
        ({"data": [1], "meta": {}}, None, [1]),
        ({"results": [1, 2]}, None, [1, 2]),
        ({"payload": {"rows": [3]}}, "payload.rows", [3]),
        ({"payload": {"rows": [3]}}, "$.payload.rows", [3]),
        ({"id": 1}, None, [{"id": 1}]),
        (None, None, []),
    ],
)
def test_records_are_found_where_apis_put_them(body: Any, path: str | None, expected: Any) -> None:
    assert find_records(body, path) == expected


# -- walks over real sockets -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "config"),
    [
        ("/pages", {"type": "page_number"}),
        ("/offset", {"type": "offset", "limit": 10}),
        ("/cursor", {"type": "cursor", "cursor_path": "meta.next_cursor"}),
        ("/link", "link_header"),
        ("/next", "next_url"),
    ],
)
def test_each_paginator_walks_every_page_once(path: str, config: Any) -> None:
    with scripted(api) as server, Client(server.url) as client:
        pages = list(client.pages(path, config))
    assert [r for page in pages for r in page.records] == ITEMS
    assert len(pages) == len(server.requests) == 3


@pytest.mark.parametrize(
    ("path", "chosen", "reason"),
    [
        ("/pages", "page_number", "a page count at 'total_pages', page 1 first"),
        ("/offset", "offset", "offset and limit in the body"),
        ("/cursor", "cursor", "a cursor at 'meta.next_cursor'"),
        ("/link", "link_header", 'a Link header with rel="next"'),
        ("/next", "next_url", "a next URL at 'next'"),
        ("/plain", "single_page", "no pagination in the response"),
    ],
)
def test_auto_detection_picks_the_paginator_and_logs_its_choice(
    path: str, chosen: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = RequestSpec(url=path, params={"offset": 0, "limit": 10} if path == "/offset" else {})
    with (
        caplog.at_level(logging.INFO, "quiver.client"),
        scripted(api) as server,
        Client(server.url) as client,
    ):
        records = list(client.items(first))
    assert records == (ITEMS if path != "/plain" else ITEMS[:3])
    [logged] = [r for r in caplog.records if getattr(r, "event", None) == "paginator"]
    assert logged.levelno == logging.INFO
    assert logged.fields["paginator"] == chosen  # type: ignore[attr-defined]
    assert logged.fields["reason"] == reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "config"),
    [("/pages", {"type": "page_number"}), ("/offset", {"type": "offset", "limit": 10})],
)
def test_parallel_lists_every_remaining_page_from_the_first_response(
    path: str, config: Any
) -> None:
    paginator = paginator_from_config(config)

    async def main(url: str) -> list[Any]:
        async with AsyncClient(url) as client:
            first = await client.send(paginator.first(RequestSpec(url=path)))
            rest = paginator.parallel(first, find_records(first.json()))
            assert rest is not None and len(rest) == 2
            answers = await asyncio.gather(*(client.send(spec) for spec in rest))
        return [r for response in (first, *answers) for r in find_records(response.json())]

    with scripted(api) as server:
        assert asyncio.run(main(server.url)) == ITEMS


@pytest.mark.parametrize("path", ["/cursor", "/link", "/next"])
def test_parallel_is_none_when_pages_must_be_walked(path: str) -> None:
    events = Events()
    paginator = paginator_from_config("auto", on_event=events)
    with scripted(api) as server, Client(server.url) as client:
        first = client.send(paginator.first(RequestSpec(url=path)))
    assert paginator.parallel(first, find_records(first.json())) is None
    assert [e.name for e in events] == ["paginator"]


def test_the_async_client_walks_pages_too() -> None:
    async def main(url: str) -> list[Any]:
        async with AsyncClient(url) as client:
            return [record async for record in client.items("/next", "next_url")]

    with scripted(api) as server:
        assert asyncio.run(main(server.url)) == ITEMS


def test_a_page_naming_itself_as_the_next_one_ends_the_walk() -> None:
    events = Events()
    with (
        scripted(lambda request: json_answer({"data": [1], "next": "/same"})) as server,
        Client(server.url, on_event=events) as client,
    ):
        assert list(client.items("/same", "next_url")) == [1]
    assert len(server.requests) == 1
    assert [e.level for e in events.named("paginator")] == [logging.WARNING]


RECORDS = [{"id": n} for n in range(100)]


def capped(request: Request) -> Answer:
    """100 records, never more than 10 a page whatever ``limit`` asks for."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
    offset, limit = int(query["offset"]), min(int(query["limit"]), 10)
    return json_answer({"items": RECORDS[offset : offset + limit], "total": len(RECORDS)})


def test_an_offset_walk_steps_by_what_a_capping_server_sends() -> None:
    paginator = {"type": "offset", "limit": 25, "total_path": "total"}
    with scripted(capped) as server, Client(server.url) as client:
        assert list(client.items("/offset", paginator)) == RECORDS


def test_offset_pages_planned_at_once_are_as_long_as_the_first() -> None:
    paginator = paginator_from_config({"type": "offset", "limit": 25, "total_path": "total"})

    async def main(url: str) -> list[Any]:
        async with AsyncClient(url) as client:
            first = await client.send(paginator.first(RequestSpec(url="/offset")))
            rest = paginator.parallel(first, find_records(first.json()))
            assert rest is not None and len(rest) == 9
            answers = await asyncio.gather(*(client.send(spec) for spec in rest))
        return [r for response in (first, *answers) for r in find_records(response.json())]

    with scripted(capped) as server:
        assert asyncio.run(main(server.url)) == RECORDS


def from_page_0(*, reported: bool) -> Any:
    """An API numbering its pages from 0, whose first page comes without ``page``."""

    def respond(request: Request) -> Answer:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        page = int(query.get("page", "0"))
        body: dict[str, Any] = {"data": RECORDS[page * 10 : page * 10 + 10], "total_pages": 10}
        if reported:
            body["page"] = page
        return json_answer(body)

    return respond


def test_a_page_count_numbered_from_0_as_the_response_says_skips_no_page() -> None:
    with scripted(from_page_0(reported=True)) as server, Client(server.url) as client:
        assert list(client.items("/pages")) == RECORDS
    assert len(server.requests) == 10


@pytest.mark.parametrize("parallel", [False, True])
def test_a_page_count_from_an_unknown_first_page_number_loses_no_page(parallel: bool) -> None:
    events = Events()
    with scripted(from_page_0(reported=False)) as server, Client(server.url) as client:
        if parallel:
            paginator = paginator_from_config("auto", on_event=events)
            first = client.send(paginator.first(RequestSpec(url="/pages")))
            rest = paginator.parallel(first, find_records(first.json())) or []
            records = [r for p in (first, *map(client.send, rest)) for r in p.json()["data"]]
        else:
            records = list(client.items("/pages", paginator="auto"))
    assert sorted(r["id"] for r in records) == list(range(100))  # none lost, none twice
    [chosen] = events.named("paginator") if parallel else [None]
    assert chosen is None or "pin base_page" in chosen.fields["reason"]
