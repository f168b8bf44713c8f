"""The pages' safety checks on their own: where a sign-in may send the browser next,
the CSRF and Origin check of posts, and the headers of every page."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import Request

from quiver.web.errors import CsrfRefused
from quiver.web.security import check_post
from quiver.web.signing import next_path


@pytest.mark.parametrize(
    ("surface", "wanted", "goes"),
    [
        ("portal", "", "/portal"),
        ("portal", None, "/portal"),
        ("portal", "/portal/apps", "/portal/apps"),
        ("portal", "/portal", "/portal"),
        ("portal", "/console", "/portal"),
        ("portal", "/portalx", "/portal"),
        ("portal", "https://evil.example/portal", "/portal"),
        ("portal", "//evil.example/portal", "/portal"),
        ("portal", "/portal//evil.example", "/portal"),
        ("portal", "/portal/\\evil", "/portal"),
        ("portal", "/portal/signout", "/portal"),
        ("console", "/console/routes?x=1", "/console"),
        ("console", "/console/routes", "/console/routes"),
    ],
)
def test_a_sign_in_sends_the_browser_only_to_a_page_of_its_surface(
    surface: str, wanted: str | None, goes: str
) -> None:
    assert next_path(surface, wanted) == goes  # type: ignore[arg-type]


def _post(headers: dict[str, str], scheme: str = "http") -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": "/portal/signin",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8081"), *raw],
        "server": ("127.0.0.1", 8081),
        "app": SimpleNamespace(),
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("headers", "sent", "accepted"),
    [
        ({"Origin": "http://127.0.0.1:8081"}, "token", True),
        ({"Origin": "HTTP://127.0.0.1:8081"}, "token", True),
        ({"Referer": "http://127.0.0.1:8081/portal/signin"}, "token", True),
        ({"Origin": "http://127.0.0.1:8081"}, "other", False),
        ({"Origin": "http://127.0.0.1:8081"}, "", False),
        ({"Origin": "http://evil.example"}, "token", False),
        ({"Origin": "null"}, "token", False),
        ({"Origin": "https://127.0.0.1:8081"}, "token", False),
        ({"Referer": "http://evil.example/portal/signin"}, "token", False),
        ({}, "token", False),
    ],
)
def test_a_post_needs_this_origin_and_the_expected_token(
    headers: dict[str, str], sent: str, accepted: bool
) -> None:
    request = _post(headers)
    if accepted:
        check_post(request, sent, "token")
    else:
        with pytest.raises(CsrfRefused):
            check_post(request, sent, "token")


def test_a_post_with_no_expected_token_is_refused() -> None:
    with pytest.raises(CsrfRefused):
        check_post(_post({"Origin": "http://127.0.0.1:8081"}), "", None)
