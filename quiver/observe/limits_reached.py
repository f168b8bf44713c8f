"""Limits reached: the note a worker leaves in the run directory the first time a
quota or an AI budget refuses a request in a period, which the admin sidecar
publishes as a webhook event (``quota.reached``, ``budget.reached``; the reading
side is :mod:`quiver.admin.limit_events`).

The workers never reach the store.  A note is one small JSON file,
``<run_dir>/limits/<id>.json``, whose id is a digest of the event type, the
limit's counter key and the period: every worker meeting the same spent limit in
the same period writes the same file, whole (a temporary file renamed), and a
worker notes a limit once per period however many requests it refuses.  The
sidecar publishes a note with its id as the message id (the store refuses a
second message of an id) and then removes it, so one event goes out per limit
and period, whichever workers refused, whether or not the sidecar was up then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_log = logging.getLogger("quiver.plugins")
DIRECTORY = "limits"
QUOTA_REACHED, BUDGET_REACHED = "quota.reached", "budget.reached"
_REMEMBERED = 10_000  # limits a worker remembers having noted


def timestamp(seconds: float) -> str:
    """``2026-12-06T21:00:00Z``: how events say when."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def readable_key(key: bytes) -> str:
    """What a counter key counts, without its scope: ``consumer=alice``."""
    parts = key.split(b"\x1f")[1:]
    return ",".join(part.decode(errors="replace") for part in parts if part)


class ReachedNotes:
    """The notes this worker writes to ``run_dir`` (nowhere without one)."""

    def __init__(self, run_dir: Path | None, clock: Any = time.time) -> None:
        self.directory = run_dir / DIRECTORY if run_dir is not None else None
        self.clock = clock
        #: when each limit this worker noted starts counting again
        self._quiet: dict[tuple[str, bytes], float] = {}

    def quiet(self, event_type: str, key: bytes) -> bool:
        """Whether a note of ``key`` would say nothing new (one was written and the
        limit has not let the key through since): a refusal costs no more then."""
        return self.directory is None or self.clock() < self._quiet.get((event_type, key), 0.0)

    def note(
        self, event_type: str, key: bytes, period: float, resets: float, data: dict[str, Any]
    ) -> None:
        """Say that the limit counted under ``key`` refused a request in ``period``
        (a number naming it: its end, say), which ends at ``resets``; until then
        this worker says it only once."""
        directory = self.directory
        if directory is None or self.quiet(event_type, key):
            return
        if len(self._quiet) >= _REMEMBERED:
            self._quiet.clear()
        self._quiet[(event_type, key)] = resets
        digest = hashlib.sha256(b"%s\x00%s\x00%r" % (event_type.encode(), key, period))
        note_id = "lim_" + digest.hexdigest()[:40]
        body = {"type": event_type, "time_ms": int(self.clock() * 1000), "data": data}
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
            fresh = directory / f".{note_id}.{os.getpid()}"
            fresh.write_text(json.dumps(body))
            os.replace(fresh, directory / f"{note_id}.json")
        except OSError as exc:  # (the refusal stands; only its event is lost)
            _log.warning("%s not noted for its webhook event: %s", event_type, exc)


@dataclass(frozen=True)
class Note:
    id: str  # the message id it is published under
    path: Path
    type: str
    time_ms: int
    data: dict[str, Any]


def read_notes(run_dir: Path) -> Iterator[Note]:
    """The notes waiting in ``run_dir``, oldest first (a file that is no note is
    skipped and left alone)."""
    directory = run_dir / DIRECTORY
    try:
        paths = sorted(directory.glob("lim_*.json"), key=lambda path: path.stat().st_mtime)
    except OSError:  # (none yet, or one removed while sorting: next time)
        return
    for path in paths:
        try:
            body = json.loads(path.read_text())
            yield Note(path.stem, path, body["type"], int(body["time_ms"]), dict(body["data"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
