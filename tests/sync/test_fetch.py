"""``quiver sync`` fetches through ``quiver.client``: its paginators, its retries and
pacing, its auth schemes; against real HTTP servers, with the waits recorded, not slept."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from rich.console import Console

from quiver.cli import main
from quiver.client import (
    APIKeyAuth,
    AsyncClient,
    BasicAuth,
    BearerAuth,
    ClientCredentials,
    RefreshToken,
    RequestSpec,
)
from quiver.errors import SyncError
from quiver.sync.config import Source, SyncConfig
from quiver.sync.fetch import auth_for, client_for
from quiver.sync.runner import sync
from tests.client.scripted import Waits
from tests.sync.pages import Reply, items, serving

pytestmark = pytest.mark.timeout(60)

PAGES = 4


def config(
    base: str, database: Path, paginator: Any = None, auth: dict[str, str] | None = None
) -> SyncConfig:
    resource = {"name": "items", "path": "/items", "primary_key": "id", "paginator": paginator}
    resource["data_selector"] = "data"
    source = {"name": "shop", "base_url": base, "auth": auth, "resources": [resource]}
    return SyncConfig(sources=[Source.model_validate(source)], destination=f"duckdb:///{database}")


def run(sync_config: SyncConfig, waits: Waits) -> None:
    """A sync whose client records its waits instead of sleeping them."""
    connect = partial(
        client_for,
        sleep=waits.async_sleep,
        clock=waits.clock,
        wall_clock=waits.clock,
        random=lambda: 1.0,
    )
    sync(sync_config, Console(file=io.StringIO()), connect)


def loaded(database: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute("SELECT count(*), count(DISTINCT id) FROM items").fetchall()


def linked(path: str, query: dict[str, str]) -> Any:
    page = int(query.get("page", "1"))
    headers = {"Link": f'</items?page={page + 1}>; rel="next"'} if page < PAGES else {}
    return Reply({"data": items(page)}, headers=headers)


@pytest.mark.parametrize("paginator", ["link_header", None, {"type": "link_header", "rel": "next"}])
def test_pages_linked_by_a_link_header_are_followed(tmp_path: Path, paginator: Any) -> None:
    database = tmp_path / "out.duckdb"
    with serving(linked) as (base, seen):
        run(config(base, database, paginator), Waits())
    assert seen == ["/items", "/items?page=2", "/items?page=3", "/items?page=4"]
    assert loaded(database) == [(PAGES * 10, PAGES * 10)]


def test_without_a_paginator_a_cursor_in_the_body_is_detected_and_walked(tmp_path: Path) -> None:
    def cursored(path: str, query: dict[str, str]) -> Any:
        page = int(query.get("cursor", "1"))
        return {"data": items(page), "meta": {"next_cursor": str(page + 1) if page < 3 else None}}

    database = tmp_path / "out.duckdb"
    with serving(cursored) as (base, seen):
        run(config(base, database), Waits())
    assert seen == ["/items"] + [f"/items?cursor={n}" for n in (2, 3)]
    assert loaded(database) == [(30, 30)]


def test_dry_run_shows_the_paginator_it_detected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def cursored(path: str, query: dict[str, str]) -> Any:
        return {"data": items(1), "meta": {"next_cursor": "2"}}

    file = tmp_path / "sources.yaml"
    with serving(cursored) as (base, seen):
        sync_config = config(base, tmp_path / "out.duckdb")
        file.write_text(yaml.safe_dump(sync_config.model_dump(exclude_none=True)))
        assert main(["sync", "-c", str(file), "--dry-run"]) == 0
    assert seen == ["/items"]
    out = capsys.readouterr().out
    assert "cursor (a cursor at 'meta.next_cursor')" in out
    assert "paginator: {type: cursor, cursor_path: meta.next_cursor, cursor_param: cursor}" in out


def test_without_a_paginator_a_page_count_is_detected_and_fetched_at_once(
    tmp_path: Path,
) -> None:
    def counted(path: str, query: dict[str, str]) -> Any:
        page = int(query.get("page", "1"))
        return {"data": items(page), "page": page, "total_pages": PAGES}

    database = tmp_path / "out.duckdb"
    with serving(counted) as (base, seen):
        run(config(base, database), Waits())
    assert sorted(seen) == ["/items"] + [f"/items?page={n}" for n in range(2, PAGES + 1)]
    assert loaded(database) == [(PAGES * 10, PAGES * 10)]


def test_a_429_with_retry_after_is_waited_out_and_the_page_loaded(tmp_path: Path) -> None:
    refused: list[str] = []

    def limited(path: str, query: dict[str, str]) -> Any:
        answer = linked(path, query)
        if query.get("page") == "3" and not refused:
            refused.append(path)
            return Reply({"title": "slow down"}, 429, {"Retry-After": "7"})
        return answer

    waits, database = Waits(), tmp_path / "out.duckdb"
    with serving(limited) as (base, seen):
        run(config(base, database, "link_header"), waits)
    assert waits.slept == [7.0]
    assert seen.count("/items?page=3") == 2
    assert loaded(database) == [(PAGES * 10, PAGES * 10)]


def test_a_flaky_source_is_retried_with_backoff(tmp_path: Path) -> None:
    failures = {"2": 2, "4": 1}

    def flaky(path: str, query: dict[str, str]) -> Any:
        page = query.get("page", "1")
        if failures.get(page, 0):
            failures[page] -= 1
            return Reply({"title": "busy"}, 503)
        return linked(path, query)

    waits, database = Waits(), tmp_path / "out.duckdb"
    with serving(flaky) as (base, _):
        run(config(base, database, "link_header"), waits)
    assert waits.slept == [0.5, 1.0, 0.5]  # full jitter drawing its top: 0.5 s doubled per retry
    assert loaded(database) == [(PAGES * 10, PAGES * 10)]


def test_a_source_failing_past_its_retries_names_the_resource_and_status(tmp_path: Path) -> None:
    def down(path: str, query: dict[str, str]) -> Any:
        return Reply({"title": "down"}, 503)

    waits = Waits()
    with serving(down) as (base, seen), pytest.raises(SyncError, match=r"shop\.items: .*503"):
        run(config(base, tmp_path / "out.duckdb"), waits)
    assert len(seen) == 4 and len(waits.slept) == 3


def test_an_api_key_in_the_query_reaches_the_server(tmp_path: Path) -> None:
    auth = {"type": "api_key", "name": "key", "api_key": "s3cret", "location": "query"}
    with serving(lambda path, query: {"data": [{"id": 1}]}) as (base, seen):
        run(config(base, tmp_path / "out.duckdb", auth=auth), Waits())
    assert seen == ["/items?key=s3cret"]


@pytest.mark.parametrize(
    ("auth", "kind", "sent"),
    [
        ({"type": "bearer", "token": "t"}, BearerAuth, {"Authorization": "Bearer t"}),
        (
            {"type": "http_basic", "username": "u", "password": "p"},
            BasicAuth,
            {"Authorization": "Basic dTpw"},
        ),
        ({"type": "api_key", "api_key": "k"}, APIKeyAuth, {"Authorization": "k"}),
        ({"type": "api_key", "name": "X-Key", "api_key": "k"}, APIKeyAuth, {"X-Key": "k"}),
        (
            {
                "type": "oauth2_client_credentials",
                "access_token_url": "https://a/token",
                "client_id": "c",
                "client_secret": "s",
                "scope": "read",
            },
            ClientCredentials,
            None,
        ),
        (
            {
                "type": "oauth2_refresh_token",
                "access_token_url": "https://a/token",
                "client_id": "c",
                "refresh_token": "r",
            },
            RefreshToken,
            None,
        ),
    ],
)
def test_each_auth_block_is_the_clients_scheme(
    auth: dict[str, Any], kind: type[Any], sent: dict[str, str] | None
) -> None:
    source = Source.model_validate(
        {
            "name": "s",
            "base_url": "http://x",
            "auth": auth,
            "resources": [{"name": "r", "path": "/"}],
        }
    )
    assert source.auth is not None
    scheme = auth_for(source.auth)
    assert type(scheme) is kind
    if sent is not None:
        assert dict(scheme.apply(RequestSpec()).headers) == sent
    else:
        assert scheme.token_request(0.0) is not None
    assert isinstance(client_for(source), AsyncClient)


@pytest.mark.parametrize("transport", ["http11", "httpx"])
def test_either_transport_loads_the_same_rows(tmp_path: Path, transport: str) -> None:
    database = tmp_path / "out.duckdb"
    sync_config = config("{base}", database, "link_header")
    with serving(linked) as (base, _):
        source = sync_config.sources[0].model_copy(
            update={"base_url": base, "transport": transport}
        )
        run(sync_config.model_copy(update={"sources": [source]}), Waits())
    assert loaded(database) == [(PAGES * 10, PAGES * 10)]


def test_a_page_naming_itself_as_the_next_ends_the_walk(tmp_path: Path) -> None:
    def stuck(path: str, query: dict[str, str]) -> Any:
        return {"data": items(1), "next_cursor": "same"}

    database = tmp_path / "out.duckdb"
    with serving(stuck) as (base, seen):
        run(config(base, database), Waits())
    assert seen == ["/items", "/items?cursor=same"]
    assert loaded(database) == [(20, 10)]
