"""Several nodes on one PostgreSQL store: each apply reaches all of them within a
second (LISTEN/NOTIFY), and a node that loses the database keeps serving.

Convergence runs on the shared server (a schema of its own); the tests that stop
the database start a private server instead of stopping the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from quiver.store import Store, open_store
from tests.store.conftest import postgres_schema_url
from tests.store_mode.helpers import (
    LIVE_WITHIN,
    declaration,
    revision_served,
    start_node,
    wait_live,
)
from tests.support.catalog import built_in
from tests.support.postgres import PrivatePostgres, private_postgres
from tests.support.process import QuiverProcess

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def shared_url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def private() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def started(stack: ExitStack, home: Path, url: str) -> QuiverProcess:
    node = stack.enter_context(start_node(home, "--store", url))
    node.wait_listening()
    node.wait_for(r"serving store revision \d+")
    return node


def applied(url: str, tag: str) -> int:
    store: Store = open_store(url, built_in())
    try:
        revision = store.apply(declaration(tag), author="test")
        assert revision is not None
        return revision.number
    finally:
        store.close()


def all_live(nodes: list[QuiverProcess], revision: int, tag: str, within: float) -> None:
    deadline = time.monotonic() + within
    for node in nodes:
        wait_live(node, revision, tag, 1, within=max(0.0, deadline - time.monotonic()))


def test_two_nodes_sharing_postgresql_converge_within_a_second(
    tmp_path: Path, shared_url: str
) -> None:
    with ExitStack() as stack:
        nodes = [started(stack, tmp_path / name, shared_url) for name in ("a", "b")]
        for tag in ("v2", "v3"):
            number = applied(shared_url, tag)
            all_live(nodes, number, tag, LIVE_WITHIN)
        for node in nodes:
            assert node.stop() == 0
    assert sum("admin token (shown once" in node.stderr for node in nodes) == 1
    assert all("worker failed" not in node.stderr for node in nodes)


def test_stopping_postgresql_leaves_both_nodes_serving(
    tmp_path: Path, private: PrivatePostgres
) -> None:
    with ExitStack() as stack:
        nodes = [started(stack, tmp_path / name, private.url) for name in ("a", "b")]
        number = applied(private.url, "v2")
        all_live(nodes, number, "v2", LIVE_WITHIN)
        private.stop()
        for node in nodes:
            node.wait_for("lost the store's revision notifications", timeout=10)
            node.wait_for(r"config store .* unreachable \(", timeout=10)
            assert revision_served(node.port) == "v2"
        watched_until = time.monotonic() + 2.0  # through several of the polls it falls back to
        while time.monotonic() < watched_until:
            for node in nodes:
                assert revision_served(node.port) == "v2"
        private.start()
        for node in nodes:
            node.wait_for("config store .* reachable again", timeout=10)
            node.wait_for("listening for the store's revisions again", timeout=10)
        number = applied(private.url, "v3")
        all_live(nodes, number, "v3", LIVE_WITHIN)
        for node in nodes:
            assert node.stop() == 0
    for node in nodes:  # once when it went, once when it came back: not per poll
        assert node.stderr.count("unreachable (") == 1
        assert node.stderr.count("reachable again") == 1


def test_a_node_restarted_while_postgresql_is_down_serves_its_last_config(
    tmp_path: Path, private: PrivatePostgres
) -> None:
    home = tmp_path / "node"
    with ExitStack() as stack:
        node = started(stack, home, private.url)
        number = applied(private.url, "v2")
        all_live([node], number, "v2", LIVE_WITHIN)
        assert node.stop() == 0
    private.stop()
    with ExitStack() as stack:
        node = stack.enter_context(start_node(home, "--store", private.url))
        node.wait_listening()
        node.wait_for(r"SERVING THE LAST GOOD CONFIG \(store revision 2")
        assert revision_served(node.port) == "v2"
        private.start()
        node.wait_for("config store .* reachable again", timeout=10)
        number = applied(private.url, "v3")
        all_live([node], number, "v3", LIVE_WITHIN)
        assert node.stop() == 0


def test_a_new_node_without_a_last_good_config_refuses_an_unreachable_store(
    tmp_path: Path, private: PrivatePostgres
) -> None:
    private.stop()
    with start_node(tmp_path, "--store", private.url) as node:
        assert node.wait(30) == 1
    assert "is unreachable and this node has no last good config" in node.stderr
    assert "Traceback" not in node.stderr
