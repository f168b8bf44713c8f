"""ip-restriction: clients refused or let through by address, behind trusted proxies too."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any, cast

import pydantic
import pytest

from quiver.errors import ConfigError, Forbidden
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.consumers import Consumers
from quiver.plugins.ip_restriction import IpRestriction
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

# -- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"allow": ["127.0.0.1"]},
        {"deny": ["10.0.0.0/8", "2001:db8::/32", "::1"]},
        {"allow": [], "deny": ["192.0.2.1"]},
        {"allow": ["0.0.0.0/0", "::/0"], "deny": ["192.0.2.0/24"]},
        {"allow": ["::ffff:10.0.0.0/104"], "trusted_proxies": ["10.0.0.0/8", "fd00::/8"]},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    config = IpRestriction.Config.model_validate(settings)
    assert config.trusted_proxies == settings.get("trusted_proxies", [])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "at least one address or network in 'allow' or 'deny'"),
        ({"allow": [], "deny": []}, "at least one address or network"),
        ({"trusted_proxies": ["10.0.0.0/8"]}, "at least one address or network"),
        ({"allow": ["10.0.0.300"]}, "'10.0.0.300' is not an IP address or CIDR network"),
        ({"allow": ["1.2.3.4", "proxy.local"]}, "'proxy.local' is not an IP address"),
        ({"deny": ["2001:db8::/129"]}, "'2001:db8::/129' is not an IP address"),
        ({"deny": ["010.0.0.1"]}, "'010.0.0.1' is not an IP address"),
        ({"deny": ["10.0.0.1/8"]}, "has host bits set; did you mean '10.0.0.0/8'?"),
        ({"allow": ["::1"], "trusted_proxies": ["10.1.0.0/8"]}, "'10.1.0.0/8' has host bits"),
        ({"allow": ["fe80::1%eth0"]}, "a zone index"),
        ({"allow": "10.0.0.1"}, "valid list"),
        ({"allow": [10]}, "valid string"),
        ({"allow": ["1.2.3.4"], "block": ["5.6.7.8"]}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message.replace("?", r"\?")):
        IpRestriction.Config.model_validate(settings)


def test_a_bad_entry_is_named_with_its_place_in_the_config_file() -> None:
    text = """\
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      ip-restriction:
        allow: [10.0.0.0/8, 10.0.0.1/8, nonsense]
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "quiver.yaml:8: routes[0].plugins.ip-restriction.allow[1]: "
        "'10.0.0.1/8' has host bits set; did you mean '10.0.0.0/8'?",
        "quiver.yaml:8: routes[0].plugins.ip-restriction.allow[2]: "
        "'nonsense' is not an IP address or CIDR network",
    ]


# -- deciding on one request -----------------------------------------------------------


@dataclass
class FakeRequest:
    """Just what the plugin reads of a request."""

    client_ip: bytes
    forwarded_for: bytes | None = None

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        return self.forwarded_for if name == b"x-forwarded-for" else default


def plugin(**settings: Any) -> IpRestriction:
    return IpRestriction(
        IpRestriction.Config.model_validate(settings), PluginContext(consumers=Consumers([]))
    )


def request(peer: str, forwarded_for: str | None = None) -> PluginRequest:
    forwarded = None if forwarded_for is None else forwarded_for.encode()
    return cast(PluginRequest, FakeRequest(peer.encode(), forwarded))


def allowed(restriction: IpRestriction, peer: str, forwarded_for: str | None = None) -> bool:
    try:
        restriction.access(request(peer, forwarded_for))
    except Forbidden:
        return False
    return True


def client_of(restriction: IpRestriction, peer: str, forwarded_for: str | None = None) -> str:
    client, _ = restriction.client(request(peer, forwarded_for))
    return client.decode()


BEHIND_PROXIES = plugin(deny=["192.0.2.1"], trusted_proxies=["10.0.0.0/8", "2001:db8::/64"])


