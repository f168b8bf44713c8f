"""An MCP endpoint as an OAuth 2.1 resource server: RFC 9728 metadata, the Bearer
challenge pointing to it, and JWTs checked for this resource as their audience."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt as pyjwt
import pytest
from mcp import Client
from mcp.types import CallToolResult

from quiver.errors import ConfigError
from tests.mcp.api20 import serve_api20
from tests.mcp.sdk import tool_names, with_client
from tests.support.catalog import load_config_text
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)

SECRET = "a-secret-of-thirty-two-bytes-ok!"
RESOURCE = "https://mcp.example.com/secure/mcp"
METADATA = "https://mcp.example.com/.well-known/oauth-protected-resource/secure/mcp"


def token(audience: str) -> str:
    claims = {"iss": "hana-iss", "aud": audience, "exp": int(time.time()) + 300}
    return pyjwt.encode(claims, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def proxy() -> Iterator[RunningProxy]:
    with serve_api20() as api:
        config = f"""
listen: 127.0.0.1:0
targets: [{{name: api, url: "{api.url}"}}]
consumers:
  - {{name: hana, credentials: {{jwt: [{{key: hana-iss, secret: {SECRET}}}]}}}}
routes:
  - name: secure
    paths: [/secure]
    strip_path: true
    target: api
    plugins: {{jwt: {{algorithms: [HS256], audiences: [{RESOURCE}]}}}}
    mcp:
      include: [getNote]
      oauth:
        resource: {RESOURCE}
        authorization_servers: [https://login.example.com]
        scopes_supported: [notes.read]
"""
        with RunningProxy(config) as running:
            yield running


def test_the_protected_resource_metadata_is_served_at_the_well_known_path(
    proxy: RunningProxy,
) -> None:
    answer = httpx.get(f"{proxy.url}/.well-known/oauth-protected-resource/secure/mcp")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "resource": RESOURCE,
        "authorization_servers": ["https://login.example.com"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["notes.read"],
    }


def test_a_401_points_to_the_metadata(proxy: RunningProxy) -> None:
    answer = httpx.post(f"{proxy.url}/secure/mcp", json={"jsonrpc": "2.0", "id": 1})
    assert answer.status_code == 401
    challenges = answer.headers.get_list("www-authenticate")
    assert f'Bearer resource_metadata="{METADATA}"' in challenges
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


def test_only_tokens_for_this_resource_are_taken(proxy: RunningProxy) -> None:
    url = f"{proxy.url}/secure/mcp"
    good = {"Authorization": f"Bearer {token(RESOURCE)}"}
    assert tool_names(url, headers=good) == ["getNote"]

    async def call(client: Client) -> CallToolResult:
        return await client.call_tool("getNote", {"noteId": 1})

    # the tool call presents the token to the route, whose jwt takes it too
    note = with_client(url, call, headers=good)
    assert note.is_error is False, note.content
    other = {"Authorization": f"Bearer {token('https://other.example.com/mcp')}"}
    answer = httpx.post(url, headers=other, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert answer.status_code == 401


def refused_mcp_route(jwt: str) -> str:
    """The error of a config with one MCP route behind OAuth whose ``jwt`` plugin is
    configured with ``jwt`` (YAML flow text)."""
    text = f"""
targets: [{{name: api, url: "http://127.0.0.1:9"}}]
routes:
  - name: secure
    paths: [/secure]
    target: api
    plugins: {{jwt: {jwt}}}
    mcp: {{oauth: {{resource: {RESOURCE}, authorization_servers: [https://login.example.com]}}}}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    return str(caught.value)


def test_a_route_whose_jwt_would_refuse_the_resource_tokens_is_a_config_error() -> None:
    error = refused_mcp_route("{algorithms: [HS256]}")
    assert "plugins.jwt.audiences must include mcp.oauth.resource" in error


@pytest.mark.parametrize("audiences", ["5", "'https://api.example.com/mc'", "{a: 1}"])
def test_audiences_of_another_shape_get_the_plugins_error_alone(audiences: str) -> None:
    error = refused_mcp_route(f"{{algorithms: [HS256], audiences: {audiences}}}")
    assert "routes[0].plugins.jwt.audiences: Input should be a valid list" in error
    assert "must include" not in error
