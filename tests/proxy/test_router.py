"""Route lookup: path normalization, pattern kinds, conditions, precedence, forwarded path."""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

import pytest

from quiver.config.models import Route
from quiver.proxy.routing import RouteMatch, Router, normalize_path
from quiver.proxy.routing.entry import new_match
from quiver.proxy.routing.patterns import (
    parse_path_pattern,
    regex_literal_count,
    regex_literal_prefix,
)

Request = tuple[bytes, bytes, bytes, dict[bytes, bytes]]
Expected = tuple[str, dict[str, str], bytes] | None


def route(name: str, *paths: str, **options: Any) -> Route:
    return Route(name=name, paths=list(paths), target="backend", **options)


def req(path: bytes, method: bytes = b"GET", host: bytes = b"", **headers: bytes) -> Request:
    return (method, host, path, {k.replace("_", "-").encode(): v for k, v in headers.items()})


def lookup(routes: list[Route], request: Request) -> RouteMatch[str] | None:
    router: Router[str] = Router([(r, r.name) for r in routes])
    return router.match(*request)


def outcome(found: RouteMatch[str] | None) -> Expected:
    if found is None:
        return None
    assert found.value == found.route.name
    return (found.value, found.params, found.path)


# --------------------------------------------------------------------- normalize_path

NORMALIZED = [
    (b"/", b"/"),
    (b"/a/b", b"/a/b"),
    (b"/a//b", b"/a//b"),
    (b"/a/b/", b"/a/b/"),
    (b"/a/./b", b"/a/b"),
    (b"/a/../b", b"/b"),
    (b"/a/b/..", b"/a/"),
    (b"/a/b/.", b"/a/b/"),
    (b"/a/..", b"/"),
    (b"/..", b"/"),
    (b"/../../etc/passwd", b"/etc/passwd"),
    (b"/a//../b", b"/a/b"),
    (b"/a/.hidden/..b/...", b"/a/.hidden/..b/..."),
    (b"/a/%2e%2E/b", b"/b"),
    (b"/a/%2E/b", b"/a/b"),
    (b"/a/.%2e", b"/"),
    (b"/api/%2e%2e/admin", b"/admin"),
    (b"/a%2Fb", b"/a%2Fb"),
    (b"/a%2fb", b"/a%2Fb"),
    (b"/a/%2F../b", b"/a/%2F../b"),
    (b"/%7euser", b"/~user"),
    (b"/%41%62%2D%5F%2e%7E", b"/Ab-_.~"),
    (b"/caf%c3%a9", b"/caf%C3%A9"),
    (b"/a%20b", b"/a%20b"),
    (b"/%25", b"/%25"),
    (b"/%2541", b"/%2541"),
    (b"/caf\xc3\xa9", b"/caf\xc3\xa9"),
    (b"/a:b@c!$&'()*+,;=", b"/a:b@c!$&'()*+,;="),
    (b'/a"<>\\^`{|}', b'/a"<>\\^`{|}'),
]

INVALID_PATHS = [
    b"",
    b"a/b",
    b"*",
    b"%2Fa",
    b"/a b",
    b"/a\x00",
    b"/a\t",
    b"/a\r\n",
    b"/a\x7f",
    b"/a\x1f",
    b"/%",
    b"/a%",
    b"/%2",
    b"/%zz",
    b"/%2g",
    b"/%+1",
    b"/%_1",
    b"/% 1",
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZED)
def test_normalize_path(raw: bytes, expected: bytes) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("raw", INVALID_PATHS)
def test_normalize_path_rejects_invalid(raw: bytes) -> None:
    assert normalize_path(raw) is None


def test_normalize_path_returns_plain_paths_unchanged() -> None:
    raw = b"/svc/users/42"
    assert normalize_path(raw) is raw


def test_normalized_path_is_stable() -> None:
    for raw, _ in NORMALIZED:
        once = normalize_path(raw)
        assert once is not None
        assert normalize_path(once) == once


# --------------------------------------------------------------- matching, one by one

