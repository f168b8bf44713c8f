"""SIGKILL ``quiver sync`` at random points, each followed by a resumed run, and
compare the destination with a clean run's, row for row.

    .venv/bin/python bench/sync_kill.py [POINTS] [SEED]     # default 20 points

A point is a request number of the run and a delay after it arrives (0.5-20 ms, so
kills land during fetches, parsing and commits alike). Prints one line per point and
exits non-zero at the first destination that differs.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sync.kill import finished, run, snapshot


def main() -> int:
    points = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    chance = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    with tempfile.TemporaryDirectory() as scratch:
        clean_dir = Path(scratch) / "clean"
        clean_dir.mkdir()
        run(clean_dir)
        clean = snapshot(clean_dir)
        requests = 12 + 4 + 9  # items pages, events pages, one per event
        for point in range(points):
            directory = Path(scratch) / f"point-{point}"
            directory.mkdir()
            at, delay = chance.randint(1, requests), chance.uniform(0.0005, 0.02)
            run(directory, kill_at=at, delay=delay)
            if finished(directory):  # the kill came as the process exited: nothing to resume
                outcome = "finished before the kill"
            else:
                outcome = "killed, then resumed"
                run(directory)
            same = snapshot(directory) == clean
            print(
                f"point {point + 1}: request {at} + {delay * 1000:.0f} ms, {outcome}: "
                f"{'same as a clean run' if same else 'DIFFERS'}"
            )
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
