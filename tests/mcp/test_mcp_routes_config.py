"""What a route's ``mcp`` key compiles into: the endpoint's route and its plugins."""

from __future__ import annotations

from typing import Any

from quiver.config.mcp_routes import PER_CALL_PLUGINS
from quiver.config.models import Config
from quiver.target_types import default_catalog


def _routes(config: dict[str, Any]) -> dict[str, Any]:
    return {route.name: route for route in Config.model_validate(config).routes}


def test_every_plugin_is_either_kept_on_the_endpoint_or_run_on_the_tool_calls() -> None:
    # a plugin added to the catalog has to be placed on one side knowingly
    gatekeeping = {"ip-restriction", "key-auth", "basic-auth", "jwt", "acl", "cors"}
    gatekeeping |= {"oauth2-introspection"}
    assert set(default_catalog().names()) == gatekeeping | PER_CALL_PLUGINS


def test_the_endpoint_keeps_the_gate_and_the_credentials() -> None:
    routes = _routes(
        {
            "targets": [{"name": "api", "url": "http://127.0.0.1:9"}],
            "routes": [
                {
                    "name": "api",
                    "paths": ["/api"],
                    "target": "api",
                    "hosts": ["api.example.com"],
                    "plugins": {
                        "key-auth": {"hide_credentials": True},
                        "acl": {"allow": ["staff"]},
                        "rate-limit": {"limit": 3, "window": 60},
                        "request-validator": {"body_schema": {"type": "object"}},
                    },
                    "mcp": {"openapi": {"url": "target://api/openapi.json"}},
                }
            ],
        }
    )
    endpoint = routes["mcp-api"]
    assert endpoint.paths == ["=/api/mcp"]
    assert endpoint.hosts == ["api.example.com"]
    assert endpoint.plugins == {
        "key-auth": {"hide_credentials": False},
        "acl": {"allow": ["staff"]},
    }
    assert routes["api"].plugins["key-auth"] == {"hide_credentials": True}  # the route's own