MATCHES: list[tuple[list[Route], Request, Expected]] = [
    # prefix on segment boundaries
    ([route("r", "/items")], req(b"/items"), ("r", {}, b"/items")),
    ([route("r", "/items")], req(b"/items/"), ("r", {}, b"/items/")),
    ([route("r", "/items")], req(b"/items/1/x"), ("r", {}, b"/items/1/x")),
    ([route("r", "/items")], req(b"/itemsx"), None),
    ([route("r", "/items")], req(b"/item"), None),
    ([route("r", "/items")], req(b"/"), None),
    ([route("r", "/")], req(b"/"), ("r", {}, b"/")),
    ([route("r", "/")], req(b"/any/thing"), ("r", {}, b"/any/thing")),
    ([route("r", "/api/")], req(b"/api/"), ("r", {}, b"/api/")),
    ([route("r", "/api/")], req(b"/api/x"), ("r", {}, b"/api/x")),
    ([route("r", "/api/")], req(b"/api"), None),
    ([route("r", "/a/b")], req(b"/a/b/c"), ("r", {}, b"/a/b/c")),
    ([route("r", "/a/b")], req(b"/a/bc"), None),
    ([route("r", "/a//b")], req(b"/a//b/c"), ("r", {}, b"/a//b/c")),
    ([route("r", "/a//b")], req(b"/a/b"), None),
    # patterns are normalized like requests
    ([route("r", "/%7euser/./x")], req(b"/~user/x"), ("r", {}, b"/~user/x")),
    ([route("r", "/café")], req(b"/caf%C3%A9"), ("r", {}, b"/caf%C3%A9")),
    ([route("r", "/a%2fb")], req(b"/a%2Fb/c"), ("r", {}, b"/a%2Fb/c")),
    ([route("r", "/a%2fb")], req(b"/a/b"), None),
    # exact
    ([route("r", "=/items")], req(b"/items"), ("r", {}, b"/items")),
    ([route("r", "=/items")], req(b"/items/"), None),
    ([route("r", "=/items")], req(b"/items/1"), None),
    ([route("r", "=/api/")], req(b"/api/"), ("r", {}, b"/api/")),
    ([route("r", "=/api/")], req(b"/api"), None),
    ([route("r", "=/")], req(b"/"), ("r", {}, b"/")),
    ([route("r", "=/")], req(b"/x"), None),
    # templates: one non-empty segment per parameter, prefix unless "="
    ([route("r", "/users/{id}")], req(b"/users/7"), ("r", {"id": "7"}, b"/users/7")),
    ([route("r", "/users/{id}")], req(b"/users/7/"), ("r", {"id": "7"}, b"/users/7/")),
    ([route("r", "/users/{id}")], req(b"/users/7/posts"), ("r", {"id": "7"}, b"/users/7/posts")),
    ([route("r", "/users/{id}")], req(b"/users/"), None),
    ([route("r", "/users/{id}")], req(b"/users"), None),
    ([route("r", "/users/{id}")], req(b"/users//x"), None),
    ([route("r", "/users/{id}")], req(b"/usersx/7"), None),
    ([route("r", "=/users/{id}")], req(b"/users/7"), ("r", {"id": "7"}, b"/users/7")),
    ([route("r", "=/users/{id}")], req(b"/users/7/"), None),
    ([route("r", "=/users/{id}")], req(b"/users/7/posts"), None),
    ([route("r", "=/users/{id}/")], req(b"/users/7/"), ("r", {"id": "7"}, b"/users/7/")),
    ([route("r", "/users/{id}/")], req(b"/users/7"), None),
    ([route("r", "/users/{id}/")], req(b"/users/7/x"), ("r", {"id": "7"}, b"/users/7/x")),
    (
        [route("r", "/users/{id}/posts/{post}")],
        req(b"/users/7/posts/9"),
        ("r", {"id": "7", "post": "9"}, b"/users/7/posts/9"),
    ),
    ([route("r", "/users/{id}/posts/{post}")], req(b"/users/7/comments/9"), None),
    (
        [route("r", "/{tenant}/items")],
        req(b"/acme/items/1"),
        ("r", {"tenant": "acme"}, b"/acme/items/1"),
    ),
    # parameters are kept as captured: still percent-encoded, bytes as latin-1
    ([route("r", "/users/{id}")], req(b"/users/a%2Fb"), ("r", {"id": "a%2Fb"}, b"/users/a%2Fb")),
    ([route("r", "/users/{id}")], req(b"/users/\xc3\xa9"), ("r", {"id": "Ã©"}, b"/users/\xc3\xa9")),
    # a parameter sharing its segment with text
    (
        [route("r", "/files/{name}.json")],
        req(b"/files/a.json"),
        ("r", {"name": "a"}, b"/files/a.json"),
    ),
    (
        [route("r", "/files/{name}.json")],
        req(b"/files/a.b.json/x"),
        ("r", {"name": "a.b"}, b"/files/a.b.json/x"),
    ),
    ([route("r", "/files/{name}.json")], req(b"/files/a.jsonx"), None),
    ([route("r", "/files/{name}.json")], req(b"/files/.json"), None),
    ([route("r", "=/files/{name}.json")], req(b"/files/a.json/x"), None),
    (
        [route("r", "/v{major}.{minor}/{rest}")],
        req(b"/v2.1/x"),
        ("r", {"major": "2", "minor": "1", "rest": "x"}, b"/v2.1/x"),
    ),
    # regex: re.match on the latin-1 path; named groups are the parameters
    ([route("r", "~^/v(?P<ver>[0-9]+)/")], req(b"/v12/x"), ("r", {"ver": "12"}, b"/v12/x")),
    ([route("r", "~^/v(?P<ver>[0-9]+)/")], req(b"/v/x"), None),
    ([route("r", "~/v[0-9]+")], req(b"/x/v1"), None),
    ([route("r", "~/v[0-9]+")], req(b"/v1"), ("r", {}, b"/v1")),
    ([route("r", "~^/(a|b)/")], req(b"/b/x"), ("r", {}, b"/b/x")),
    ([route("r", "~^/o(?P<opt>x)?/")], req(b"/o/"), ("r", {}, b"/o/")),
    ([route("r", "~^/legacy/v[0-9]+$")], req(b"/legacy/v3"), ("r", {}, b"/legacy/v3")),
    ([route("r", "~^/legacy/v[0-9]+$")], req(b"/legacy"), None),
    ([route("r", "~^/legacy/v[0-9]+$")], req(b"/legacyx/v3"), None),
    ([route("r", "~^/(?:a|b)/z")], req(b"/b/z"), ("r", {}, b"/b/z")),
    ([route("r", "~(?i)^/ABC")], req(b"/abc"), ("r", {}, b"/abc")),
    ([route("r", "~^/caf\xe9")], req(b"/caf\xe9"), ("r", {}, b"/caf\xe9")),
    # hosts: exact, case-insensitive, wildcards one level or deeper but not the apex
    (
        [route("r", "/", hosts=["api.example.com"])],
        req(b"/", host=b"api.example.com"),
        ("r", {}, b"/"),
    ),
    (
        [route("r", "/", hosts=["API.Example.COM"])],
        req(b"/", host=b"api.example.com"),
        ("r", {}, b"/"),
    ),
    ([route("r", "/", hosts=["api.example.com"])], req(b"/", host=b"other.example.com"), None),
    ([route("r", "/", hosts=["api.example.com"])], req(b"/"), None),
    ([route("r", "/", hosts=["*.example.com"])], req(b"/", host=b"a.example.com"), ("r", {}, b"/")),
    (
        [route("r", "/", hosts=["*.example.com"])],
        req(b"/", host=b"a.b.example.com"),
        ("r", {}, b"/"),
    ),
    ([route("r", "/", hosts=["*.example.com"])], req(b"/", host=b"example.com"), None),
    ([route("r", "/", hosts=["*.example.com"])], req(b"/", host=b"badexample.com"), None),
    ([route("r", "/", hosts=["*.example.com"])], req(b"/"), None),
    ([route("r", "/", hosts=["*"])], req(b"/", host=b"anything.org"), ("r", {}, b"/")),
    ([route("r", "/", hosts=["a.org", "b.org"])], req(b"/", host=b"b.org"), ("r", {}, b"/")),
    # methods
    ([route("r", "/", methods=["get", "POST"])], req(b"/", method=b"GET"), ("r", {}, b"/")),
    ([route("r", "/", methods=["get", "POST"])], req(b"/", method=b"POST"), ("r", {}, b"/")),
    ([route("r", "/", methods=["GET"])], req(b"/", method=b"DELETE"), None),
    ([route("r", "/", methods=["GET"])], req(b"/", method=b"get"), None),
    # headers: present with a listed value (case-sensitive) or matching a ~regex
    (
        [route("r", "/", headers={"X-Env": ["prod", "~^stag"]})],
        req(b"/", x_env=b"prod"),
        ("r", {}, b"/"),
    ),
    (
        [route("r", "/", headers={"X-Env": ["prod", "~^stag"]})],
        req(b"/", x_env=b"staging"),
        ("r", {}, b"/"),
    ),
    ([route("r", "/", headers={"X-Env": ["prod", "~^stag"]})], req(b"/", x_env=b"Prod"), None),
    ([route("r", "/", headers={"X-Env": ["prod", "~^stag"]})], req(b"/", x_env=b"mystaging"), None),
    ([route("r", "/", headers={"X-Env": ["prod", "~^stag"]})], req(b"/"), None),
    ([route("r", "/", headers={"x-a": "1"})], req(b"/", x_a=b"1"), ("r", {}, b"/")),
    ([route("r", "/", headers={"x-a": "1", "x-b": "2"})], req(b"/", x_a=b"1"), None),
    (
        [route("r", "/", headers={"x-a": "1", "x-b": "2"})],
        req(b"/", x_a=b"1", x_b=b"2"),
        ("r", {}, b"/"),
    ),
    ([route("r", "/", headers={"x-flag": []})], req(b"/", x_flag=b""), ("r", {}, b"/")),
    ([route("r", "/", headers={"x-flag": []})], req(b"/"), None),
    # strip_path: the matched part goes, a leading slash stays
    ([route("r", "/api", strip_path=True)], req(b"/api/x/y"), ("r", {}, b"/x/y")),
    ([route("r", "/api", strip_path=True)], req(b"/api"), ("r", {}, b"/")),
    ([route("r", "/api", strip_path=True)], req(b"/api/"), ("r", {}, b"/")),
    ([route("r", "/api/", strip_path=True)], req(b"/api/x"), ("r", {}, b"/x")),
    ([route("r", "/api/", strip_path=True)], req(b"/api/"), ("r", {}, b"/")),
    ([route("r", "/", strip_path=True)], req(b"/x"), ("r", {}, b"/x")),
    ([route("r", "=/exact", strip_path=True)], req(b"/exact"), ("r", {}, b"/")),
    (
        [route("r", "/users/{id}", strip_path=True)],
        req(b"/users/7/posts"),
        ("r", {"id": "7"}, b"/posts"),
    ),
    ([route("r", "/users/{id}", strip_path=True)], req(b"/users/7"), ("r", {"id": "7"}, b"/")),
    ([route("r", "/users/{id}/", strip_path=True)], req(b"/users/7/x"), ("r", {"id": "7"}, b"/x")),
    ([route("r", "=/users/{id}", strip_path=True)], req(b"/users/7"), ("r", {"id": "7"}, b"/")),
    (
        [route("r", "/files/{n}.json", strip_path=True)],
        req(b"/files/a.json/meta"),
        ("r", {"n": "a"}, b"/meta"),
    ),
    ([route("r", "~^/v[0-9]+", strip_path=True)], req(b"/v2/users"), ("r", {}, b"/users")),
    ([route("r", "~^/v[0-9]+/", strip_path=True)], req(b"/v2/users"), ("r", {}, b"/users")),
    ([route("r", "~^/v[0-9]+/", strip_path=True)], req(b"/v2/"), ("r", {}, b"/")),
    # rewrite: replaces the part of the path the pattern matched, filled from the
    # parameters as captured; the rest of the path follows it
    (
        [route("r", "/users/{id}", rewrite="/v2/people/{id}")],
        req(b"/users/7/x"),
        ("r", {"id": "7"}, b"/v2/people/7/x"),
    ),
    (
        [route("r", "/users/{id}", rewrite="/echo/user/{id}")],
        req(b"/users/42/posts"),
        ("r", {"id": "42"}, b"/echo/user/42/posts"),
    ),
    (
        [route("r", "/users/{id}", rewrite="/v2/people/{id}")],
        req(b"/users/7"),
        ("r", {"id": "7"}, b"/v2/people/7"),
    ),
    (
        [route("r", "/users/{id}", rewrite="/v2/people/{id}")],
        req(b"/users/7/"),
        ("r", {"id": "7"}, b"/v2/people/7/"),
    ),
    (
        [route("r", "/users/{id}", rewrite="/v2/{id}/")],
        req(b"/users/7/x"),
        ("r", {"id": "7"}, b"/v2/7/x"),
    ),
    (
        [route("r", "/users/{id}/", rewrite="/v2/{id}")],
        req(b"/users/7/x/y"),
        ("r", {"id": "7"}, b"/v2/7/x/y"),
    ),
    (
        [route("r", "=/users/{id}", rewrite="/v2/{id}")],
        req(b"/users/7"),
        ("r", {"id": "7"}, b"/v2/7"),
    ),
    (
        [route("r", "/users/{id}", rewrite="/v2/people/{id}")],
        req(b"/users/a%2Fb"),
        ("r", {"id": "a%2Fb"}, b"/v2/people/a%2Fb"),
    ),
    (
        [route("r", "/users/{id}", rewrite="/v2/people/{id}", strip_path=True)],
        req(b"/users/7/x"),
        ("r", {"id": "7"}, b"/v2/people/7/x"),
    ),
    (
        [route("r", "/u/{a}/{b}", rewrite="/{b}/{a}/{b}")],
        req(b"/u/1/2"),
        ("r", {"a": "1", "b": "2"}, b"/2/1/2"),
    ),
    (
        [route("r", "/users/{id}", rewrite="v2/{id}")],
        req(b"/users/7"),
        ("r", {"id": "7"}, b"/v2/7"),
    ),
    ([route("r", "/old", rewrite="/new")], req(b"/old/x"), ("r", {}, b"/new/x")),
    ([route("r", "/old", rewrite="/new")], req(b"/old"), ("r", {}, b"/new")),
    ([route("r", "/", rewrite="/v1")], req(b"/a/b"), ("r", {}, b"/v1/a/b")),
    ([route("r", "=/old", rewrite="/a%20b")], req(b"/old"), ("r", {}, b"/a%20b")),
    (
        [route("r", "~^/v(?P<ver>[0-9]+)/", rewrite="/api/{ver}")],
        req(b"/v12/x"),
        ("r", {"ver": "12"}, b"/api/12/x"),
    ),
    (
        [route("r", "~^/v(?P<ver>[0-9]+)/.*", rewrite="/api/{ver}")],
        req(b"/v12/x"),
        ("r", {"ver": "12"}, b"/api/12"),
    ),
    ([route("r", "~^/o(?P<opt>x)?/", rewrite="/p{opt}")], req(b"/o/"), ("r", {}, b"/p")),
    (
        [route("r", "/f/{n}.json", rewrite="/files/{n}")],
        req(b"/f/a.json"),
        ("r", {"n": "a"}, b"/files/a"),
    ),
    (
        [route("r", "/f/{n}.json", rewrite="/files/{n}")],
        req(b"/f/a.json/meta"),
        ("r", {"n": "a"}, b"/files/a/meta"),
    ),
]


