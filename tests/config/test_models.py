"""Valid and invalid tables for the config models, validated without the loader."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from quiver.config.models import Config, Limits, Node, Route, Target, Timeouts


def route(**fields: Any) -> dict[str, Any]:
    return {"name": "r", "paths": ["/"], "target": "backend", **fields}


def target(**fields: Any) -> dict[str, Any]:
    return {"name": "t", **fields}


def assert_invalid(model: type[BaseModel], data: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "paths",
    [
        ["/"],
        ["/items"],
        ["=/items"],
        ["/users/{id}"],
        ["~^/v[0-9]+/"],
        ["~^/users/(?P<id>\\d+)$"],
        ["/a", "=/b", "~^/c"],
    ],
)
def test_route_accepts_path_forms(paths: list[str]) -> None:
    assert Route.model_validate(route(paths=paths)).paths == paths


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], "at least 1 item"),
        (["items"], "path must start with '/', '=/' or '~': 'items'"),
        (["=items"], "path must start with '/', '=/' or '~': '=items'"),
        (["~(unclosed"], "bad regex '~(unclosed'"),
        ("/items", "valid list"),
    ],
)
def test_route_rejects_bad_paths(paths: Any, expected: str) -> None:
    assert_invalid(Route, route(paths=paths), expected)


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        (None, None),
        (["get", "Post"], ["GET", "POST"]),
        (["PURGE"], ["PURGE"]),
    ],
)
def test_route_methods_are_upper_cased(
    methods: list[str] | None, expected: list[str] | None
) -> None:
    assert Route.model_validate(route(methods=methods)).methods == expected


@pytest.mark.parametrize("method", ["GE T", "", "GET\n", "GET/1"])
def test_route_rejects_non_token_methods(method: str) -> None:
    assert_invalid(Route, route(methods=[method]), f"not an HTTP method: {method!r}")


@pytest.mark.parametrize("hosts", [None, ["example.com"], ["*.example.com", "api.example.org"]])
def test_route_accepts_hosts(hosts: list[str] | None) -> None:
    assert Route.model_validate(route(hosts=hosts)).hosts == hosts


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [("example.com", "valid list"), ([1], "valid string"), ([None], "valid string")],
)
def test_route_rejects_bad_hosts(hosts: Any, expected: str) -> None:
    assert_invalid(Route, route(hosts=hosts), expected)


def test_route_header_value_may_be_one_string() -> None:
    parsed = Route.model_validate(route(headers={"X-Version": "2", "X-Env": ["a", "b"]}))
    assert parsed.headers == {"X-Version": ["2"], "X-Env": ["a", "b"]}


def test_a_route_keeps_bodies_only_when_it_says_so() -> None:
    assert Route.model_validate(route()).call_log is None
    kept = Route.model_validate(
        route(call_log={"bodies": True, "max_body": "1KB", "redact_headers": ["X-Session"]})
    ).call_log
    assert kept is not None
    assert (kept.bodies, kept.max_body, kept.redact_headers) == (True, 1024, ["x-session"])


@pytest.mark.parametrize(
    ("call_log", "expected"),
    [
        ({"bodies": True, "redact_headers": ["x session"]}, "not a header field name: 'x session'"),
        ({"bodies": True, "max_body": -1}, "greater than or equal to 0"),
        ({"body": True}, "Extra inputs are not permitted"),
    ],
)
def test_a_route_call_log_refuses(call_log: dict[str, Any], expected: str) -> None:
    assert_invalid(Route, route(call_log=call_log), expected)


@pytest.mark.parametrize("name", ["a", "backend-1", "svc.v2_x", "9lives", "x" * 128])
def test_names_accept_the_documented_pattern(name: str) -> None:
    assert Route.model_validate(route(name=name)).name == name


@pytest.mark.parametrize("name", ["", "-lead", "has space", "x" * 129, "ümlaut"])
def test_names_reject_other_forms(name: str) -> None:
    assert_invalid(Route, route(name=name), "String should match pattern")


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "http://127.0.0.1:9001"},
        {"url": "https://api.example.com/base/path"},
        {"url": "http://[::1]:9001"},
        {"nodes": [{"url": "http://a:1"}, {"url": "http://b:1", "weight": 3}]},
        {"nodes": [{"url": "http://a:1", "weight": 0}, {"url": "http://b:1"}]},
        {"url": "https://a", "tls_client_cert": "c.pem", "tls_client_key": "k.pem"},
    ],
)
def test_target_accepts(fields: dict[str, Any]) -> None:
    Target.model_validate(target(**fields))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "give exactly one of 'url' or 'nodes'"),
        (
            {"url": "http://a", "nodes": [{"url": "http://b"}]},
            "give exactly one of 'url' or 'nodes'",
        ),
        ({"nodes": []}, "at least 1 item"),
        ({"nodes": [{"url": "http://a", "weight": 0}]}, "at least one node needs a weight above 0"),
        ({"nodes": [{"url": "http://a", "weight": 1001}]}, "less than or equal to 1000"),
        ({"nodes": [{"url": "http://a", "weight": -1}]}, "greater than or equal to 0"),
        ({"url": "ftp://a"}, "URL must start with http:// or https://"),
        ({"url": "http://"}, "URL has no host"),
        ({"url": "http://a/?q=1"}, "may not carry a query or fragment"),
        ({"url": "http://a:99999"}, "bad port"),
        (
            {"url": "http://a", "tls_client_key": "k.pem"},
            "'tls_client_key' needs 'tls_client_cert'",
        ),
        ({"url": "http://a", "weight": 2}, "Extra inputs are not permitted"),
    ],
)
def test_target_rejects(fields: dict[str, Any], expected: str) -> None:
    assert_invalid(Target, target(**fields), expected)


def test_single_url_target_has_one_node() -> None:
    parsed = Target.model_validate(target(url="http://a:1"))
    assert parsed.node_list == [Node(url="http://a:1", weight=1)]


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", [("127.0.0.1:8080", None)]),
        (["127.0.0.1:8080", "[::1]:8443"], [("127.0.0.1:8080", None), ("[::1]:8443", None)]),
        (
            {"address": "0.0.0.0:443", "tls": {"certificates": [{"cert": "c", "key": "k"}]}},
            [("0.0.0.0:443", "1.2")],
        ),
        (
            [
                "127.0.0.1:80",
                {
                    "address": "127.0.0.1:443",
                    "tls": {"certificates": [{"cert": "c", "key": "k"}], "min_version": "1.3"},
                },
            ],
            [("127.0.0.1:80", None), ("127.0.0.1:443", "1.3")],
        ),
    ],
)
def test_listen_forms(listen: Any, expected: list[tuple[str, str | None]]) -> None:
    parsed = Config.model_validate({"listen": listen}).listen
    assert [(item.address, item.tls and item.tls.min_version) for item in parsed] == expected


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("8080", "expected host:port, got '8080'"),
        (":8080", "expected host:port, got ':8080'"),
        ("localhost:http", "expected host:port"),
        ("localhost:65536", "expected host:port"),
        ({"address": "a:1", "tls": {"certificates": []}}, "at least 1 item"),
        (
            {"address": "a:1", "tls": {"certificates": [{"cert": "c"}]}},
            "Field required",
        ),
        (
            {
                "address": "a:1",
                "tls": {"certificates": [{"cert": "c", "key": "k"}], "min_version": "1.1"},
            },
            "Input should be '1.2' or '1.3'",
        ),
        ({"address": "a:1", "port": 2}, "Extra inputs are not permitted"),
    ],
)
def test_listen_rejects(listen: Any, expected: str) -> None:
    assert_invalid(Config, {"listen": listen}, expected)


@pytest.mark.parametrize(("workers", "expected"), [("auto", "auto"), (4, 4), ("2", 2)])
def test_workers_accepts(workers: Any, expected: Any) -> None:
    assert Config.model_validate({"workers": workers}).workers == expected


@pytest.mark.parametrize(
    ("workers", "expected"), [(0, "workers must be at least 1"), ("many", "Input should be 'auto'")]
)
def test_workers_rejects(workers: Any, expected: str) -> None:
    assert_invalid(Config, {"workers": workers}, expected)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"connect": "250ms"}, {"connect": 0.25}),
        ({"read": "2m", "write": "1h"}, {"read": 120.0, "write": 3600.0}),
        ({"connect": 3}, {"connect": 3.0}),
        ({"connect": "1.5s"}, {"connect": 1.5}),
    ],
)
def test_durations(fields: dict[str, Any], expected: dict[str, float]) -> None:
    parsed = Timeouts.model_validate(fields)
    assert {name: getattr(parsed, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"connect": "5 parsecs"}, "not a duration: '5 parsecs'"),
        ({"connect": "-1s"}, "not a duration"),
        ({"connect": 0}, "greater than 0"),
        ({"connect": -2}, "greater than"),
    ],
)
def test_bad_durations(fields: dict[str, Any], expected: str) -> None:
    assert_invalid(Timeouts, fields, expected)


@pytest.mark.parametrize(
    ("size", "expected"),
    [("64k", 65536), ("10MB", 10 * 1024**2), ("1GiB", 1024**3), ("512b", 512), (100, 100)],
)
def test_sizes(size: Any, expected: int) -> None:
    assert Limits.model_validate({"max_body_size": size}).max_body_size == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [("10XB", "not a size: '10XB'"), ("1.5k", "not a size"), (-1, "greater than or equal to 0")],
)
def test_bad_sizes(size: Any, expected: str) -> None:
    assert_invalid(Limits, {"max_body_size": size}, expected)


def test_validated_config_is_frozen() -> None:
    config = Config.model_validate({})
    with pytest.raises(ValidationError, match="frozen"):
        config.workers = 3  # type: ignore[misc]


def test_defaults_without_any_keys() -> None:
    config = Config.model_validate({})
    assert [item.address for item in config.listen] == ["127.0.0.1:8080"]
    assert config.targets == [] and config.routes == []
    assert config.timeouts == Timeouts()


def test_balance_takes_an_algorithm_name_as_shorthand() -> None:
    from quiver.config.models import Config

    config = Config.model_validate(
        {"targets": [{"name": "b", "url": "http://127.0.0.1:9", "balance": "least_conn"}]}
    )
    assert config.targets[0].balance.algorithm == "least_conn"


def test_consistent_hash_needs_its_key() -> None:
    import pydantic

    from quiver.config.models import Config

    with pytest.raises(pydantic.ValidationError, match="hash_on"):
        Config.model_validate(
            {"targets": [{"name": "b", "url": "http://127.0.0.1:9", "balance": "consistent_hash"}]}
        )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com", "https://api.example.com"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("https://example.com/gateway/", "https://example.com/gateway"),
    ],
)
def test_the_portal_gateway_url_accepts(url: str, expected: str) -> None:
    assert Config.model_validate({"portal": {"gateway_url": url}}).portal.gateway_url == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("api.example.com", "expected an http:// or https:// URL with a host"),
        ("ftp://api.example.com", "expected an http:// or https:// URL with a host"),
        ("https://", "expected an http:// or https:// URL with a host"),
        ("https://api.example.com/?x=1", "takes no query, fragment or user"),
        ("https://user:pw@api.example.com", "takes no query, fragment or user"),
    ],
)
def test_the_portal_gateway_url_rejects(url: str, expected: str) -> None:
    assert_invalid(Config, {"portal": {"gateway_url": url}}, expected)


def test_the_portal_has_no_gateway_url_by_default() -> None:
    assert Config.model_validate({}).portal.gateway_url is None
