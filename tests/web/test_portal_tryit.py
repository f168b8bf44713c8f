"""The portal's "Try it" over HTTP, with a test server standing in for the gateway:
what is sent (only to the API's paths, the key in key-auth's header), what the page
shows of the answer (never the key), and the failures it tells instead of failing.
The whole way through a real gateway is in test_portal_tryit_gateway.py."""

from __future__ import annotations

import html
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from quiver.admin import create_app
from quiver.admin.gateway import Gateway
from quiver.store import Store
from quiver.web.site import mount_pages
from tests.admin.server import serving
from tests.support.catalog import built_in
from tests.support.upstream import Conn, Upstream, silent
from tests.web.test_portal_pages import post, sign_up

KEY = "qk_" + "k" * 43
API = "payments.orders"
PAGE = f"/portal/apis/{API}"
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Orders", "version": "1"},
    "paths": {
        "/orders/{id}": {
            "get": {
                "summary": "Get an order",
                "parameters": [
                    {"name": "id", "in": "path", "schema": {"type": "integer"}},
                    {"name": "expand", "in": "query", "schema": {"type": "boolean"}},
                ],
            }
        },
        "/orders": {
            "post": {
                "summary": "Place an order",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"sku": {"type": "string"}}},
                            "example": {"sku": "tea", "count": 2},
                        }
                    }
                },
            }
        },
        "/admin/stats": {"get": {"summary": "What no route of the API serves"}},
    },
}
PLANS = [{"name": "trial", "rate_limit": {"limit": 3, "window": "1m"}, "approval": "auto"}]


def publish_orders(store: Store, upstream: str, **route: Any) -> None:
    """Team ``payments`` publishing API ``orders`` (one route, ``/orders``, to
    ``upstream``) with OPENAPI and an automatic plan."""
    document = {
        "targets": [{"name": "shop", "url": upstream}],
        "routes": [{"name": "orders", "paths": ["/orders"], "target": "shop", **route}],
        "apis": [
            {
                "name": "orders",
                "title": "Orders API",
                "routes": ["orders"],
                "state": "published",
                "openapi": OPENAPI,
                "plans": PLANS,
            }
        ],
    }
    store.apply(document, "test", "publish", team="payments")


def try_it(client: httpx.Client, operation: str, **fields: str) -> httpx.Response:
    """Send the "Try it" form of ``operation`` (its anchor) from the API's page."""
    return post(client, PAGE, f"{PAGE}/try", operation=operation, **fields)


@contextmanager
def portal(store: Store, gateway: Gateway | None) -> Iterator[httpx.Client]:
    """A signed-in developer's client of pages that know ``gateway``."""
    app = create_app(None, store, built_in(), gateway=gateway)
    mount_pages(app, https=False)
    with (
        serving(app) as url,
        httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as client,
    ):
        sign_up(client, "ada@example.com")
        yield client


@pytest.fixture
def echo() -> Iterator[Upstream]:
    """Stands in for the gateway: answers JSON describing each request."""
    with Upstream() as server:
        yield server


@pytest.fixture
def client(store: Store, echo: Upstream) -> Iterator[httpx.Client]:
    publish_orders(store, "http://127.0.0.1:9")
    with portal(store, Gateway(echo.url)) as made:
        yield made


def test_each_operation_has_a_try_it_form(client: httpx.Client, echo: Upstream) -> None:
    page = client.get(PAGE)
    assert page.status_code == 200
    assert f'through the gateway at <span class="mono">{echo.url}</span>' in page.text
    for anchor in ("get--orders-id", "post--orders", "get--admin-stats"):
        assert f'action="{PAGE}/try#try-{anchor}"' in page.text
        assert f'<input type="hidden" name="operation" value="{anchor}">' in page.text
    assert '<label for="try-get--orders-id-key">API key</label>' in page.text
    assert 'id="try-get--orders-id-key" name="key" type="password" autocomplete="off"' in page.text
    assert '<label for="try-get--orders-id-path-id">id</label>' in page.text
    assert '<label for="try-get--orders-id-query">Query</label>' in page.text
    assert 'for="try-post--orders-body">Body (application/json)</label>' in page.text
    assert 'name="body"' not in page.text.split('id="try-post--orders"')[0]  # (GET: no body)
    example = json.dumps({"sku": "tea", "count": 2}, indent=2)
    assert html.escape(example, quote=False) in page.text.replace("&#34;", '"')
    assert 'Send<span class="visually-hidden"> GET /orders/{id}</span>' in page.text
    assert "<script" not in page.text
    assert echo.requests == []