@pytest.mark.parametrize(("routes", "request_", "expected"), MATCHES)
def test_match(routes: list[Route], request_: Request, expected: Expected) -> None:
    assert outcome(lookup(routes, request_)) == expected


# ------------------------------------------------------------------------ precedence

PRECEDENCE: list[tuple[list[Route], Request, str]] = [
    # priority beats every other rule, negative priority loses to the default
    ([route("long", "=/items"), route("prio", "/", priority=1)], req(b"/items"), "prio"),
    ([route("neg", "/items", priority=-1), route("root", "/")], req(b"/items"), "root"),
    (
        [route("deep", "/a/b/c"), route("shallow", "/a", priority=5)],
        req(b"/a/b/c/d"),
        "shallow",
    ),
    # host: exact > wildcard (longer suffix first) > none, before any path rule
    (
        [
            route("none", "=/x"),
            route("wild", "/", hosts=["*.example.com"]),
            route("exact", "/", hosts=["a.example.com"]),
        ],
        req(b"/x", host=b"a.example.com"),
        "exact",
    ),
    (
        [route("none", "=/x"), route("wild", "/", hosts=["*.example.com"])],
        req(b"/x", host=b"b.example.com"),
        "wild",
    ),
    (
        [route("none", "=/x"), route("wild", "/", hosts=["*.example.com"])],
        req(b"/x", host=b"example.org"),
        "none",
    ),
    (
        [
            route("short", "/", hosts=["*.example.com"]),
            route("long", "/", hosts=["*.b.example.com"]),
        ],
        req(b"/", host=b"a.b.example.com"),
        "long",
    ),
    # path: exact first, then more literal characters, then template > regex > prefix
    ([route("regex", "~^/abc"), route("exact", "=/abc")], req(b"/abc"), "exact"),
    ([route("tmpl", "/{x}"), route("exact", "=/abc")], req(b"/abc"), "exact"),
    ([route("param", "=/users/{id}"), route("lit", "=/users/me")], req(b"/users/me"), "lit"),
    ([route("short", "/api"), route("long", "/api/v1")], req(b"/api/v1/x"), "long"),
    ([route("short", "/api"), route("long", "/api/v1")], req(b"/api/v2"), "short"),
    (
        [route("prefix", "/users"), route("tmpl", "/users/{id}/posts")],
        req(b"/users/1/posts"),
        "tmpl",
    ),
    ([route("tmpl", "/users/{id}"), route("prefix", "/users/me")], req(b"/users/me/x"), "prefix"),
    (
        [route("prefix", "/users/"), route("regex", "~^/users/"), route("tmpl", "/users/{id}")],
        req(b"/users/5"),
        "tmpl",
    ),
    ([route("prefix", "/users/"), route("regex", "~^/users/")], req(b"/users/5"), "regex"),
    ([route("regex", "~^/v[0-9]+/"), route("prefix", "/v1/x")], req(b"/v1/x"), "prefix"),
    # a literal branch that dead-ends gives way to the parameter branch
    (
        [route("settings", "/users/me/settings"), route("posts", "/users/{id}/posts")],
        req(b"/users/me/posts"),
        "posts",
    ),
    (
        [route("settings", "/users/me/settings"), route("posts", "/users/{id}/posts")],
        req(b"/users/me/settings"),
        "settings",
    ),
    # more conditions first, and a route whose conditions fail gives way
    ([route("plain", "/items"), route("get", "/items", methods=["GET"])], req(b"/items"), "get"),
    (
        [route("plain", "/items"), route("get", "/items", methods=["GET"])],
        req(b"/items", method=b"POST"),
        "plain",
    ),
    (
        [
            route("m", "/items", methods=["GET"]),
            route("mh", "/items", methods=["GET"], headers={"x-v": "2"}),
        ],
        req(b"/items", x_v=b"2"),
        "mh",
    ),
    (
        [
            route("m", "/items", methods=["GET"]),
            route("mh", "/items", methods=["GET"], headers={"x-v": "2"}),
        ],
        req(b"/items", x_v=b"3"),
        "m",
    ),
    (
        [route("root", "/"), route("post", "/items", methods=["POST"], priority=9)],
        req(b"/items"),
        "root",
    ),
    # a regex hung under its leading segments still competes with the prefix there
    (
        [route("prefix", "/legacy"), route("regex", "~^/legacy/v[0-9]+")],
        req(b"/legacy/v2"),
        "regex",
    ),
    (
        [route("prefix", "/legacy"), route("regex", "~^/legacy/v[0-9]+")],
        req(b"/legacy/x"),
        "prefix",
    ),
    ([route("tmpl", "/{a}/{b}"), route("regex", "~^/x/(?P<n>[0-9]+)")], req(b"/x/12"), "regex"),
    # config order breaks the last ties
    ([route("first", "/items"), route("second", "/items")], req(b"/items"), "first"),
    # each path of a route is ranked on its own
    ([route("multi", "/x", "=/y"), route("other", "/y")], req(b"/y"), "multi"),
    ([route("multi", "/x", "=/y"), route("other", "/y")], req(b"/y/z"), "other"),
]


