"""Which spools are finished, and how their lines are read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from quiver.calls.spool import finished, read_lines


def test_a_live_writers_file_waits_and_a_dead_writers_counts(tmp_path: Path) -> None:
    (tmp_path / f"{os.getpid()}-3.jsonl").write_text("{}\n")  # this process is alive
    (tmp_path / f"{os.getpid()}-2.jsonl.done").write_text("{}\n")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(gone.stdout)
    (tmp_path / f"{dead}-1.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("not a spool")
    names = [spool.name for spool in finished(tmp_path)]
    assert sorted(names) == sorted([f"{os.getpid()}-2.jsonl.done", f"{dead}-1.jsonl"])


def test_whole_lines_are_read_and_a_cut_last_line_is_consumed(tmp_path: Path) -> None:
    path = tmp_path / "1-1.jsonl.done"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    lines, end, at_end = read_lines(path, 0, 1)
    assert (lines, end, at_end) == ([b'{"a":1}\n'], 8, False)
    lines, end, at_end = read_lines(path, end, 10)
    assert lines == [b'{"b":2}\n'] and end == path.stat().st_size and at_end
