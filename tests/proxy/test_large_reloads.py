"""Reloading thousands of routes without holding up the requests being served."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from quiver.config.models import Config
from quiver.config.sources import FileSource, file_signature
from quiver.proxy.handoff import read_handoff, write_handoff
from quiver.proxy.lag import LoopLag
from quiver.proxy.reload import Reloader, run_in_slices
from quiver.proxy.routing.matcher import Router
from quiver.proxy.snapshot import Steps, compile_snapshot, compile_steps
from quiver.proxy.sweeper import Sweeper
from tests.support.catalog import built_in, load_config_text
from tests.support.process import serving
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Upstream

ROUTES = 2000
#: far above the 10-20 ms a compiling slice takes: a loaded CI machine stretches them
STALL_BOUND = 0.25


def config_text(url: str, variant: int, *, routes: int = ROUTES, extra: str = "") -> str:
    """``routes`` routes on 20 targets (a CORS plugin on every fifth), plus ``/new<variant>``."""
    lines = ["listen: 127.0.0.1:0", extra, "targets:"]
    lines += [f"  - {{name: t{i}, url: '{url}/t{i}'}}" for i in range(20)]
    lines.append("routes:")
    lines.append("  - {name: who, paths: ['=/who'], target: t0}")
    for i in range(routes):
        plugins = ", plugins: {cors: {origins: ['https://a.example']}}" if i % 5 == 0 else ""
        path = f"/svc{i // 10}/p{i % 10}/{{id}}"
        lines.append(f"  - {{name: r{i}, paths: ['{path}'], target: t{i % 20}{plugins}}}")
    lines.append(f"  - {{name: new{variant}, paths: ['=/new{variant}'], target: t1}}")
    return "\n".join(lines) + "\n"


def echo_path(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        conn.respond(200, request.path.encode(), [("Content-Type", "text/plain")])
        if not request.keep_alive:
            return


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo_path) as upstream:
        yield upstream


def rows(router: Router[Any]) -> list[dict[str, object]]:
    return router.table()


def test_a_stepwise_compile_routes_like_a_whole_one(node: Upstream) -> None:
    config = load_config_text(config_text(node.url, 1, routes=600))
    loop = asyncio.new_event_loop()
    try:
        sweeper = Sweeper(loop, interval=1.0)
        whole = compile_snapshot(config, loop, sweeper, catalog=built_in())
        steps = compile_steps(config, loop, sweeper, catalog=built_in())
        pauses = 0
        while True:
            try:
                next(steps)
                pauses += 1
            except StopIteration as done:
                stepwise = done.value
                break
        assert pauses >= 600 // 50  # (one pause per STEP routes at least)
        assert rows(stepwise.router) == rows(whole.router)
        assert list(stepwise.targets) == list(whole.targets)
        whole.close()
        stepwise.close()
    finally:
        loop.close()


def test_a_compile_given_up_leaves_the_live_snapshot_alone(node: Upstream) -> None:
    config = load_config_text(config_text(node.url, 1, routes=300))
    loop = asyncio.new_event_loop()
    try:
        sweeper = Sweeper(loop, interval=1.0)
        previous = compile_snapshot(config, loop, sweeper, catalog=built_in())
        kept = previous.targets["t0"]
        moved = [t.model_copy(update={"url": f"{t.url}/v2"}) for t in config.targets[1:]]
        changed = config.model_copy(update={"targets": [config.targets[0], *moved]})
        steps = compile_steps(changed, loop, sweeper, previous, catalog=built_in())
        next(steps)  # (the targets are compiled by the first pause, within the routes)
        steps.close()
        pools = [node.pool for runtime in previous.targets.values() for node in runtime.nodes]
        assert pools and not any(pool is not None and pool.closed for pool in pools)
        assert kept.nodes[0].pool is not None and not kept.nodes[0].pool.closed
        previous.close()
    finally:
        loop.close()


def reload_in(proxy: RunningProxy, reloader: Reloader) -> tuple[bool, float]:
    """Run one reload on the proxy's loop: (whether it went through, longest stall)."""
    lag = LoopLag(proxy.loop, serving=lambda: True, interval=0.005)

    async def reload() -> tuple[bool, float]:
        lag.start()
        try:
            done = await reloader.reload_now()
            await asyncio.sleep(0)
        finally:
            lag.stop()
        return done, lag.longest

    return asyncio.run_coroutine_threadsafe(reload(), proxy.loop).result(60)