@pytest.mark.parametrize(("routes", "request_", "expected"), PRECEDENCE)
def test_precedence(routes: list[Route], request_: Request, expected: str) -> None:
    found = lookup(routes, request_)
    assert found is not None
    assert found.value == expected


def test_table_lists_combinations_in_precedence_order() -> None:
    routes = [
        route("root", "/"),
        route("items", "/items", "=/items/count", methods=["GET"]),
        route("user", "/users/{id}", strip_path=True),
        route("legacy", "~^/v[0-9]+/"),
        route("hosted", "/", hosts=["*.example.com", "api.example.com"], priority=0),
        route("urgent", "/", priority=10, headers={"x-a": ["1"]}, rewrite="/b"),
    ]
    rows = Router([(r, None) for r in routes]).table()
    order = [(row["name"], row["pattern"], row["hosts"]) for row in rows]
    assert order == [
        ("urgent", "/", None),
        ("hosted", "/", ["api.example.com"]),
        ("hosted", "/", ["*.example.com"]),
        ("items", "=/items/count", None),
        ("user", "/users/{id}", None),
        ("items", "/items", None),
        ("legacy", "~^/v[0-9]+/", None),
        ("root", "/", None),
    ]
    assert [row["order"] for row in rows] == list(range(1, 9))
    assert rows[0] == {
        "order": 1,
        "name": "urgent",
        "kind": "prefix",
        "pattern": "/",
        "methods": None,
        "hosts": None,
        "headers": {"x-a": ["1"]},
        "priority": 10,
        "strip_path": False,
        "rewrite": "/b",
    }
    kinds = {row["pattern"]: row["kind"] for row in rows}
    assert kinds["=/items/count"] == "exact"
    assert kinds["/users/{id}"] == "template"
    assert kinds["~^/v[0-9]+/"] == "regex"
    assert rows[3]["methods"] == ["GET"]


