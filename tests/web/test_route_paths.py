"""Which of an API's routes takes a request, by the gateway's path rules: what the
portal's "Try it" checks before it sends anything."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.web.route_paths import Served, accepts, canonical, served_by


@pytest.mark.parametrize(
    ("pattern", "path", "taken"),
    [
        ("/items", "/items", True),
        ("/items", "/items/7", True),
        ("/items", "/itemsx", False),
        ("/items", "/other", False),
        ("/api/", "/api/x", True),
        ("/api/", "/api", False),
        ("/", "/anything/at/all", True),
        ("=/items", "/items", True),
        ("=/items", "/items/7", False),
        ("/users/{id}", "/users/7", True),
        ("/users/{id}", "/users/7/posts", True),
        ("/users/{id}", "/users", False),
        ("/users/{id}", "/users/", False),
        ("=/users/{id}", "/users/7", True),
        ("=/users/{id}", "/users/7/posts", False),
        ("/f/{name}.json", "/f/report.json", True),
        ("/f/{name}.json", "/f/report.xml", False),
        ("~^/v[0-9]+/", "/v2/items", True),
        ("~^/v[0-9]+/", "/vx/items", False),
        ("~^(", "/anything", False),  # (a regex the gateway would refuse)
        ("/caf\u00e9", "/caf%C3%A9", True),  # (non-ASCII compares percent-encoded)
    ],
)
def test_path_patterns_take_paths_as_the_gateway_does(pattern: str, path: str, taken: bool) -> None:
    assert accepts(pattern, path) is taken


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/orders/7", "/orders/7"),
        ("/orders/%2E%2E", "/"),  # (a parameter of ".." leaves the API's paths)
        ("/orders/a%2Fb", "/orders/a%2Fb"),  # (an encoded slash stays in its segment)
        ("/orders/%7euser", "/orders/~user"),
        ("/orders/%zz", None),
        ("/orders/\u00e9", None),
    ],
)
def test_paths_compare_in_their_canonical_form(raw: str, expected: str | None) -> None:
    assert canonical(raw) == expected


def _document(**route: Any) -> dict[str, Any]:
    return {
        "targets": [{"name": "shop", "url": "http://127.0.0.1:9"}],
        "routes": [
            {"name": "other", "paths": ["/"], "target": "shop"},
            {"name": "orders", "paths": ["/orders"], "target": "shop", **route},
        ],
    }


def test_only_the_apis_routes_serve() -> None:
    document = _document()
    assert served_by(document, ["orders"], "GET", "/orders/7") == Served("orders", None, "apikey")
    assert served_by(document, ["orders"], "GET", "/admin") is None  # ("other" is no API's)
    assert served_by(document, ["nope"], "GET", "/orders") is None


def test_a_route_serves_only_its_methods() -> None:
    document = _document(methods=["GET"])
    assert served_by(document, ["orders"], "GET", "/orders") is not None
    assert served_by(document, ["orders"], "POST", "/orders") is None


@pytest.mark.parametrize(
    ("hosts", "host"),
    [(["api.example.com", "*.example.org"], "api.example.com"), (["*"], None), (None, None)],
)
def test_a_route_with_hosts_is_sent_its_first_name(hosts: list[str] | None, host: str) -> None:
    found = served_by(_document(hosts=hosts), ["orders"], "GET", "/orders")
    assert found is not None and found.host == host


def test_a_route_with_wildcard_hosts_alone_cannot_be_tried() -> None:
    assert served_by(_document(hosts=["*.example.com"]), ["orders"], "GET", "/orders") is None


@pytest.mark.parametrize(
    ("plugins", "target_plugins", "place"),
    [
        (None, None, ("apikey", "")),
        ({"key-auth": {}}, None, ("apikey", "")),
        ({"key-auth": {"header_names": ["X-Key", "apikey"]}}, None, ("X-Key", "")),
        ({"key-auth": {"header_names": [], "bearer": True}}, None, ("Authorization", "Bearer ")),
        ({"key-auth": {"header_names": []}}, None, ("", "")),
        (None, {"key-auth": {"header_names": ["X-Target-Key"]}}, ("X-Target-Key", "")),
    ],
)
def test_the_key_goes_where_the_routes_key_auth_reads_it(
    plugins: dict[str, Any] | None,
    target_plugins: dict[str, Any] | None,
    place: tuple[str, str],
) -> None:
    document = _document(**({"plugins": plugins} if plugins else {}))
    if target_plugins:
        document["targets"][0]["plugins"] = target_plugins
    found = served_by(document, ["orders"], "GET", "/orders")
    assert found is not None and (found.key_header, found.key_prefix) == place
