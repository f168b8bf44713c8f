"""Reloading the config of a running `quiver serve`: SIGHUP, watched files, refusals."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.process import QuiverProcess, catch_all_config, serving
from tests.support.proxy import Client
from tests.support.upstream import Conn, Upstream

RELOADED = r"config reloaded from"
REFUSED = r"config reload refused"
COMPILE_REFUSED = r"config reload (refused|failed)"


def uncompilable_config(tmp_path: Path, workers: int | None = None) -> str:
    """A config that validates but does not compile: its target's CA file is gone."""
    return catch_all_config("https://127.0.0.1:9", workers=workers).replace(
        "url: https://127.0.0.1:9",
        f"url: https://127.0.0.1:9\n    tls_ca_file: {tmp_path}/gone.pem",
    )


def answering(name: str) -> Callable[[Conn], None]:
    """A node that answers every request with its own name, keeping connections open."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            conn.respond(200, name.encode(), [("Content-Type", "text/plain")])
            if not request.keep_alive:
                return

    return handler


@pytest.fixture
def nodes() -> Iterator[tuple[Upstream, Upstream]]:
    with Upstream(answering("A")) as a, Upstream(answering("B")) as b:
        yield a, b


def body_of(port: int) -> bytes:
    with Client(port, timeout=5) as client:
        response = client.request("GET", "/who")
        assert response.status == 200
        return response.body


def test_sighup_switches_to_the_new_config(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, b = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url))
    with serving(config) as proc:
        assert body_of(proc.port) == b"A"
        config.write_text(catch_all_config(b.url))
        proc.signal(signal.SIGHUP)
        proc.wait_for(RELOADED)
        assert body_of(proc.port) == b"B"


def test_an_invalid_config_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, _ = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url))
    with serving(config) as proc:
        config.write_text(catch_all_config(a.url) + "bogus_key: 1\n")
        proc.signal(signal.SIGHUP)
        proc.wait_for(REFUSED)
        proc.wait_for(r"unknown key 'bogus_key'")
        assert body_of(proc.port) == b"A"
        assert proc.proc.poll() is None


def test_a_watched_file_is_reloaded_when_it_changes(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, b = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text("watch: true\n" + catch_all_config(a.url))
    with serving(config) as proc:
        assert body_of(proc.port) == b"A"
        config.write_text("watch: true\n" + catch_all_config(b.url))
        proc.wait_for(RELOADED, timeout=10)
        assert body_of(proc.port) == b"B"


def test_every_worker_reloads_on_sighup_to_the_master(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, b = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url, workers=2))
    with serving(config) as proc:
        proc.wait_for(r"worker \d+ started", count=2)
        config.write_text(catch_all_config(b.url, workers=2))
        proc.signal(signal.SIGHUP)
        proc.wait_for(RELOADED, count=2)
        assert {body_of(proc.port) for _ in range(40)} == {b"B"}


def test_a_watched_file_is_reloaded_by_every_worker_when_it_changes(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, b = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text("watch: true\n" + catch_all_config(a.url, workers=2))
    with serving(config) as proc:
        proc.wait_for(r"worker \d+ started", count=2)
        config.write_text("watch: true\n" + catch_all_config(b.url, workers=2))
        proc.wait_for(RELOADED, count=2, timeout=10)
        assert {body_of(proc.port) for _ in range(40)} == {b"B"}
        config.write_text("watch: true\ntargets: [oops\n")
        proc.wait_for(REFUSED, timeout=10)
        assert {body_of(proc.port) for _ in range(20)} == {b"B"}
        assert proc.stderr.count("config reloaded from") == 2


def test_an_invalid_config_is_refused_by_the_master_before_any_worker_sees_it(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, _ = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url, workers=2))
    with serving(config) as proc:
        config.write_text("targets: [oops\n")
        proc.signal(signal.SIGHUP)
        proc.wait_for(REFUSED)
        assert {body_of(proc.port) for _ in range(20)} == {b"A"}
        assert RELOADED not in proc.stderr


def test_reloads_under_load_lose_no_request(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    a, b = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url))
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def load(port: int, fresh_connections: bool) -> None:
        client: Client | None = None
        while not stop.is_set():
            try:
                if client is None:
                    client = Client(port, timeout=5)
                response = client.request("GET", "/who")
                if response.status != 200:
                    failures.append(f"status {response.status}")
                seen[response.body.decode()] += 1
                if fresh_connections:
                    client.close()
                    client = None
            except (OSError, ConnectionError) as exc:
                failures.append(repr(exc))
                client = None
        if client is not None:
            client.close()

    with serving(config) as proc:
        threads = [
            threading.Thread(target=load, args=(proc.port, fresh)) for fresh in (False, True)
        ]
        for thread in threads:
            thread.start()
        try:
            for index in range(1, 21):
                node = b if index % 2 else a
                config.write_text(catch_all_config(node.url))
                proc.signal(signal.SIGHUP)
                proc.wait_for(RELOADED, count=index)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
    assert failures == []
    assert seen["A"] > 0 and seen["B"] > 0
    assert set(seen) == {"A", "B"}


def test_sighup_without_a_config_file_reloads_the_store(tmp_path: Path) -> None:
    args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    args += ["--run-dir", str(tmp_path / "run")]
    env: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}
    with QuiverProcess(args, cwd=tmp_path, env=env) as proc:
        proc.wait_listening()
        proc.signal(signal.SIGHUP)
        proc.wait_for(r"config reloaded from store revision 1")
        with Client(proc.port) as client:
            assert client.request("GET", "/hello").status == 200


@pytest.mark.parametrize("workers", [1, 2])
def test_command_line_settings_hold_over_a_reload_without_a_warning(
    tmp_path: Path, nodes: tuple[Upstream, Upstream], workers: int
) -> None:
    # --listen and --drain-timeout replace the file's settings at every load: a
    # reload neither loses them nor reports them as changes of the file
    a, b = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url, listen="127.0.0.1:1", workers=workers))
    args = ("--listen", "127.0.0.1:0", "--drain-timeout", "1s")
    with serving(config, *args) as proc:
        config.write_text(catch_all_config(b.url, listen="127.0.0.1:1", workers=workers))
        proc.signal(signal.SIGHUP)
        proc.wait_for(RELOADED, count=workers)
        assert body_of(proc.port) == b"B"
        assert "restart only" not in proc.stderr


def test_a_config_that_fails_to_compile_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    # validation passes, building the target does not (its CA file is gone)
    a, _ = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url))
    with serving(config) as proc:
        config.write_text(uncompilable_config(tmp_path))
        proc.signal(signal.SIGHUP)
        proc.wait_for(COMPILE_REFUSED)
        assert body_of(proc.port) == b"A"
        assert proc.proc.poll() is None


def test_a_config_the_workers_cannot_compile_is_not_given_to_new_workers(
    tmp_path: Path, nodes: tuple[Upstream, Upstream]
) -> None:
    # The master compiles a reloaded config before it adopts it: a worker started
    # after a refused reload (here, to replace one that died) gets the config that
    # works, instead of crashing on the refused one over and over.
    a, _ = nodes
    config = tmp_path / "quiver.yaml"
    config.write_text(catch_all_config(a.url, workers=2))
    with serving(config) as proc:
        proc.wait_for(r"worker \d+ started", count=2)
        config.write_text(uncompilable_config(tmp_path, workers=2))
        proc.signal(signal.SIGHUP)
        proc.wait_for(COMPILE_REFUSED)
        pids = [int(p) for p in re.findall(r"worker (\d+) started", proc.stderr)]
        os.kill(pids[0], signal.SIGKILL)
        proc.wait_for(r"worker \d+ started", count=3)
        assert {body_of(proc.port) for _ in range(20)} == {b"A"}
        assert "exit code 1" not in proc.stderr