@pytest.mark.parametrize(
    "peer, forwarded_for, client",
    [
        # a peer that is not a trusted proxy is the client, whatever it claims
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", None, "203.0.113.9"),
        # behind a trusted proxy, the rightmost address that is not a trusted proxy
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "192.0.2.66, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        ("10.0.0.1", "198.51.100.1,\t10.9.9.9 ,10.0.0.2", "198.51.100.1"),
        # only trusted proxies, or no header: the last trusted proxy reached
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        # an entry that is not an address stops the walk at the last trusted proxy
        ("10.0.0.1", "unknown", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, unknown", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, unknown, 10.0.0.2", "10.0.0.2"),
        ("10.0.0.1", "198.51.100.1:4711", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, ", "10.0.0.1"),
        ("10.0.0.1", "unknown, 198.51.100.1", "198.51.100.1"),
        # IPv6, and IPv4-mapped IPv6 peers matched as IPv4
        ("2001:db8::7", "2001:db8:1::5, 2001:db8::8", "2001:db8:1::5"),
        ("2001:db8:1::7", "198.51.100.1", "2001:db8:1::7"),
        ("::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "::ffff:10.0.0.2, 2001:db8::1", "::ffff:10.0.0.2"),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_forwarded_the_request(
    peer: str, forwarded_for: str | None, client: str
) -> None:
    assert client_of(BEHIND_PROXIES, peer, forwarded_for) == client


def test_a_forged_address_is_ignored_unless_a_trusted_proxy_sent_it() -> None:
    restriction = plugin(deny=["192.0.2.1"], trusted_proxies=["10.0.0.0/8"])
    # from an untrusted peer the header is the client's own claim
    assert allowed(restriction, "198.51.100.7", "192.0.2.1")
    assert not allowed(restriction, "192.0.2.1", "198.51.100.7")
    # a denied client cannot hide behind an address it prepends itself
    assert not allowed(restriction, "10.0.0.1", "192.0.2.1")
    assert not allowed(restriction, "10.0.0.1", "198.51.100.7, 192.0.2.1")
    assert allowed(restriction, "10.0.0.1", "192.0.2.1, 198.51.100.7")


@pytest.mark.parametrize(
    "settings, peer, expected",
    [
        # deny wins over allow
        ({"allow": ["10.0.0.0/8"], "deny": ["10.0.0.5"]}, "10.0.0.5", False),
        ({"allow": ["10.0.0.0/8"], "deny": ["10.0.0.5"]}, "10.0.0.6", True),
        ({"allow": ["10.0.0.0/8"], "deny": ["10.0.0.5"]}, "192.0.2.1", False),
        # a deny list alone lets every other client through
        ({"deny": ["10.0.0.0/8"]}, "10.255.255.255", False),
        ({"deny": ["10.0.0.0/8"]}, "11.0.0.0", True),
        ({"deny": ["10.0.0.0/8"]}, "::1", True),
        # IPv6 rules
        ({"allow": ["2001:db8::/32"]}, "2001:db8:ffff::1", True),
        ({"allow": ["2001:db8::/32"]}, "2001:db9::1", False),
        ({"allow": ["::1"]}, "::1", True),
        ({"allow": ["::/0"]}, "127.0.0.1", False),
        ({"allow": ["0.0.0.0/0"]}, "::1", False),
        # families never mix: ::a00:5 has the same bits as 10.0.0.5
        ({"allow": ["10.0.0.0/8"]}, "::a00:5", False),
        # IPv4-mapped peers are matched by IPv4 rules, and mapped rules by IPv4 peers
        ({"deny": ["10.0.0.0/8"]}, "::ffff:10.0.0.5", False),
        ({"allow": ["10.0.0.5"]}, "::ffff:10.0.0.5", True),
        ({"allow": ["::ffff:10.0.0.0/104"]}, "10.1.2.3", True),
        ({"allow": ["::ffff:10.0.0.0/104"]}, "::ffff:10.1.2.3", True),
        ({"allow": ["::ffff:10.0.0.0/104"]}, "11.1.2.3", False),
        # a link-local peer carries its zone index
        ({"allow": ["fe80::/10"]}, "fe80::1%eth0", True),
        ({"deny": ["fe80::/10"]}, "fe80::1%eth0", False),
    ],
)
def test_deny_wins_and_an_allow_list_refuses_everyone_else(
    settings: dict[str, Any], peer: str, expected: bool
) -> None:
    assert allowed(plugin(**settings), peer) is expected


def test_the_refusal_names_the_client_but_not_the_lists() -> None:
    restriction = plugin(allow=["10.0.0.0/8"], deny=["10.6.6.6"], trusted_proxies=["10.0.0.0/8"])
    for peer, forwarded_for, client in [
        ("192.0.2.1", None, "192.0.2.1"),
        ("10.6.6.6", None, "10.6.6.6"),
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("fe80::1%eth0", None, "fe80::1"),
    ]:
        with pytest.raises(Forbidden) as caught:
            restriction.access(request(peer, forwarded_for))
        assert caught.value.detail == f"client address {client} is not allowed"


def test_a_peer_without_a_readable_address_is_refused() -> None:
    restriction = plugin(deny=["192.0.2.1"])
    with pytest.raises(Forbidden, match="could not be determined"):
        restriction.access(request("unknown"))


def test_remembered_verdicts_stay_bounded_and_correct() -> None:
    restriction = plugin(deny=["10.0.0.0/8"], trusted_proxies=["192.0.2.1"])
    for n in range(5000):
        forged = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        assert not allowed(restriction, "192.0.2.1", forged)
        assert allowed(restriction, "192.0.2.1", f"203.0.{n >> 8 & 255}.{n & 255}")
    assert len(restriction.verdicts) <= 1024
    assert not allowed(restriction, "10.0.0.0")
    assert allowed(restriction, "192.0.2.1")
    # an over-long address text (a zone index can be any length) is decided, not kept
    long_text = "fe80::1%" + "x" * 100
    assert allowed(restriction, long_text)
    assert long_text.encode() not in restriction.verdicts


# -- through the running proxy ---------------------------------------------------------


def proxy(url: str, settings: dict[str, Any], **extra: Any) -> RunningProxy:
    routes = [{"name": "r", "paths": ["/"], "target": "b"}]
    return RunningProxy(
        make_config({"b": {"url": url, "plugins": {"ip-restriction": settings}}}, routes, **extra)
    )


@pytest.mark.parametrize(
    "settings", [{"allow": ["127.0.0.1"]}, {"allow": ["127.0.0.0/8"]}, {"deny": ["10.0.0.0/8"]}]
)
def test_a_client_the_lists_admit_reaches_the_upstream(settings: dict[str, Any]) -> None:
    with Upstream(echo) as node, proxy(node.url, settings) as running:
        with Client(running.port) as client:
            assert client.request("GET", "/").status == 200
            assert client.request("GET", "/again").status == 200
        assert [request.path for request in node.requests] == ["/", "/again"]


@pytest.mark.parametrize(
    "settings",
    [
        {"deny": ["127.0.0.1"]},
        {"allow": ["10.0.0.0/8"]},
        {"allow": ["127.0.0.0/8"], "deny": ["127.0.0.1/32"]},
        {"allow": ["::1"]},
    ],
)
def test_a_refused_client_gets_403_and_never_reaches_the_upstream(
    settings: dict[str, Any],
) -> None:
    with Upstream(echo) as node, proxy(node.url, settings) as running:
        with Client(running.port) as client:
            problem = assert_problem(client.request("GET", "/"), 403)
            assert problem["detail"] == "client address 127.0.0.1 is not allowed"
            assert problem["type"] == "urn:quiver:problem:forbidden"
            # the connection stays usable after a refusal
            assert_problem(client.request("GET", "/"), 403)
        with Client(running.port) as client:
            assert_problem(client.request("POST", "/", body=b"payload"), 403)
        assert node.requests == []


def test_x_forwarded_for_is_honoured_only_from_a_trusted_proxy() -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    with Upstream(echo) as node:
        # the header is the client's own claim: ignored
        untrusted = {"allow": ["203.0.113.0/24"]}
        with proxy(node.url, untrusted) as running, Client(running.port) as client:
            problem = assert_problem(client.request("GET", "/", forwarded), 403)
            assert problem["detail"] == "client address 127.0.0.1 is not allowed"
        assert node.requests == []
        # the same header sent by a trusted proxy names the client
        trusted = {"allow": ["203.0.113.0/24"], "trusted_proxies": ["127.0.0.1/32"]}
        with proxy(node.url, trusted) as running, Client(running.port) as client:
            assert client.request("GET", "/", forwarded).status == 200
            problem = assert_problem(client.request("GET", "/"), 403)  # no header: the proxy
            assert problem["detail"] == "client address 127.0.0.1 is not allowed"
        denied = {"deny": ["203.0.113.7"], "trusted_proxies": ["127.0.0.1/32"]}
        with proxy(node.url, denied) as running, Client(running.port) as client:
            problem = assert_problem(client.request("GET", "/", forwarded), 403)
            assert problem["detail"] == "client address 203.0.113.7 is not allowed"
            assert client.request("GET", "/").status == 200
        assert len(node.requests) == 2


def test_a_client_on_an_ipv4_mapped_address_is_matched_by_ipv4_rules() -> None:
    # an IPv6 socket bound to a mapped address accepts IPv4 clients as ::ffff:a.b.c.d
    listen = "[::ffff:127.0.0.1]:0"
    with Upstream(echo) as node:
        allowing = proxy(node.url, {"allow": ["127.0.0.1"]}, listen=listen)
        with allowing as running, Client(running.port) as client:
            assert client.request("GET", "/").status == 200
        denying = proxy(node.url, {"deny": ["127.0.0.0/8"]}, listen=listen)
        with denying as running, Client(running.port) as client:
            problem = assert_problem(client.request("GET", "/"), 403)
            assert problem["detail"] == "client address ::ffff:127.0.0.1 is not allowed"
        assert len(node.requests) == 1


def ipv6_status(port: int) -> tuple[int, bytes]:
    """Status and body of one GET over IPv6 loopback."""
    with socket.create_connection(("::1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_client_is_matched_by_ipv6_rules() -> None:
    with Upstream(echo) as node:
        with proxy(node.url, {"allow": ["::1/128"]}, listen="[::1]:0") as running:
            assert ipv6_status(running.port)[0] == 200
        with proxy(node.url, {"allow": ["127.0.0.1"]}, listen="[::1]:0") as running:
            status, body = ipv6_status(running.port)
            assert status == 403
            assert json.loads(body)["detail"] == "client address ::1 is not allowed"
        assert len(node.requests) == 1
