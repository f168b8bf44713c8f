"""Store mode through real processes: ``quiver serve`` without a config file serves
the store's declaration, seeds a new store, and takes every apply within a second."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quiver.store import open_store
from quiver.store.models import AdminToken
from quiver.store.secrets import hash_admin_token
from tests.store_mode.helpers import (
    LIVE_WITHIN,
    TOKEN_LINE,
    admin_port,
    declaration,
    revision_served,
    start_node,
    wait_live,
)
from tests.support.catalog import built_in
from tests.support.process import run_quiver, serving, write_config

pytestmark = pytest.mark.timeout(120)


def test_no_arguments_seed_the_demo_and_print_the_token_once(tmp_path: Path) -> None:
    with start_node(tmp_path) as node:
        node.wait_listening()
        node.wait_for("serving store revision 1")
        assert revision_served(node.port) is None  # the demo target answers
        [match] = node.wait_for(TOKEN_LINE)
        token = match.group(1)
        assert node.stop() == 0
    assert node.stderr.count(token) == 1  # shown once, logged nowhere else
    store = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        [revision] = store.revisions()
        assert (revision.number, revision.author) == (1, "quiver")
        assert store.current()["routes"] == [{"name": "demo", "paths": ["/"], "target": "demo"}]
        with store.engine.connect() as connection:
            rows = connection.execute(select(AdminToken.name, AdminToken.role)).all()
            assert [tuple(row) for row in rows] == [("admin", "admin")]
            stored = connection.execute(select(AdminToken.token_hash)).scalar_one()
            assert stored == hash_admin_token(token)
    finally:
        store.close()

    with start_node(tmp_path) as again:
        again.wait_listening()
        again.wait_for("serving store revision 1")
        assert revision_served(again.port) is None
        assert again.stop() == 0
    assert "admin token" not in again.stderr
    assert "new store" not in again.stderr


def test_an_apply_through_the_admin_api_is_live_within_a_second(tmp_path: Path) -> None:
    with start_node(tmp_path, "--workers", "2") as node:
        node.wait_listening()
        [match] = node.wait_for(TOKEN_LINE)
        admin = f"http://127.0.0.1:{admin_port(node)}"
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        assert httpx.get(f"{admin}/health").status_code == 200
        config = httpx.get(f"{admin}/config", headers=headers).json()
        assert config["revision"] == 1
        body = {"document": declaration("v2"), "message": "mark answers"}
        answer = httpx.post(f"{admin}/config/apply", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["revision"]["number"] == 2
        wait_live(node, 2, "v2", 2, within=LIVE_WITHIN)
        assert node.stop() == 0
    assert "admin API listening on" in node.stderr


def test_file_mode_runs_the_admin_api_only_when_asked(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        """\
        listen: 127.0.0.1:0
        targets: [{name: demo, type: demo}]
        routes: [{name: all, paths: ["/"], target: demo}]
        """,
    )
    env: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}
    with serving(config, cwd=tmp_path, env=env) as plain:
        assert revision_served(plain.port) is None
        assert plain.stop() == 0
    assert "admin API" not in plain.stderr
    assert not (tmp_path / "quiver.db").exists()

    with serving(config, "--admin-listen", "127.0.0.1:0", cwd=tmp_path, env=env) as node:
        [match] = node.wait_for(TOKEN_LINE)
        admin = f"http://127.0.0.1:{admin_port(node)}"
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        shown = httpx.get(f"{admin}/config", headers=headers).json()
        assert shown["document"]["routes"] == [{"name": "all", "paths": ["/"], "target": "demo"}]
        body = {"document": declaration("v2")}
        refused = httpx.post(f"{admin}/config/apply", json=body, headers=headers)
        assert refused.status_code == 405
        assert refused.json()["type"] == "urn:quiver:problem:read-only"
        assert revision_served(node.port) is None
        assert node.stop() == 0

    config.write_text(config.read_text() + "admin_listen: 127.0.0.1:0\n")  # in the file
    with serving(config, cwd=tmp_path, env=env) as node:
        port = admin_port(node)
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert node.stop() == 0
    assert "admin token" not in node.stderr  # (the store has one since the first run)


def test_an_admin_address_off_loopback_is_refused(tmp_path: Path) -> None:
    result = run_quiver(
        "serve", "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", cwd=tmp_path
    )
    assert result.returncode != 0
    assert "admin_listen 0.0.0.0:0 is not a loopback address" in result.stderr
    assert "admin_tls" in result.stderr, "says how to do it safely"
    assert "Traceback" not in result.stderr


def test_an_admin_address_off_loopback_is_served_over_https_with_admin_tls(
    tmp_path: Path,
) -> None:
    import re
    import ssl

    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    leaf.cert_chain_pems[0].write_to_path(tmp_path / "admin.pem")
    leaf.private_key_pem.write_to_path(tmp_path / "admin.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    bootstrap = write_config(
        tmp_path,
        f"""\
        store: {tmp_path / "quiver.db"}
        admin_listen: 0.0.0.0:0
        admin_tls: {{cert: {tmp_path / "admin.pem"}, key: {tmp_path / "admin.key"}}}
        """,
        name="bootstrap.yaml",
    )
    with serving(bootstrap, "--listen", "127.0.0.1:0", cwd=tmp_path) as node:
        [match] = node.wait_for(re.compile(r"admin API \(pid \d+\) ready at https://[^:]+:(\d+)"))
        port = int(match.group(1))
        verified = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        answer = httpx.get(f"https://127.0.0.1:{port}/health", verify=verified)
        assert answer.status_code == 200
        with pytest.raises(httpx.HTTPError):  # no clear-text admin port
            httpx.get(f"http://127.0.0.1:{port}/health")
        assert node.stop() == 0


def test_the_admin_process_is_started_again_when_it_dies(tmp_path: Path) -> None:
    with start_node(tmp_path) as node:
        node.wait_listening()
        admin_port(node)
        [pid] = node.wait_for(r"admin API started \(pid (\d+)\)")
        os.kill(int(pid.group(1)), signal.SIGKILL)
        node.wait_for(r"admin API exited \(killed by signal 9\); starting it again")
        node.wait_for(r"admin API \(pid \d+\) ready at", count=2)
        port = int(node.wait_for(r"ready at http://127.0.0.1:(\d+)", count=2)[1].group(1))
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert node.stop() == 0


def test_quiver_admin_token_is_the_first_token(tmp_path: Path) -> None:
    token = "qv_" + "t" * 43
    with start_node(tmp_path, env={"QUIVER_ADMIN_TOKEN": token}) as node:
        node.wait_listening()
        node.wait_for("serving store revision 1")
        assert node.stop() == 0
    assert "admin token" not in node.stderr
    assert token not in node.stderr
    store = open_store(str(tmp_path / "quiver.db"))
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(select(AdminToken.name, AdminToken.token_hash)).all()
        assert [tuple(row) for row in rows] == [("admin", hash_admin_token(token))]
    finally:
        store.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_an_apply_is_live_on_every_worker_within_a_second(tmp_path: Path, workers: int) -> None:
    # SQLite: the master follows the database file and its write-ahead log
    with start_node(tmp_path, "--workers", str(workers)) as node:
        node.wait_listening()
        node.wait_for("serving store revision 1")
        node.wait_for(r"worker \d+ started", count=workers)
        store = open_store(str(tmp_path / "quiver.db"), built_in())
        try:
            for number in (2, 3):
                store.apply(declaration(f"v{number}"), author="test")
                wait_live(node, number, f"v{number}", workers, within=LIVE_WITHIN)
        finally:
            store.close()
        assert node.stop() == 0


def test_an_invalid_stored_declaration_keeps_the_previous_one(tmp_path: Path) -> None:
    # A plugin this node does not know (installed where the apply ran): refused, and
    # the node keeps serving what it has instead of retrying at every look.
    with start_node(tmp_path) as node:
        node.wait_listening()
        node.wait_for("serving store revision 1")
        store = open_store(str(tmp_path / "quiver.db"), built_in())
        try:
            store.apply(declaration("v2"), author="test")
            wait_live(node, 2, "v2", 1, within=LIVE_WITHIN)
        finally:
            store.close()
        unknown = declaration("v3")
        unknown["routes"][0]["plugins"]["elsewhere"] = {"origins": ["https://app.example.com"]}
        other = open_store(str(tmp_path / "quiver.db"), _ElsewhereCatalog())
        try:
            other.apply(unknown, author="test")
        finally:
            other.close()
        node.wait_for(r"config reload refused")
        assert revision_served(node.port) == "v2"
        assert node.stop() == 0
    assert node.stderr.count("config reload refused") == 1


def test_a_revision_that_does_not_compile_is_not_what_new_workers_start_with(
    tmp_path: Path,
) -> None:
    # Valid, but its CA file is gone: the workers refuse it, the master's trial
    # compile too, and a worker started afterwards serves the previous revision.
    with start_node(tmp_path, "--workers", "2") as node:
        node.wait_listening()
        node.wait_for(r"worker \d+ started", count=2)
        store = open_store(str(tmp_path / "quiver.db"), built_in())
        try:
            store.apply(declaration("v2"), author="test")
            wait_live(node, 2, "v2", 2, within=LIVE_WITHIN)
            store.apply(_broken("v3", tmp_path), author="test")
        finally:
            store.close()
        node.wait_for(r"config store revision 3 does not compile")
        node.wait_for(r"config reload (refused|failed)", count=2)
        assert revision_served(node.port) == "v2"
        [worker] = node.wait_for(r"worker (\d+) started")
        os.kill(int(worker.group(1)), signal.SIGKILL)
        node.wait_for(r"worker \d+ started", count=3)
        for _ in range(10):
            assert revision_served(node.port) == "v2"
        assert node.stop() == 0
    assert "worker failed" not in node.stderr


def _broken(tag: str, tmp_path: Path) -> dict[str, Any]:
    """A declaration that validates but does not compile: a CA file that is gone."""
    document = declaration(tag)
    document["targets"].append(
        {"name": "tls", "url": "https://127.0.0.1:9", "tls_ca_file": str(tmp_path / "gone")}
    )
    document["routes"].append({"name": "tls", "paths": ["/tls"], "target": "tls"})
    return document


def test_a_node_started_on_a_revision_that_does_not_compile_serves_its_last_good_one(
    tmp_path: Path,
) -> None:
    with start_node(tmp_path) as node:
        node.wait_listening()
        store = open_store(str(tmp_path / "quiver.db"), built_in())
        try:
            store.apply(declaration("v2"), author="test")
            wait_live(node, 2, "v2", 1, within=LIVE_WITHIN)
            node.wait_for("config store revision 2 passed its trial compile")
        finally:
            store.close()
        assert node.stop() == 0
    store = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        store.apply(_broken("v3", tmp_path), author="test")
        with start_node(tmp_path) as again:
            again.wait_listening()
            again.wait_for(
                r"SERVING THE LAST GOOD CONFIG \(store revision 2, kept in .*\): "
                r"store revision 3 does not compile"
            )
            assert revision_served(again.port) == "v2"
            store.apply(declaration("v4"), author="test")
            wait_live(again, 4, "v4", 1, within=LIVE_WITHIN)
            assert again.stop() == 0
    finally:
        store.close()
    assert "revision 3 handed" not in again.stderr  # (not tried again)


class _ElsewhereCatalog:
    """The built-in catalog plus a plugin ``elsewhere`` (installed where the apply
    ran, not on the node)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(built_in(), name)

    def get(self, name: str) -> Any:
        return built_in().get("cors" if name == "elsewhere" else name)

    def names(self) -> list[str]:
        return [*built_in().names(), "elsewhere"]


