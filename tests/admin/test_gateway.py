"""Where the admin process reaches the gateway, from the addresses the proxy listens
on or the configured URL."""

from __future__ import annotations

import pytest

from quiver.admin.gateway import Gateway, Listening, gateway_at


@pytest.mark.parametrize(
    ("listening", "expected"),
    [
        ([Listening("127.0.0.1", 8080, False)], Gateway("http://127.0.0.1:8080")),
        ([Listening("0.0.0.0", 8080, False)], Gateway("http://127.0.0.1:8080")),
        ([Listening("::", 8080, False)], Gateway("http://[::1]:8080")),
        ([Listening("::1", 9000, False)], Gateway("http://[::1]:9000")),
        ([Listening("10.0.0.5", 443, True)], Gateway("https://10.0.0.5:443", verify=False)),
        (
            [Listening("0.0.0.0", 443, True), Listening("127.0.0.1", 8080, False)],
            Gateway("http://127.0.0.1:8080"),
        ),
        ([], None),
    ],
)
def test_the_gateway_is_where_the_proxy_listens(
    listening: list[Listening], expected: Gateway | None
) -> None:
    assert gateway_at(listening) == expected


def test_a_configured_url_wins_and_is_verified() -> None:
    found = gateway_at([Listening("127.0.0.1", 8080, False)], "https://api.example.com/")
    assert found == Gateway("https://api.example.com", verify=True)