def in_flight(port: int, stop: threading.Event, statuses: list[int]) -> Callable[[], None]:
    """A client sending requests one after the other until ``stop`` is set."""

    def run() -> None:
        with Client(port, timeout=10) as client:
            while not stop.is_set():
                statuses.append(client.request("GET", "/svc3/p4/7").status)

    return run


@pytest.mark.parametrize("freeze", [False, True])
def test_a_large_reload_stalls_the_loop_briefly_and_loses_no_request(
    tmp_path: Path, node: Upstream, freeze: bool
) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(config_text(node.url, 1))
    with RunningProxy(load_config_text(path.read_text())) as proxy:
        assert proxy.server is not None
        before = proxy.server.state.snapshot
        path.write_text(config_text(node.url, 2))
        reloader = Reloader(proxy.server, FileSource(str(path), built_in()), proxy.loop)
        reloader.freeze = freeze
        stop, statuses = threading.Event(), list[int]()
        senders = [threading.Thread(target=in_flight(proxy.port, stop, statuses))]
        for sender in senders:
            sender.start()
        # as a worker does once started (worker.py): what this test process holds from
        # earlier tests is no garbage a reload's collections should walk again
        gc.collect()
        gc.freeze()
        try:
            done, stall = reload_in(proxy, reloader)
        finally:
            gc.unfreeze()
            stop.set()
            for sender in senders:
                sender.join(10)
        assert done
        assert stall < STALL_BOUND, f"the loop stalled {stall * 1000:.0f} ms"
        assert statuses and set(statuses) == {200}
        after = proxy.server.state.snapshot
        assert after is not before
        # unchanged targets are taken over whole: same pools, same health state
        assert all(after.targets[name] is runtime for name, runtime in before.targets.items())
        with Client(proxy.port, timeout=5) as client:
            response = client.request("GET", "/new2")
            assert (response.status, response.body) == (200, b"/t1/new2")
            assert client.request("GET", "/new1").status == 404
            assert client.request("GET", "/svc7/p3/9").body == b"/t13/svc7/p3/9"
            preflight = client.request(
                "OPTIONS",
                "/svc7/p0/9",
                headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"},
            )
            assert preflight.header("access-control-allow-origin") == "https://a.example"


def test_a_reload_asked_for_during_another_runs_after_it(tmp_path: Path, node: Upstream) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(config_text(node.url, 1, routes=200))
    with RunningProxy(load_config_text(path.read_text())) as proxy:
        assert proxy.server is not None
        server = proxy.server
        reloader = Reloader(server, FileSource(str(path), built_in()), proxy.loop)
        finished = threading.Event()

        async def twice() -> None:
            reloader.reload()
            path.write_text(config_text(node.url, 3, routes=200))
            reloader.reload()  # under way: runs again once the first one ends
            assert reloader._task is not None
            await reloader._task
            finished.set()

        asyncio.run_coroutine_threadsafe(twice(), proxy.loop).result(60)
        assert finished.is_set()
        names = [route.name for route in server.state.snapshot.config.routes]
        assert names[-1] == "new3"


def test_the_loop_gets_its_turn_once_a_slice_took_its_time() -> None:
    # clock reads: the start, one after each step, one after each turn of the loop
    ticks = iter([0.0, 0.004, 0.011, 0.012, 0.030, 0.031, 0.035])
    done: list[int] = []

    def steps() -> Generator[None, None, str]:
        for index in range(4):
            done.append(index)
            yield
        return "compiled"

    async def run() -> tuple[object, list[int]]:
        loop = asyncio.get_running_loop()
        turns: list[int] = []

        def turn() -> None:  # runs each time the slices let the loop have a turn
            turns.append(len(done))
            if len(turns) < 3:
                loop.call_soon(turn)

        loop.call_soon(turn)
        result = await run_in_slices(cast(Steps, steps()), 0.01, clock=lambda: next(ticks))
        return result, turns

    result, turns = asyncio.run(run())
    assert result == "compiled"
    # 0.011 s after two steps and 0.018 s after the next: two turns, then the end
    assert turns[:2] == [2, 3]


