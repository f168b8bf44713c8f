"""Conformance of resource lists: filters, sorting, sparse fields, limits, page and cursor
pagination with RFC 8288 ``Link`` headers, ``count=true`` and unknown parameters.

The module's server holds a fixed set of items that no test here changes, so every
expected answer is computed in Python from that set; the tests that write use names of
their own and filter on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urljoin

import httpx
import pytest

from tests.resources.test_conformance_crud import (
    SPEC_RESOURCES,
    assert_problem,
    assert_strong_etag,
    create,
    quiver_serving,
    send,
)

pytestmark = pytest.mark.timeout(120)

FRUITS: list[dict[str, Any]] = [
    {"name": "apple", "price": 1.5, "tags": ["fruit", "red"], "status": "active"},
    {"name": "banana", "price": 0.25, "tags": ["fruit", "yellow"], "status": "active"},
    {"name": "Blueberry", "price": 4, "tags": ["berry"], "status": "draft"},
    {"name": "blackberry", "price": 4, "status": "archived"},
    {"name": "fig", "price": 2, "tags": [], "status": "active"},
    {"name": "figs", "price": 2},
    {"name": "kiwi", "price": 0, "status": "archived"},
    {"name": "50% off", "price": 3, "status": "draft"},
    {"name": "Crème brûlée", "price": 6, "status": "archived"},
]
# fillers make more than one default page (20) and a few 100-item pages
FILLERS: list[dict[str, Any]] = [
    {"name": f"filler-{n:03d}", "price": (n * 37) % 11, "status": "draft"} for n in range(205)
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with quiver_serving(tmp_path_factory.mktemp("queries"), SPEC_RESOURCES) as client:
        yield client


@pytest.fixture(scope="module")
def stored(api: httpx.Client) -> list[dict[str, Any]]:
    """Every item of the fixed set as the server keeps it, in key order."""
    made = [create(api, "/items", item) for item in FRUITS + FILLERS]
    for sent, item in zip(FRUITS + FILLERS, made, strict=True):
        assert item == {**item, "status": "draft", **sent}, "an item reads back as sent"
    return made


def listing(client: httpx.Client, query: str) -> list[dict[str, Any]]:
    response = send(client, "GET", f"/items?{query}")
    assert response.status_code == 200, response.text
    items = response.json()
    assert isinstance(items, list)
    return items


def every(client: httpx.Client, query: str) -> list[dict[str, Any]]:
    """All items a filter matches, walking the ``next`` links."""
    return walk(client, f"/items?{query}&limit=100")[0]


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


# --- RFC 8288 -------------------------------------------------------------------------

_LINK_VALUE = re.compile(r"\s*<([^>]*)>")
_LINK_PARAM = re.compile(
    r"""\s*;\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;,]*)))?"""
)


def parse_links(values: list[str], base: str) -> dict[str, str]:
    """RFC 8288 §3: link-values separated by commas, each a target in angle brackets and
    parameters; ``rel`` may hold several relation types; targets resolve against ``base``."""
    links: dict[str, str] = {}
    for value in values:
        position = 0
        while position < len(value):
            if value[position] in ", \t":
                position += 1
                continue
            target = _LINK_VALUE.match(value, position)
            assert target, f"not a link-value at {position}: {value!r}"
            position = target.end()
            params: dict[str, str] = {}
            while param := _LINK_PARAM.match(value, position):
                raw = param.group(2)
                text = re.sub(r"\\(.)", r"\1", raw) if raw is not None else param.group(3)
                params.setdefault(param.group(1).lower(), text or "")
                position = param.end()
            for relation in params.get("rel", "").split():
                links.setdefault(relation.lower(), urljoin(base, target.group(1)))
    return links


def links_of(response: httpx.Response) -> dict[str, str]:
    return parse_links(response.headers.get_list("link"), str(response.request.url))


def walk(
    client: httpx.Client, url: str, between: Callable[[int], None] | None = None
) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    """Follow ``next`` from ``url`` to the end; ``between(n)`` runs after page n."""
    items: list[dict[str, Any]] = []
    pages: list[httpx.Response] = []
    while True:
        response = send(client, "GET", url)
        assert response.status_code == 200, response.text
        pages.append(response)
        items += response.json()
        assert len(pages) < 500, "the next links never end"
        following = links_of(response).get("next")
        if following is None:
            return items, pages
        if between is not None:
            between(len(pages))
        url = following


def test_parse_links_reads_quoted_parameters_and_several_relations() -> None:
    header = '<?p=2>; rel="next last"; title="a, b; c", </x?p=1>;rel=prev'
    assert parse_links([header], "http://h/items?p=1") == {
        "next": "http://h/items?p=2",
        "last": "http://h/items?p=2",
        "prev": "http://h/x?p=1",
    }


# --- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("name=apple", lambda i: i["name"] == "apple"),
        ("status=archived", lambda i: i["status"] == "archived"),
        ("price=2", lambda i: i["price"] == 2),
        ("price=4.0", lambda i: i["price"] == 4),
        ("status[ne]=draft", lambda i: i["status"] != "draft"),
        ("price[lt]=1.5", lambda i: i["price"] < 1.5),
        ("price[lte]=1.5", lambda i: i["price"] <= 1.5),
        ("price[gt]=4", lambda i: i["price"] > 4),
        ("price[gte]=4", lambda i: i["price"] >= 4),
        ("status[in]=active,archived", lambda i: i["status"] in ("active", "archived")),
        ("status[nin]=active,archived", lambda i: i["status"] not in ("active", "archived")),
        ("name[in]=apple", lambda i: i["name"] == "apple"),
        # like: SQL patterns, % any run and _ one character, case-sensitive
        ("name[like]=b%25", lambda i: i["name"] in ("banana", "blackberry")),
        ("name[like]=fig_", lambda i: i["name"] == "figs"),
        ("name[ilike]=B%25", lambda i: i["name"] in ("banana", "blackberry", "Blueberry")),
        ("name[ilike]=%25BERRY", lambda i: i["name"] in ("blackberry", "Blueberry")),
        ("tags[null]=true", lambda i: i.get("tags") is None),
        ("tags[null]=false", lambda i: i.get("tags") is not None),
        ("status=active&price[gte]=1", lambda i: i["status"] == "active" and i["price"] >= 1),
        ("price[gt]=1&price[lt]=4", lambda i: 1 < i["price"] < 4),
        ("name=nothing-has-this-name", lambda i: False),
    ],
)
def test_filter(
    api: httpx.Client,
    stored: list[dict[str, Any]],
    query: str,
    keep: Callable[[dict[str, Any]], bool],
) -> None:
    expected = [item for item in stored if keep(item)]
    found = every(api, f"{query}&sort=id")
    assert names(found) == names(expected)


def test_a_like_pattern_without_wildcards_matches_whole_values(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    assert names(every(api, "name[like]=fig")) == ["fig"]
    assert names(every(api, f"name[like]={quote('50%')}")) == ["50% off"]


def test_filter_values_are_data_never_query_text(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    for value in ("' OR '1'='1", 'apple" OR 1=1 --', "apple'; DROP TABLE items; --"):
        assert every(api, f"name={quote(value)}") == []
    assert len(every(api, "sort=id")) == len(stored)


@pytest.mark.parametrize(
    "query",
    [
        "colour=red",  # not a field
        "price[approx]=1",  # not an operator
        "price[gt]=cheap",  # not a number
        "price[gt]=1' OR 1=1 --",
        "tags[null]=maybe",  # null takes true or false
        "sort=colour",
        "sort=name;DROP TABLE items",
        "fields=id,colour",
        "limit=abc",
        "limit=-1",
        "limit=101",  # above the declared max of 100
        "page=0",
        "page=abc",
        "count=perhaps",
        "Name=apple",  # parameters are case-sensitive names of fields
        "utm_source=newsletter",
    ],
)
def test_a_parameter_that_is_not_understood_is_a_400(
    api: httpx.Client, stored: list[dict[str, Any]], query: str
) -> None:
    # "unknown query parameters are errors, not silently ignored"
    response = send(api, "GET", f"/items?{query}")
    assert_problem(response, 400)


def test_query_parameters_on_an_item_are_not_ignored(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    assert_problem(send(api, "GET", f"/items/{stored[0]['id']}?colour=red"), 400)


# --- sort and fields -------------------------------------------------------------------


def test_sort_by_several_keys_descending_and_ascending(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    # strings compare by code point ("Blueberry" before "blackberry"), as JSON strings and
    # json-server's JavaScript sort do
    found = every(api, "sort=-price,name")
    expected = sorted(stored, key=lambda i: i["name"])
    expected.sort(key=lambda i: i["price"], reverse=True)
    assert names(found) == names(expected)


def test_sort_by_a_string_descending(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    found = every(api, "sort=-name&status=active")
    active = [i for i in stored if i["status"] == "active"]
    assert names(found) == sorted(names(active), reverse=True)


def test_fields_keeps_only_the_named_keys(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    found = listing(api, "fields=id,name&sort=id&limit=50")
    assert found == [{"id": i["id"], "name": i["name"]} for i in stored[:50]]


# --- limits ----------------------------------------------------------------------------


def test_a_page_holds_the_default_limit(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    assert len(listing(api, "sort=id")) == 20


def test_a_page_holds_up_to_the_maximum_limit(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    assert names(listing(api, "sort=id&limit=100")) == names(stored[:100])
    assert names(listing(api, "sort=id&limit=3")) == names(stored[:3])


# --- pagination and links ----------------------------------------------------------------


def test_pages_walk_every_item_once_with_first_prev_and_next(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    items, pages = walk(api, "/items?sort=-price,name&limit=7&page=1")
    expected = sorted(stored, key=lambda i: i["name"])
    expected.sort(key=lambda i: i["price"], reverse=True)
    assert names(items) == names(expected)
    assert len(pages) == -(-len(stored) // 7)
    first = links_of(pages[0])
    assert "prev" not in first and "first" in first
    for number, page in enumerate(pages, start=1):
        links = links_of(page)
        assert "first" in links, number
        assert ("prev" in links) == (number > 1), number
        assert ("next" in links) == (number < len(pages)), number
        assert send(api, "GET", links["first"]).json() == pages[0].json()
        if number > 1:
            assert send(api, "GET", links["prev"]).json() == pages[number - 2].json()


def test_a_page_past_the_end_is_empty(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    response = send(api, "GET", "/items?limit=100&page=1000")
    assert response.status_code == 200
    assert response.json() == []
    assert "next" not in links_of(response)


def test_cursor_pages_walk_every_item_once(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    items, pages = walk(api, "/items?sort=-price,name&limit=9&cursor=")
    expected = sorted(stored, key=lambda i: i["name"])
    expected.sort(key=lambda i: i["price"], reverse=True)
    assert names(items) == names(expected)
    assert len(pages) >= len(stored) // 9
    for page in pages:
        assert "first" in links_of(page)
    assert "next" not in links_of(pages[-1])


def test_cursor_pages_neither_repeat_nor_skip_while_items_change(api: httpx.Client) -> None:
    # keyset pagination (the reason for cursors): an item created before the position
    # reached, or deleted after it, moves no other item across a page boundary; events,
    # so that the fixed set of items stays as it is
    made = [create(api, "/events", {"title": f"walk-{n:02d}"}) for n in range(30)]

    def meddle(page: int) -> None:
        if page == 1:
            create(api, "/events", {"title": "walk-00a"})
            assert send(api, "DELETE", f"/events/{made[25]['id']}").status_code == 204

    items, _ = walk(api, "/events?sort=title&limit=5&cursor=", meddle)
    seen = [item["title"] for item in items]
    assert len(seen) == len(set(seen))
    untouched = [m["title"] for n, m in enumerate(made) if n != 25]
    assert [title for title in seen if title in untouched] == untouched


def test_count_true_gives_the_total_of_matching_items(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    response = send(api, "GET", "/items?status=archived&count=true&limit=1")
    archived = [i for i in stored if i["status"] == "archived"]
    assert response.headers.get("x-total-count") == str(len(archived))
    assert len(response.json()) == 1
    response = send(api, "GET", "/items?count=true&price[gte]=100")
    assert response.headers.get("x-total-count") == "0"
    assert response.json() == []


def test_lists_carry_a_strong_etag_that_follows_their_content(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    one = assert_strong_etag(send(api, "GET", "/items?sort=id&limit=5"))
    again = assert_strong_etag(send(api, "GET", "/items?sort=id&limit=5"))
    other = assert_strong_etag(send(api, "GET", "/items?sort=id&limit=6"))
    assert one == again
    assert one != other


def test_page_links_keep_the_filters_and_the_sort(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    items, pages = walk(api, "/items?status=draft&sort=-price,name&limit=7&count=true")
    drafts = sorted((i for i in stored if i["status"] == "draft"), key=lambda i: i["name"])
    drafts.sort(key=lambda i: i["price"], reverse=True)
    assert names(items) == names(drafts)
    assert len(pages) > 2
    for page in pages:
        assert page.headers.get("x-total-count") == str(len(drafts))


def test_brackets_may_be_percent_encoded(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    # RFC 3986 §2.1: a client may encode "[" and "]"; the decoded names are the same
    plain = every(api, "price[gte]=4&sort=id")
    assert every(api, "price%5Bgte%5D=4&sort=id") == plain
    assert names(plain) == names([i for i in stored if i["price"] >= 4])


def test_filters_on_unicode_values(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    assert names(every(api, f"name={quote('Crème brûlée')}")) == ["Crème brûlée"]
    assert names(every(api, f"name[like]={quote('Cr_me%')}")) == ["Crème brûlée"]
    # ilike is case-insensitive in any script, as PostgreSQL's ILIKE in a UTF-8 database
    assert names(every(api, f"name[ilike]={quote('CRÈME BRÛLÉE')}")) == ["Crème brûlée"]


@pytest.mark.parametrize(
    "query",
    [
        "sort=price",  # ties on price must be broken, or a keyset skips items
        "sort=-price",
        "",  # no sort: key order
        "sort=-id",
        "sort=price&fields=name",  # the sort keys need not be in the representation
        "status=draft&sort=-price,name",
        "sort=-created_at",
    ],
)
def test_cursor_pages_walk_every_item_once_in_any_order(
    api: httpx.Client, stored: list[dict[str, Any]], query: str
) -> None:
    separator = "&" if query else ""
    items, _ = walk(api, f"/items?{query}{separator}limit=7&cursor=")
    by_pages = names(items)
    assert len(by_pages) == len(set(by_pages)), "an item came twice"
    whole = [item["name"] for item in every(api, query or "sort=id")]
    assert by_pages == whole


def test_cursor_pages_by_a_field_that_is_not_required(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    # the contract offers cursor pagination with any sort; status has a default, so
    # every item here has one
    items, _ = walk(api, "/items?sort=status,-price&limit=7&cursor=")
    assert names(items) == names(every(api, "sort=status,-price"))


@pytest.mark.parametrize(
    "query",
    [
        "cursor=garbage",
        "cursor=%00",
        "cursor=eyJpZCI6ICIxIE9SIDE9MSJ9",  # base64 of a JSON object with SQL in it
        "cursor=" + "A" * 5000,
        "page=99999999999999999999",
        "page=9223372036854775807",
        "page=92233720368547759&limit=100",  # an offset past 2**63
        "id=99999999999999999999",
        "id[in]=1,99999999999999999999",
        "id[gt]=-99999999999999999999",
        "price[lt]=-99999999999999999999999",
        "limit=99999999999999999999",
        "page=1e3",
        "limit=1&limit=2",
        "price[gt]=NaN",
        "price[gt]=Infinity",
        "price[gt]=1e400",
        "status[in]=",
        "sort=",
        "sort=-",
        "sort=,",
        "fields=",
        "fields=id,id",
        "price[gt][lt]=1",
        "price[]=1",
        "[gt]=1",
        "price[gt=1",
        "name=" + "x" * 6000,
        "%ff=1",
        "name=%ff",
        "name=%00",
    ],
)
def test_odd_queries_get_an_answer_not_an_error_page(
    api: httpx.Client, stored: list[dict[str, Any]], query: str
) -> None:
    # the contract asks for no particular status here, only never a 500 and problems
    # for refusals
    response = send(api, "GET", f"/items?{query}")
    if response.status_code >= 400:
        assert_problem(response, response.status_code)
    else:
        assert isinstance(response.json(), list)


def test_a_cursor_from_another_order_is_refused_or_honoured(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    first = send(api, "GET", "/items?sort=price&limit=5&cursor=")
    following = links_of(first)["next"]
    reordered = following.replace("sort=price", "sort=-name")
    response = send(api, "GET", reordered)
    if response.status_code >= 400:
        assert_problem(response, 400)


def test_filters_on_the_key_and_the_timestamps(
    api: httpx.Client, stored: list[dict[str, Any]]
) -> None:
    ids = [stored[0]["id"], stored[3]["id"]]
    found = every(api, f"id[in]={ids[0]},{ids[1]}&sort=id")
    assert [item["id"] for item in found] == ids
    moment = stored[100]["created_at"]
    later = every(api, f"created_at[gt]={quote(moment)}&sort=id")
    assert names(later) == names([i for i in stored if i["created_at"] > moment])


def test_head_of_a_list_counts_too(api: httpx.Client, stored: list[dict[str, Any]]) -> None:
    got = send(api, "GET", "/items?status=draft&count=true")
    head = send(api, "HEAD", "/items?status=draft&count=true")
    assert head.content == b""
    assert head.headers.get("x-total-count") == got.headers.get("x-total-count")
    assert head.headers.get_list("link") == got.headers.get_list("link")


@pytest.mark.parametrize("query", ["", "sort=price", "sort=-status", "status=draft"])
def test_pages_walk_every_item_once_in_any_order(
    api: httpx.Client, stored: list[dict[str, Any]], query: str
) -> None:
    # page pagination over ties (many items share a price) must still be one order
    separator = "&" if query else ""
    items, _ = walk(api, f"/items?{query}{separator}limit=9&page=1")
    by_pages = names(items)
    assert len(by_pages) == len(set(by_pages)), "an item came twice"
    assert sorted(by_pages) == sorted(names(every(api, query or "sort=id")))


@pytest.mark.parametrize("paging", ["page=1", "cursor="])
def test_links_carry_filter_values_exactly(
    api: httpx.Client, stored: list[dict[str, Any]], paging: str
) -> None:
    # RFC 8288 §3: a link's target is a URI reference, so the filters it repeats are
    # percent-encoded as a URI needs and decode to what the client sent
    query = f"name[like]=%25e%25&name[ne]={quote('Crème brûlée')}&sort=id&limit=4&{paging}"
    items, pages = walk(api, f"/items?{query}")
    expected = [i for i in stored if "e" in i["name"] and i["name"] != "Crème brûlée"]
    assert names(items) == names(expected)
    assert len(pages) > 2
    for page in pages:
        for value in page.headers.get_list("link"):
            for target in re.findall(r"<([^>]*)>", value):
                assert re.fullmatch(r"[\x21-\x7e]*", target), f"not a URI: {target!r}"