def test_the_request_goes_with_the_key_and_the_answer_is_shown_without_it(
    client: httpx.Client, echo: Upstream
) -> None:
    answer = try_it(
        client, "get--orders-id", key=KEY, **{"path-id": "7"}, query="expand=true&note=a b"
    )
    assert answer.status_code == 200, answer.text[:2000]
    [sent] = echo.requests
    assert (sent.method, sent.path) == ("GET", "/orders/7?expand=true&note=a%20b")
    assert sent.header("apikey") == KEY
    assert sent.header("x-forwarded-for") == "127.0.0.1"
    assert sent.header("user-agent") == "Quiver-Portal (Try it)"
    assert sent.header("cookie") is None  # (the portal's session goes nowhere)
    text = answer.text
    assert KEY not in text
    shown = html.unescape(text)
    assert "200 OK" in shown and "GET /orders/7?expand=true&note=a%20b" in shown
    assert '"path": "/orders/7?expand=true&note=a%20b"' in shown  # (indented JSON)
    assert '"apikey",\n      "[your API key]"' in shown  # (echoed back, masked)
    assert '<table class="table">\n  <caption>Header fields of the answer</caption>' in text
    assert 'id="try-get--orders-id" open' in text
    assert 'value="expand=true&amp;note=a b"' in text  # (the form as sent, but the key)
    assert 'name="key" type="password" autocomplete="off" aria-describedby' in text


def test_a_body_goes_with_its_content_type(client: httpx.Client, echo: Upstream) -> None:
    body = '{"sku": "coffee"}'
    answer = try_it(client, "post--orders", key=KEY, body=body)
    assert answer.status_code == 200, answer.text[:2000]
    [sent] = echo.requests
    assert (sent.method, sent.path, sent.body) == ("POST", "/orders", body.encode())
    assert sent.header("content-type") == "application/json"
    assert html.escape(body, quote=False) in answer.text.replace("&#34;", '"')


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("..", "GET /orders/.. is not a path of this API&#39;s routes"),
        ("", "Give the id of the path."),
    ],
)
def test_a_path_outside_the_api_is_refused_next_to_its_field(
    client: httpx.Client, echo: Upstream, value: str, error: str
) -> None:
    answer = try_it(client, "get--orders-id", key=KEY, **{"path-id": value})
    assert answer.status_code == 400
    assert 'id="try-get--orders-id-path-id-error"' in answer.text and error in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert echo.requests == []
    assert KEY not in answer.text


def test_an_operation_no_route_of_the_api_serves_is_refused(
    client: httpx.Client, echo: Upstream
) -> None:
    answer = try_it(client, "get--admin-stats", key=KEY)
    assert answer.status_code == 400
    assert 'role="alert">GET /admin/stats is not a path of this API&#39;s routes' in answer.text
    assert echo.requests == []


def test_an_encoded_slash_stays_in_its_parameter(client: httpx.Client, echo: Upstream) -> None:
    answer = try_it(client, "get--orders-id", **{"path-id": "../../admin"})
    assert answer.status_code == 200, answer.text[:2000]
    assert echo.requests[0].path == "/orders/..%2F..%2Fadmin"


def test_a_form_of_another_site_or_operation_is_refused(
    client: httpx.Client, echo: Upstream
) -> None:
    forged = client.post(f"{PAGE}/try", data={"operation": "get--orders-id", "path-id": "7"})
    assert forged.status_code == 403
    unknown = try_it(client, "delete-everything")
    assert unknown.status_code == 400 and "no such operation" in unknown.text
    elsewhere = client.post("/portal/apis/payments.nope/try", data={"operation": "x"})
    assert elsewhere.status_code == 403
    assert echo.requests == []


def test_a_long_answer_is_cut(store: Store) -> None:
    def large(conn: Conn) -> None:
        if conn.read_request() is not None:
            body = json.dumps(["x" * 100] * 1000).encode()  # (about 100 KiB)
            conn.respond(200, body, [("Content-Type", "application/json")])

    publish_orders(store, "http://127.0.0.1:9")
    with Upstream(large) as server, portal(store, Gateway(server.url)) as client:
        answer = try_it(client, "get--orders-id", **{"path-id": "7"})
    assert answer.status_code == 200
    assert "(its first 64 KiB)" in answer.text


def test_a_gateway_that_is_not_there_is_said_on_the_page(store: Store) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    publish_orders(store, "http://127.0.0.1:9")
    with portal(store, Gateway(f"http://127.0.0.1:{port}")) as client:
        answer = try_it(client, "get--orders-id", key=KEY, **{"path-id": "7"})
    assert answer.status_code == 200
    assert f"The gateway at http://127.0.0.1:{port} could not be reached" in answer.text
    assert 'class="alert alert-error tryit-failure" role="alert"' in answer.text
    assert KEY not in answer.text


def test_a_gateway_that_does_not_answer_in_time_is_said_on_the_page(store: Store) -> None:
    publish_orders(store, "http://127.0.0.1:9")
    with Upstream(silent) as server, portal(store, Gateway(server.url, timeout=0.3)) as client:
        answer = try_it(client, "get--orders-id", **{"path-id": "7"})
    assert answer.status_code == 200
    assert "The gateway did not answer within 0.3 seconds." in answer.text


def test_without_a_gateway_try_it_is_unavailable(store: Store) -> None:
    publish_orders(store, "http://127.0.0.1:9")
    with portal(store, None) as client:
        page = client.get(PAGE)
        assert "Try it is unavailable" in page.text and "portal.gateway_url" in page.text
        assert f"{PAGE}/try" not in page.text
        answer = try_it(client, "get--orders-id", **{"path-id": "7"})
    assert answer.status_code == 400 and "Try it is unavailable" in answer.text