def test_table_order_is_the_order_match_uses() -> None:
    routes = [route(f"r{i}", "/") for i in range(5)]
    router: Router[str] = Router([(r, r.name) for r in reversed(routes)])
    found = router.match(b"GET", b"", b"/", {})
    assert found is not None
    assert found.value == router.table()[0]["name"] == "r4"


# ------------------------------------------------------------------- invalid configs


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (route("r", "/a b"), "not a valid path"),
        (route("r", "/users/{1x}"), "bad parameter name"),
        (route("r", "/users/{}"), "bad parameter name"),
        (route("r", "/u/{id}/{id}"), "appears twice"),
        (route("r", "/u/{id"), "unbalanced"),
        (route("r", "/u/id}"), "unbalanced"),
        (route("r", "/u/{a}{{b}"), "unbalanced"),
        (route("r", "/users/{id}", rewrite="/p/{uid}"), "does not capture"),
        (route("r", "/users", rewrite="/p/{id}"), "does not capture"),
        (route("r", "~^/v(?P<v>[0-9])", rewrite="/{w}"), "does not capture"),
        (route("r", "/users", rewrite="/p/{id"), "unbalanced"),
        (route("r", "/users", rewrite="/a b"), "space or control"),
        (route("r", "/", hosts=["api.*.com"]), "host"),
        (route("r", "/", hosts=["api.example.com:8080"]), "without port"),
        (route("r", "/", hosts=["*."]), "host"),
        (route("r", "/", headers={"x-a": ["~("]}), "bad regex"),
    ],
)
def test_invalid_route_is_refused_with_its_name(bad: Route, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Router([(bad, None)])
    assert "'r'" in str(caught.value)


# ------------------------------------------------------------------ compiled pieces


@pytest.mark.parametrize(
    ("source", "prefix", "count"),
    [
        ("^/legacy/v[0-9]+", "/legacy/v", 9),
        ("^/ab*c", "/a", 4),
        ("/x+y", "/", 3),
        ("^/a|^/b", "", 4),
        ("(?i)^/abc", "", 4),
        (r"^/a\.b/", "/a.b/", 5),
        (r"\A/a\d", "/a", 2),
        ("^/(?P<name>[a-z]{2,3})/x", "/", 3),
        ("^/a{2}", "/", 2),
        ("^/v[0-9]+/", "/v", 3),
    ],
)
def test_regex_ranking_and_indexing_helpers(source: str, prefix: str, count: int) -> None:
    assert regex_literal_prefix(source) == prefix
    assert regex_literal_count(source) == count


def test_regexes_hang_under_their_leading_segments() -> None:
    assert parse_path_pattern("~^/legacy/v[0-9]+").segments == (b"legacy",)
    assert parse_path_pattern("~^/a/b/c").segments == (b"a", b"b")
    assert parse_path_pattern("~^/v[0-9]+").segments == ()
    assert parse_path_pattern("/f/{n}.json").segments == (b"f",)


def test_literal_counts() -> None:
    assert parse_path_pattern("/users/{id}/posts").literal_count == len("/users//posts")
    assert parse_path_pattern("=/items").literal_count == len("/items")
    assert parse_path_pattern("/").literal_count == 1


def test_match_result_is_a_frozen_route_match() -> None:
    r = route("r", "/users/{id}")
    built = new_match("v", r, {"id": "1"}, b"/users/1")
    assert built == RouteMatch("v", r, {"id": "1"}, b"/users/1")
    assert repr(built).startswith("RouteMatch(value='v'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.path = b"/"  # type: ignore[misc]


def test_payload_is_returned_as_given() -> None:
    payload = object()
    router = Router([(route("r", "/"), payload)])
    found = router.match(b"GET", b"", b"/x", {})
    assert found is not None
    assert found.value is payload


def test_empty_router_matches_nothing() -> None:
    router: Router[int] = Router([])
    assert router.match(b"GET", b"a.org", b"/", {}) is None
    assert router.table() == []


# --------------------------------------------------------------------- 5,000 routes


def test_five_thousand_routes_each_probe_finds_its_route() -> None:
    routes: list[Route] = []
    for i in range(500):
        base = f"/svc{i}"
        routes += [
            route(f"{i}-all", base),
            route(f"{i}-orders", f"{base}/orders/", strip_path=True),
            route(f"{i}-user", f"{base}/users/{{id}}"),
            route(f"{i}-post", f"{base}/users/{{id}}/posts/{{post}}", rewrite="/p/{post}/{id}"),
            route(f"{i}-health", f"={base}/health"),
            route(f"{i}-write", f"{base}/items", methods=["POST", "PUT"]),
            route(f"{i}-items", f"{base}/items"),
            route(f"{i}-beta", f"{base}/items", headers={"x-beta": ["1", "~^yes"]}),
            route(f"{i}-host", "/", hosts=[f"api{i}.example.com"]),
            route(f"{i}-legacy", f"~^/legacy{i}/v(?P<v>[0-9]+)/")
            if i % 2
            else route(f"{i}-tenant", "/", hosts=[f"*.t{i}.example.com"]),
        ]
    assert len(routes) == 5000
    random.Random(3).shuffle(routes)
    router: Router[str] = Router([(r, r.name) for r in routes])
    assert len(router.table()) == 5000

    rng = random.Random(11)
    for _ in range(3000):
        i = rng.randrange(500)
        svc = f"/svc{i}".encode()
        n = str(rng.randrange(10**6)).encode()
        probes: list[tuple[Request, Expected]] = [
            (req(svc + b"/users/" + n), (f"{i}-user", {"id": n.decode()}, svc + b"/users/" + n)),
            (
                req(svc + b"/users/" + n + b"/posts/9"),
                (f"{i}-post", {"id": n.decode(), "post": "9"}, b"/p/9/" + n),
            ),
            (
                req(svc + b"/users/" + n + b"/posts/9/c"),
                (f"{i}-post", {"id": n.decode(), "post": "9"}, b"/p/9/" + n + b"/c"),
            ),
            (req(svc + b"/orders/" + n), (f"{i}-orders", {}, b"/" + n)),
            (req(svc + b"/health"), (f"{i}-health", {}, svc + b"/health")),
            (req(svc + b"/health/x"), (f"{i}-all", {}, svc + b"/health/x")),
            (req(svc + b"/items/" + n, method=b"PUT"), (f"{i}-write", {}, svc + b"/items/" + n)),
            (req(svc + b"/items", x_beta=b"yes-please"), (f"{i}-beta", {}, svc + b"/items")),
            (req(svc + b"/items", x_beta=b"no"), (f"{i}-items", {}, svc + b"/items")),
            (req(svc + b"/other"), (f"{i}-all", {}, svc + b"/other")),
            (req(b"/x", host=f"api{i}.example.com".encode()), (f"{i}-host", {}, b"/x")),
            (req(svc + b"x/users/" + n), None),
            (req(b"/nosuch/" + n, host=b"unknown.example.org"), None),
        ]
        if i % 2:
            legacy = f"/legacy{i}/v3/a".encode()
            probes.append((req(legacy), (f"{i}-legacy", {"v": "3"}, legacy)))
            probes.append((req(f"/legacy{i}/vx/a".encode()), None))
        else:
            probes.append(
                (req(b"/q", host=f"a.b.t{i}.example.com".encode()), (f"{i}-tenant", {}, b"/q"))
            )
            probes.append((req(b"/q", host=f"t{i}.example.com".encode()), None))
        for request, expected in probes:
            assert outcome(router.match(*request)) == expected, request


# ------------------------------------------------ against a naive reference matcher


def _reference_fits(pattern: str, path: str) -> bool:
    """Pattern semantics written the slow, obvious way."""
    if pattern.startswith("~"):
        return re.match(pattern[1:], path) is not None
    anchored = pattern.startswith("=")
    body = pattern.lstrip("=")
    if "{" in body:
        parts = re.split(r"\{[a-z0-9]+\}", body)
        source = "[^/]+".join(re.escape(part) for part in parts)
        if anchored:
            return re.fullmatch(source, path) is not None
        if body.endswith("/"):
            return re.match(source, path) is not None
        return re.match(source + "(/|$)", path) is not None
    if anchored:
        return path == body
    if body.endswith("/"):
        return path.startswith(body)
    return path == body or path.startswith(body + "/")


def _reference(rows: list[dict[str, Any]], method: str, host: str, path: str) -> str | None:
    for row in rows:
        hosts = row["hosts"]
        if hosts:
            wanted = hosts[0]
            if wanted.startswith("*."):
                if not (host.endswith(wanted[1:]) and len(host) > len(wanted) - 1):
                    continue
            elif host != wanted:
                continue
        if row["methods"] and method not in row["methods"]:
            continue
        if _reference_fits(row["pattern"], path):
            return str(row["name"])
    return None


def test_agrees_with_a_naive_matcher_on_random_tables() -> None:
    rng = random.Random(5)
    words = ["a", "b", "ab", "c"]

    def some_path(parts: int) -> str:
        segments = [
            rng.choice([*words, "{x}" if rng.random() < 0.3 else "a"]) for _ in range(parts)
        ]
        return "".join(f"/{s}" if s != "{x}" else f"/{{x{n}}}" for n, s in enumerate(segments))

    for _table in range(30):
        routes: list[Route] = []
        for i in range(60):
            shape = rng.randrange(7)
            base = some_path(rng.randint(1, 3))
            plain = re.sub(r"\{x[0-9]\}", "a", base)
            if shape == 0:
                pattern = "=" + base
            elif shape == 1:
                pattern = plain + "/"
            elif shape == 2:
                pattern = "~^" + re.escape(plain) + "(/[0-9]+)?"
            elif shape == 3:
                pattern = "~^/(a|b)" + re.escape(plain)
            else:
                pattern = base
            options: dict[str, Any] = {"priority": rng.choice([0, 0, 0, 1])}
            if rng.random() < 0.2:
                options["methods"] = ["POST"]
            if rng.random() < 0.2:
                options["hosts"] = [rng.choice(["h.org", "*.h.org", "*.x.h.org"])]
            routes.append(route(f"r{i}", pattern, **options))
        router: Router[str] = Router([(r, r.name) for r in routes])
        rows = router.table()
        for _probe in range(200):
            path = re.sub(r"\{x[0-9]\}", rng.choice(["7", "a", "zz"]), some_path(rng.randint(1, 4)))
            if rng.random() < 0.2:
                path += "/"
            method = rng.choice(["GET", "POST"])
            host = rng.choice(["", "h.org", "a.h.org", "b.x.h.org", "other.org"])
            found = router.match(method.encode(), host.encode(), path.encode(), {})
            expected = _reference(rows, method, host, path)
            assert (found.value if found else None) == expected, (path, method, host)
