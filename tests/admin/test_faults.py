"""Faults answer 500 with nothing internal in them; config locations become pointers."""

from __future__ import annotations

import logging

import httpx
import pytest

from quiver.admin import create_app
from quiver.admin.issues import Within, parse_location, pointer_of
from quiver.store import Current, Diff, Edit, Store
from quiver.store.tokens import create_token
from tests.admin.problems import assert_problem
from tests.admin.server import serving
from tests.support.catalog import built_in


class Broken:
    """Declarations whose database fails the way a real one might."""

    store = None

    def has_team(self, team: str) -> bool:
        return True

    def read(self, team: str) -> Current:
        raise RuntimeError("SELECT key_hash FROM credentials at 10.1.2.3:5432 failed")

    def diff(self, document: object, team: str) -> Diff:
        raise RuntimeError("boom")

    def edit(
        self, team: str, mutate: object, author: str, message: str, *, also: object = None
    ) -> Edit:
        raise RuntimeError("boom")


def test_a_fault_is_a_500_problem_that_leaks_nothing(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _, token = create_token(store, "root", "admin")
    with (
        serving(create_app(Broken(), store, built_in())) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client,
        caplog.at_level(logging.ERROR, logger="quiver.admin"),
    ):
        response = client.get("/targets")
        body = assert_problem(response, 500, "internal")
        assert body["request_id"] in body["detail"]
        for leak in ("SELECT", "10.1.2.3", "Traceback", "RuntimeError"):
            assert leak not in response.text
        assert client.get("/health").status_code == 200  # still serving
    assert any(body["request_id"] in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("routes[3].plugins.cors.origins", ("routes", 3, "plugins", "cors", "origins")),
        (
            "consumers[0].credentials.key-auth[1].key",
            ("consumers", 0, "credentials", "key-auth", 1, "key"),
        ),
        ("plugins['my plugin'].x", ("plugins", "my plugin", "x")),
        ('targets[0].options["it\'s"]', ("targets", 0, "options", "it's")),
        ("", ()),
    ],
)
def test_locations_parse_as_quiver_check_writes_them(
    location: str, path: tuple[object, ...]
) -> None:
    assert parse_location(location) == path


def test_pointers_are_relative_to_the_body_and_escaped() -> None:
    from quiver.errors import ConfigIssue

    sent = [Within(("plugins", "a/b~c"))]
    assert pointer_of(ConfigIssue("plugins['a/b~c'].x~y", "bad"), sent) is None  # not a location
    assert pointer_of(ConfigIssue("plugins.a", "bad"), sent) is None
    sent = [Within(("targets", 2)), Within(("targets", 2, "nodes"), "/nodes")]
    assert pointer_of(ConfigIssue("targets[2].nodes[0].url", "bad"), sent) == "/nodes/0/url"
    assert pointer_of(ConfigIssue("targets[2]", "bad"), sent) == ""
    assert pointer_of(ConfigIssue("routes[0].target", "bad"), sent) is None
    sent = [Within(("plugins", "x"))]
    assert pointer_of(ConfigIssue("plugins.x['a/b~c']", "bad"), sent) == "/a~1b~0c"
