"""The plugin contract: what the loader accepts, how plugins attach and run."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import pytest
from pydantic import Field

from quiver.config import validate
from quiver.config.consumers import CredentialModel
from quiver.config.models import Config
from quiver.errors import Answer, ConfigError, Forbidden, Unauthorized
from quiver.plugins.base import AccessResult, Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.builtin import BUILT_IN
from quiver.plugins.catalog import Catalog, PluginDefinitionError, check_plugin
from quiver.plugins.consumers import ConsumerRuntime
from quiver.plugins.response import ResponseHead
from tests.support.catalog import built_in, load_config_text
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo


class TagConfig(PluginConfig):
    value: str = Field(description="Value of the X-Tag header sent upstream.")


class Tag(Plugin[TagConfig]):
    """Adds X-Tag upstream."""

    name = "test-tag"
    priority = 100
    Config = TagConfig

    def access(self, request: PluginRequest) -> None:
        request.set_header(b"X-Tag", self.config.value.encode())


class GateConfig(PluginConfig):
    allow: bool = Field(description="Let requests through.")
    delay: float = Field(0.0, description="Seconds to wait before deciding.")


class Gate(Plugin[GateConfig]):
    """Refuses requests unless allowed; may decide asynchronously."""

    name = "test-gate"
    priority = 2000
    Config = GateConfig

    def access(self, request: PluginRequest) -> AccessResult:
        if self.config.delay:
            return self._later()
        if not self.config.allow:
            raise Forbidden("the gate is closed")
        return None

    async def _later(self) -> None:
        await asyncio.sleep(self.config.delay)
        if not self.config.allow:
            raise Forbidden("the gate closed after a while")


def test_a_catalog_holds_the_built_in_plugins_by_name() -> None:
    catalog = built_in()
    assert [catalog[plugin.name] for plugin in BUILT_IN] == list(BUILT_IN)
    assert "test-tag" not in catalog


def test_plugins_are_added_to_a_new_catalog_and_a_name_cannot_be_taken_twice() -> None:
    catalog = built_in().with_plugins(Tag)
    assert catalog["test-tag"] is Tag
    assert "test-tag" not in built_in()  # the catalog it came from is unchanged

    class Impostor(Tag):
        name = "key-auth"

    with pytest.raises(PluginDefinitionError, match="two plugins are named 'key-auth'"):
        catalog.with_plugins(Impostor)


def test_a_config_names_only_the_plugins_of_the_catalog_it_is_validated_with() -> None:
    text = 'targets: [{name: b, url: "http://127.0.0.1:9"}]\nplugins: {test-tag: {value: v}}\n'
    assert load_config_text(text, catalog=CATALOG).plugins == {"test-tag": {"value": "v"}}
    with pytest.raises(ConfigError, match="unknown plugin 'test-tag'"):
        load_config_text(text)  # the built-in catalog has no test-tag
    with pytest.raises(ConfigError, match="unknown plugin 'test-tag'"):
        validate({"plugins": {"test-tag": {"value": "v"}}})  # no catalog: no plugins


def test_a_class_without_the_declared_metadata_is_refused() -> None:
    class Nameless(Plugin[TagConfig]):
        priority = 1
        Config = TagConfig

        def access(self, request: PluginRequest) -> None:
            pass

    with pytest.raises(PluginDefinitionError, match="no 'name'"):
        check_plugin(Nameless)


def test_a_config_field_without_description_is_refused() -> None:
    class Bare(PluginConfig):
        value: int = 1

    class Undocumented(Plugin[Bare]):
        name = "undocumented"
        priority = 1
        Config = Bare

        def access(self, request: PluginRequest) -> None:
            pass

    with pytest.raises(PluginDefinitionError, match="without description"):
        check_plugin(Undocumented)


def test_a_plugin_without_any_phase_is_refused() -> None:
    class Idle(Plugin[TagConfig]):
        name = "idle"
        priority = 1
        Config = TagConfig

    with pytest.raises(PluginDefinitionError, match="no phase"):
        check_plugin(Idle)


def test_unknown_plugins_and_bad_plugin_config_are_named_with_their_line() -> None:
    text = """\
targets: [{name: b, url: "http://127.0.0.1:9"}]
plugins:
  test-tag: {value: 1, colour: red}
routes:
  - name: r
    paths: ["/"]
    target: b
    plugins:
      test-gat: {}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml", catalog=CATALOG)
    messages = [str(issue) for issue in caught.value.issues]
    assert "quiver.yaml:3: plugins.test-tag.colour: unknown key 'colour'" in messages
    assert any(
        m.startswith("quiver.yaml:9: routes[0].plugins.test-gat: unknown plugin 'test-gat'")
        and "did you mean 'test-gate'" in m
        for m in messages
    )
    assert any("plugins.test-tag.value" in m for m in messages)  # 1 is not a string


