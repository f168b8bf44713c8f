"""What the gateway states about a request reaches the node, whatever the client sends."""

from __future__ import annotations

from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

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
