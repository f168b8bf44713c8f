"""What the gateway states about a request reaches the node, whatever the client sends."""

from __future__ import annotations

from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo

KEY = "alice-key-0123456789"
CONSUMERS = [{"name": "alice", "groups": ["admins"], "credentials": {"key-auth": [{"key": KEY}]}}]


def test_a_clients_connection_header_cannot_strip_the_gateways_own_fields() -> None:
    # RFC 9110 §7.6.1 drops the fields the client's Connection names *as received*;
    # the identity the gateway adds afterwards is not the client's to remove.
    routes = [
        {
            "name": "r",
            "paths": ["/"],
            "target": "b",
            "plugins": {
                "key-auth": {},
                "request-transformer": {"add": {"headers": {"X-Added": "1"}}},
            },
        }
    ]
    with Upstream(echo) as node:
        config = make_config({"b": node.url}, routes, consumers=CONSUMERS)
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            named = "keep-alive, X-Consumer-Username, X-Consumer-Groups, X-Added, X-Hop"
            response = client.request(
                "GET", "/x", {"apikey": KEY, "Connection": named, "X-Hop": "gone"}
            )
    fields = {name.lower(): value for name, value in response.json()["headers"]}
    assert fields["x-consumer-username"] == "alice"
    assert fields["x-consumer-groups"] == "admins"
    assert fields["x-added"] == "1"
    assert "x-hop" not in fields  # what the client sent under a named field is dropped


def test_a_field_the_client_names_in_connection_is_gone_for_the_gateway_too() -> None:
    # An Idempotency-Key the client made hop-by-hop never reaches the node, so it
    # cannot make a POST safe to send to a second node either.
    seen: list[tuple[str, str | None]] = []

    def busy(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            seen.append((request.method, request.header("Idempotency-Key")))
            conn.respond(503, b"busy")

    retries = {"attempts": 3, "on": ["503"], "backoff": 0}
    with Upstream(busy) as a, Upstream(busy) as b:
        target = {"nodes": [{"url": a.url}, {"url": b.url}], "retries": retries}
        with RunningProxy(make_config({"t": target})) as proxy, Client(proxy.port) as client:
            headers = {"Connection": "Idempotency-Key", "Idempotency-Key": "abc"}
            response = client.request("POST", "/orders", headers, b"{}")
    assert response.status == 503
    assert seen == [("POST", None)]  # sent once, without the key