def test_the_handoff_is_read_only_for_the_file_it_was_made_from(
    tmp_path: Path, node: Upstream
) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(config_text(node.url, 1, routes=10))
    config = load_config_text(path.read_text())
    handoff = tmp_path / "run" / "config-1.pickle"
    write_handoff(handoff, config, file_signature(str(path)))
    assert handoff.stat().st_mode & 0o077 == 0
    assert read_handoff(handoff, file_signature(str(path))) == config
    path.write_text(config_text(node.url, 2, routes=10))
    assert read_handoff(handoff, file_signature(str(path))) is None
    assert read_handoff(tmp_path / "run" / "none.pickle", file_signature(str(path))) is None


def test_a_handoff_others_may_write_is_not_read(tmp_path: Path, node: Upstream) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(config_text(node.url, 1, routes=10))
    handoff = tmp_path / "config-1.pickle"
    signature = file_signature(str(path))
    write_handoff(handoff, load_config_text(path.read_text()), signature)
    os.chmod(handoff, 0o666)
    assert read_handoff(handoff, signature) is None


def status_documents(run_dir: Path) -> list[dict[str, Any]]:
    documents = []
    for found in run_dir.glob("worker-*.json"):
        try:
            documents.append(json.loads(found.read_text()))
        except (OSError, ValueError):
            continue  # (being replaced right now)
    return documents


def test_workers_reload_a_large_config_from_the_master_without_long_stalls(
    tmp_path: Path, node: Upstream
) -> None:
    run_dir = tmp_path / "run"
    path = tmp_path / "quiver.yaml"
    settings = f"workers: 2\nrun_dir: {run_dir}"
    path.write_text(config_text(node.url, 1, extra=settings))
    with serving(path) as proc:
        proc.wait_for(r"worker \d+ started", count=2)
        stop, statuses = threading.Event(), list[int]()
        senders = [threading.Thread(target=in_flight(proc.port, stop, statuses)) for _ in range(4)]
        for sender in senders:
            sender.start()
        try:
            path.write_text(config_text(node.url, 2, extra=settings))
            signalled = time.time()
            proc.signal(signal.SIGHUP)
            proc.wait_for(r"config reloaded from", count=2, timeout=60)
        finally:
            stop.set()
            for sender in senders:
                sender.join(10)
        assert statuses and set(statuses) == {200}
        assert list(run_dir.glob("config-*.pickle"))  # the workers were handed the config
        with Client(proc.port, timeout=5) as client:
            assert client.request("GET", "/new2").status == 200
        # each worker's status document, written after its reload, tells its stalls
        deadline = time.monotonic() + 30
        while True:
            documents = status_documents(run_dir)
            fresh = [d for d in documents if d["written_at"] > signalled + 0.5]
            if len(fresh) >= 2 or time.monotonic() > deadline:
                break
            threading.Event().wait(0.05)
        assert len(fresh) >= 2
        for document in fresh:
            assert document["loop"]["longest_stall_ms"] < STALL_BOUND * 1000, document["loop"]


def test_config_equality_survives_the_handoff(tmp_path: Path, node: Upstream) -> None:
    text = config_text(node.url, 1, routes=20)
    text += "consumers:\n  - name: alice\n    credentials:\n      key-auth: [{key: alice-key-1}]\n"
    config = load_config_text(text)
    handoff = tmp_path / "config-1.pickle"
    signature = (1, 2, 3)
    write_handoff(handoff, config, signature)
    copy = read_handoff(handoff, signature)
    assert isinstance(copy, Config)
    assert copy == config
    assert type(copy.consumers[0].credentials["key-auth"][0]) is type(
        config.consumers[0].credentials["key-auth"][0]
    )
