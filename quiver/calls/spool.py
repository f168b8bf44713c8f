"""The spool protocol between the workers (writers) and the ingester (reader).

Directory: ``<run dir>/calls/``.  Each worker writes its own files, named
``<worker pid>-<n>.jsonl`` with ``n`` counting from 1 per worker.

Writer (a worker), for every exchange that ended:

1. append one record as one JSON object on one line ending in ``\\n``, written
   with the other lines of its batch in a single ``write`` to a file opened with
   ``O_APPEND`` (a line is never split between files and never interleaved with
   another writer's);
2. when the file has reached its size limit (after a whole batch), and every
   second when it holds any line, close it and rename it to
   ``<pid>-<n>.jsonl.done``, then write to ``<pid>-<n+1>.jsonl``;
3. on a clean exit, rename its current file to ``.done`` the same way (an empty
   one is removed instead).

The rename is what tells the reader a file is finished: it never reads a
``.jsonl`` file whose writer is alive.  A ``.jsonl`` file whose writer pid is no
longer running (a worker that crashed) counts as finished too; a last line without
its ``\\n`` (cut by the crash) is dropped.  A writer that gets the pid of one that
crashed numbers its files after those already there, and leaves them alone: they
wait until it exits too (renaming them could repeat what was read of them).

Reader (the ingester, one per node, in the admin sidecar): for each finished file,
oldest first, read whole lines from the offset recorded in ``call_spools``, insert
a batch of them and record the new offset in the same transaction; once the
offset reaches the file's end, delete the file, then its offset row.  A crash
anywhere in between neither loses a line nor inserts one twice: the offset
committed with the rows says exactly what was consumed.  The offset row also keeps
a digest of the file's first line, so a row left behind by a crash between
deleting a file and deleting its row never applies to a later file that happens
to get the same name (a worker pid used again).

A record is the access log's JSON line with every field (docs/observability.md):
``time`` (ISO 8601, UTC), ``request_id``, ``client_ip``, ``method``, ``path``,
``status``, ``route``, ``target``, ``node``, ``consumer``, ``bytes_in``,
``bytes_out``, ``latency_ms``, ``upstream_ms``, ``gateway_ms``, ``retries``,
``cache``, ``answered_by``, ``user_agent``; ``capture`` for the calls of routes
that keep header fields and bodies (``routes[].call_log``); and ``ai`` for calls
that went to a model (what they used: quiver.observe.spend).  The writer is
quiver.observe.call_spool (the data plane's side, which never imports this
package); the names of the files are its.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from quiver.observe.call_spool import SPOOL_NAME
from quiver.system import process_alive


@dataclass(frozen=True, order=True)
class Spool:
    pid: int
    number: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def finished(directory: Path) -> list[Spool]:
    """The spools the reader may consume, oldest of each writer first."""
    found: list[Spool] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = SPOOL_NAME.match(entry.name)
        if match is None:
            continue
        pid = int(match["pid"])
        if match["done"] is None and process_alive(pid):
            continue
        found.append(Spool(pid, int(match["n"]), Path(entry.path)))
    return sorted(found)


def head(path: Path) -> str:
    """A digest of the file's first line: what tells two files of one name apart
    (every line carries its own request id)."""
    with path.open("rb") as file:
        return hashlib.sha256(file.readline()).hexdigest()[:32]


def read_lines(path: Path, offset: int, most: int) -> tuple[list[bytes], int, bool]:
    """Up to ``most`` whole lines of ``path`` from ``offset``: the lines, the offset
    after them, and whether that is the end of the file (a cut last line counts as
    consumed: its writer is gone)."""
    lines: list[bytes] = []
    with path.open("rb") as file:
        file.seek(offset)
        position = offset
        while len(lines) < most:
            line = file.readline()
            if not line:
                return lines, position, True
            position += len(line)
            if line.endswith(b"\n"):
                lines.append(line)
        at_end = file.read(1) == b""
    return lines, position, at_end