def config_with(
    url: str, *, global_: dict[str, Any], target: dict[str, Any], route: dict[str, Any]
) -> Config:
    return make_config(
        {"b": {"url": url, "plugins": target}},
        [{"name": "r", "paths": ["/"], "target": "b", "plugins": route}],
        plugins=global_,
    )


def test_route_plugins_override_target_ones_which_override_global_ones() -> None:
    with Upstream(echo) as node:
        config = config_with(
            node.url,
            global_={"test-tag": {"value": "global"}, "test-gate": {"allow": True}},
            target={"test-tag": {"value": "target"}},
            route={},
        )
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            headers = dict(client.request("GET", "/").json()["headers"])
        assert headers["X-Tag"] == "target"
        config = config_with(
            node.url,
            global_={"test-tag": {"value": "global"}},
            target={"test-tag": {"value": "target"}},
            route={"test-tag": {"value": "route"}},
        )
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            headers = dict(client.request("GET", "/").json()["headers"])
        assert headers["X-Tag"] == "route"


def test_a_plugin_stops_a_request_with_a_typed_error_before_it_goes_upstream() -> None:
    with Upstream(echo) as node:
        config = config_with(node.url, global_={}, target={}, route={"test-gate": {"allow": False}})
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            response = client.request("GET", "/")
            assert response.status == 403
            assert response.header("Content-Type") == "application/problem+json"
            assert response.json()["detail"] == "the gate is closed"
            # the connection stays usable after a refusal
            assert client.request("GET", "/").status == 403
        assert node.requests == []


@pytest.mark.parametrize("allow, status", [(True, 200), (False, 403)])
def test_an_access_phase_may_wait_before_deciding(allow: bool, status: int) -> None:
    with Upstream(echo) as node:
        route = {"test-gate": {"allow": allow, "delay": 0.05}, "test-tag": {"value": "x"}}
        config = config_with(node.url, global_={}, target={}, route=route)
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            response = client.request("POST", "/", body=b"payload")
            assert response.status == status
            if allow:  # the later plugin ran too, and the body waited for the decision
                body = response.json()
                assert dict(body["headers"])["X-Tag"] == "x"
                assert body["body"] == "payload"


class StampConfig(PluginConfig):
    header: str = Field(description="Response header to add.")
    answer_options: bool = Field(False, description="Answer OPTIONS requests with 204.")


class Stamp(Plugin[StampConfig]):
    """Adds a response header; may answer OPTIONS itself."""

    name = "test-stamp"
    priority = 10
    Config = StampConfig

    def access(self, request: PluginRequest) -> None:
        if self.config.answer_options and request.method == b"OPTIONS":
            raise Answer(204, headers=((b"Allow", b"GET, OPTIONS"),))

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        response.set(self.config.header.encode(), b"stamped")
        response.remove(b"X-Secret")


def test_a_plugin_changes_response_headers_and_can_answer_by_itself() -> None:
    def secretive(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"ok", [("X-Secret", "s3cr3t"), ("X-Kept", "yes")])

    with Upstream(secretive) as node:
        route = {"test-stamp": {"header": "X-Stamp", "answer_options": True}}
        config = config_with(node.url, global_={}, target={}, route=route)
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            response = client.request("GET", "/")
            assert (response.status, response.body) == (200, b"ok")
            assert response.header("X-Stamp") == "stamped"
            assert response.header("X-Secret") is None
            assert response.header("X-Kept") == "yes"
            answered = client.request("OPTIONS", "/")
            assert answered.status == 204
            assert answered.header("Allow") == "GET, OPTIONS"
            assert answered.header("Content-Length") is None
            assert client.request("GET", "/").status == 200  # still usable
        assert [r.method for r in node.requests] == ["GET", "GET"]


class RecordConfig(PluginConfig):
    fail: bool = Field(False, description="Raise from the log phase.")


RECORDED: list[tuple[int, bytes]] = []


class Record(Plugin[RecordConfig]):
    """Records how requests ended."""

    name = "test-record"
    priority = 1
    Config = RecordConfig

    def log(self, request: PluginRequest) -> None:
        if self.config.fail:
            raise RuntimeError("a broken log plugin")
        RECORDED.append((request.status, request.raw_path))