def test_a_bootstrap_file_holds_the_settings_of_store_mode(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        f"""\
        listen: 127.0.0.1:0
        admin_listen: 127.0.0.1:0
        store: {tmp_path / "gateway.db"}
        run_dir: {tmp_path / "run"}
        """,
    )
    from tests.support.process import QuiverProcess

    with QuiverProcess(["serve"], cwd=tmp_path, env={"QUIVER_CONFIG": None}) as node:
        node.wait_listening()
        node.wait_for("serving store revision 1")
        assert revision_served(node.port) is None
        assert node.stop() == 0
    assert (tmp_path / "gateway.db").is_file()
    assert not (tmp_path / "quiver.db").exists()
    assert (tmp_path / "run" / "last-good.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--store", "mysql://db/quiver"], "--store: expected a SQLite file path"),
        (["--admin-listen", "localhost"], "--admin-listen: expected host:port"),
    ],
)
def test_bad_store_settings_on_the_command_line_are_named(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_quiver("serve", *args, cwd=tmp_path, env={"QUIVER_CONFIG": None})
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_store_settings_in_a_file_name_the_key(tmp_path: Path) -> None:
    write_config(tmp_path, "store: 'mysql://db/quiver'\nadmin_listen: nowhere\n")
    result = run_quiver("serve", cwd=tmp_path, env={"QUIVER_CONFIG": None})
    assert result.returncode == 1
    assert "quiver.yaml:1: store: expected a SQLite file path" in result.stderr
    assert "quiver.yaml:2: admin_listen: expected host:port" in result.stderr


def test_sigterm_stops_the_workers_and_the_admin_process(tmp_path: Path) -> None:
    with start_node(tmp_path, "--workers", "2") as node:
        node.wait_listening()
        node.wait_for("admin API started")
        started = time.monotonic()
        assert node.stop() == 0
        assert time.monotonic() - started < 15
