"""Rotation by time, decided under the shared lock (the clock is injected: no
waiting for a day to pass)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from quiver.config.access_log import Rotate
from quiver.observe import sinks
from quiver.observe.sinks import FileSink

DAY = 86400.0


def test_every_moves_the_file_aside_at_the_period_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [DAY * 10 + 5]
    monkeypatch.setattr(sinks, "time", SimpleNamespace(time=lambda: now[0]))
    path = tmp_path / "access.log"
    sink = FileSink(path, Rotate(every=DAY, keep=2))
    other = FileSink(path, Rotate(every=DAY, keep=2))  # another worker on the same file
    sink.write([b"day 10\n"])
    other.write([b"day 10 too\n"])
    now[0] += DAY
    sink.write([b"day 11\n"])
    other.write([b"day 11 too\n"])  # rotated already: it opens the new file
    now[0] += DAY
    sink.write([b"day 12\n"])
    now[0] += DAY
    sink.write([b"day 13\n"])
    sink.close()
    other.close()
    assert path.read_text() == "day 13\n"
    assert (tmp_path / "access.log.1").read_text() == "day 12\n"
    assert (tmp_path / "access.log.2").read_text() == "day 11\nday 11 too\n"
    assert not (tmp_path / "access.log.3").exists()  # keep: 2