@pytest.mark.parametrize("fail", [False, True])
def test_the_log_phase_sees_how_each_request_ended(fail: bool) -> None:
    RECORDED.clear()
    with Upstream(echo) as node:
        route = {"test-record": {"fail": fail}, "test-gate": {"allow": True}}
        config = config_with(node.url, global_={}, target={}, route=route)
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            assert client.request("GET", "/one").status == 200
            assert client.request("GET", "/two").status == 200
            deadline = time.monotonic() + 5
            while not fail and len(RECORDED) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)  # the log phase runs on the proxy's loop, just after
    if fail:
        assert RECORDED == []  # and the proxy kept serving
    else:
        assert RECORDED == [(200, b"/one"), (200, b"/two")]


# -- a plugin that brings its own credential type ---------------------------------------


class TokenCredential(CredentialModel):
    token: str = Field(min_length=8, description="The bearer token of the consumer.")


class TokenAuthConfig(PluginConfig):
    header: str = Field("X-Token", description="Header carrying the token.")


INDEX_BUILDS: list[int] = []


class TokenAuth(Plugin[TokenAuthConfig]):
    """Identifies the consumer by a token of its own credential type."""

    name = "test-token"
    priority = 1300
    identifies_consumers = True
    Config = TokenAuthConfig
    credential: ClassVar[type[CredentialModel] | None] = TokenCredential

    def __init__(self, config: TokenAuthConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.tokens = context.consumers.shared(TokenAuth, lambda: self._index(context))
        self.header = config.header.lower().encode()

    @staticmethod
    def _index(context: PluginContext) -> dict[bytes, ConsumerRuntime]:
        INDEX_BUILDS.append(1)
        credentials = context.consumers.credentials("test-token", TokenCredential)
        return {credential.token.encode(): consumer for credential, consumer in credentials}

    def access(self, request: PluginRequest) -> None:
        consumer = self.tokens.get(request.get(self.header) or b"")
        if consumer is None:
            raise Unauthorized("unknown token")
        request.set_consumer(consumer)


CATALOG = built_in().with_plugins(Tag, Gate, Stamp, Record, TokenAuth)

TOKEN_CONFIG = """\
targets: [{name: b, url: "%s"}]
plugins:
  test-token: {}
routes:
  - {name: one, paths: ["/one"], target: b}
  - {name: two, paths: ["/two"], target: b}
consumers:
  - name: alice
    credentials:
      test-token: [{token: "alice-token"}]
      key-auth: [{key: "alice-api-key"}]
"""


def test_a_plugin_declares_its_credential_type_and_indexes_it_once_per_config() -> None:
    INDEX_BUILDS.clear()
    with Upstream(echo) as node:
        config = load_config_text(TOKEN_CONFIG % node.url, catalog=CATALOG)
        [credential] = config.consumers[0].credentials["test-token"]
        assert isinstance(credential, TokenCredential)
        with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
            for path in ("/one", "/two"):
                response = client.request("GET", path, headers={"X-Token": "alice-token"})
                assert dict(response.json()["headers"])["X-Consumer-Username"] == "alice"
            assert client.request("GET", "/one", headers={"X-Token": "wrong-token"}).status == 401
    assert INDEX_BUILDS == [1]  # two routes, one index


def test_credentials_are_checked_against_the_model_their_plugin_declares() -> None:
    text = TOKEN_CONFIG.replace('"alice-token"', '"short", colour: red') % "http://127.0.0.1:9"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml", catalog=CATALOG)
    found = {(issue.location, issue.line, issue.message) for issue in caught.value.issues}
    location = "consumers[0].credentials.test-token[0]"
    assert (f"{location}.colour", 10, "unknown key 'colour'") in found
    assert (f"{location}.token", 10, "String should have at least 8 characters") in found
    # without the plugin, its credentials are an unknown key like any other
    with pytest.raises(ConfigError) as caught:
        load_config_text(TOKEN_CONFIG % "http://127.0.0.1:9", "quiver.yaml")
    messages = [str(issue) for issue in caught.value.issues]
    assert "quiver.yaml:10: consumers[0].credentials.test-token: unknown key 'test-token'" in (
        messages
    )


def test_a_credential_model_must_be_a_described_credential_model() -> None:
    class Loose(TokenAuth):
        credential = TokenAuthConfig  # type: ignore[assignment]

    with pytest.raises(PluginDefinitionError, match="must subclass CredentialModel"):
        check_plugin(Loose)

    class Bare(CredentialModel):
        token: str

    class Undescribed(TokenAuth):
        credential = Bare

    with pytest.raises(PluginDefinitionError, match="credential fields without description"):
        check_plugin(Undescribed)


def test_an_empty_catalog_knows_no_plugin() -> None:
    assert Catalog().names() == [] and Catalog().credential_models() == {}
