"""Config sources: the config file, reloaded on SIGHUP and, when watched, on change."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from quiver.config.sources import ConfigSource, FileSource, restart_only_changes
from quiver.errors import ConfigError
from tests.support.catalog import built_in

CONFIG = """\
listen: 127.0.0.1:0
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes: [{name: r, paths: ["/"], target: b, plugins: {key-auth: {}}}]
"""


def test_a_file_source_loads_the_file_with_its_catalog(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(CONFIG)
    source: ConfigSource = FileSource(str(path), built_in())
    assert source.name == str(path)
    assert source.load().routes[0].plugins == {"key-auth": {}}
    with pytest.raises(ConfigError, match="unknown plugin 'key-auth'"):
        FileSource(str(path)).load()  # without a catalog, no plugin is known


def test_a_watched_file_source_calls_back_on_change_and_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(CONFIG)
    source = FileSource(str(path), built_in(), poll=True, interval=0.01)
    loop = asyncio.new_event_loop()
    changes: asyncio.Queue[str] = asyncio.Queue()
    try:
        source.watch(loop, lambda: changes.put_nowait("change"))

        async def next_change() -> str:
            return await asyncio.wait_for(changes.get(), timeout=5)

        path.write_text(CONFIG + "workers: 2\n")
        assert loop.run_until_complete(next_change()) == "change"
        os.kill(os.getpid(), signal.SIGHUP)
        assert loop.run_until_complete(next_change()) == "change"
        assert changes.empty()
    finally:
        source.close()
        loop.close()
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.default_int_handler)


def test_a_file_source_tells_a_change_without_an_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(CONFIG)
    source: ConfigSource = FileSource(str(path), built_in(), poll=True, interval=0.25)
    assert source.poll_interval == 0.25
    assert not source.changed()
    path.write_text(CONFIG + "workers: 2\n")
    assert source.changed()
    assert not source.changed()  # told once
    assert source.load().workers == 2
    path.write_text(CONFIG + "workers: 3\n")
    assert source.load().workers == 3  # on SIGHUP, say
    assert not source.changed()  # loaded already
    path.unlink()
    assert not source.changed()  # a file being replaced has not changed yet
    assert FileSource(str(path)).poll_interval is None  # not watched: SIGHUP only


def test_changed_settings_are_named_as_restart_only(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(CONFIG)
    source = FileSource(str(path), built_in())
    old = source.load()
    path.write_text(CONFIG.replace("127.0.0.1:0", "127.0.0.1:1") + "workers: 3\n")
    new = source.load()
    assert restart_only_changes(old, new) == ["listen", "workers"]
    assert restart_only_changes(old, old) == []
