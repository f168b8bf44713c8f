"""The catalog holds in-process target types next to plugins, each checked against
the target type contract, from the entry layer and from installed packages."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from quiver.demo import DemoTarget
from quiver.plugins.base import PluginRequest
from quiver.plugins.catalog import Catalog, PluginDefinitionError, check_target_type
from quiver.plugins.key_auth import KeyAuth
from quiver.plugins.responder import Response, TargetOptions, TargetType
from tests.support.catalog import built_in


class HelloOptions(TargetOptions):
    greeting: str = Field("hello", description="What to answer.")


class Hello(TargetType[HelloOptions]):
    name = "hello"
    Options = HelloOptions

    def handle(self, request: PluginRequest) -> Response:
        return Response(200, [], self.options.greeting.encode())


def test_the_default_catalog_holds_the_demo_target_type() -> None:
    assert built_in().target_type("demo") is DemoTarget
    assert built_in().target_type("http") is None  # the proxy's own, never listed
    assert "demo" in built_in().target_type_names()


def test_target_types_are_added_to_a_new_catalog_and_a_name_cannot_be_taken_twice() -> None:
    catalog = built_in().with_target_types(Hello)
    assert catalog.target_type("hello") is Hello
    assert catalog.get("key-auth") is KeyAuth  # the plugins come along
    assert built_in().target_type("hello") is None  # the catalog it came from is unchanged
    assert catalog.with_plugins().target_type("hello") is Hello

    class Impostor(Hello):
        name = "demo"

    with pytest.raises(PluginDefinitionError, match="two target types are named 'demo'"):
        catalog.with_target_types(Impostor)


def test_a_target_type_breaking_the_contract_is_refused() -> None:
    class Nameless(TargetType[TargetOptions]):
        def handle(self, request: PluginRequest) -> Response:
            return Response()

    class Http(Hello):
        name = "http"

    class BadName(Hello):
        name = "no spaces"

    class Bare(TargetOptions):
        size: int = 1

    class Undocumented(TargetType[TargetOptions]):
        name = "undocumented"
        Options = Bare

        def handle(self, request: PluginRequest) -> Response:
            return Response()

    class Plain(BaseModel):
        size: int = Field(1, description="A size.")

    class NotOptions(Hello):
        name = "not-options"
        Options = Plain  # type: ignore[assignment]

    class Mute(TargetType[TargetOptions]):
        name = "mute"

    refusals = [
        (Nameless, "has no 'name'"),
        (Http, "the name 'http' is the proxy's own"),
        (BadName, "has no 'name'"),
        (Undocumented, r"Options fields without description: \['size'\]"),
        (NotOptions, "Options must subclass TargetOptions"),
        (Mute, "implements no 'handle'"),
        (KeyAuth, "is not a quiver TargetType subclass"),
    ]
    for cls, message in refusals:
        with pytest.raises(PluginDefinitionError, match=message):
            check_target_type(cls)
    with pytest.raises(PluginDefinitionError, match="implements no 'handle'"):
        Catalog(target_types=[Mute])


def test_installed_target_types_come_from_their_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dist = tmp_path / "quiver_test_targets-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: quiver-test-targets\n")
    module = __name__
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [quiver.test-targets]
            hello = {module}:Hello
            impostor = {module}:Impostor
            broken = {module}:Missing
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR, "quiver.plugins"):
        catalog = Catalog.installed(
            [KeyAuth], [DemoTarget], plugin_group="quiver.none", target_group="quiver.test-targets"
        )
    assert catalog.target_type_names() == ["demo", "hello"]
    assert catalog.target_type("demo") is DemoTarget  # a built-in name cannot be taken over
    assert catalog.names() == ["key-auth"]
    logged = caplog.text
    assert "target type 'demo' from" in logged and "ignored: the name is taken" in logged
    assert "target type entry point 'broken' not loaded" in logged


class Impostor(Hello):
    """Installed under a name a built-in type has."""

    name = "demo"
