"""The call spool: one of a worker's record outputs, the writing side of the spool
protocol (its whole description is quiver.calls.spool, the reading side).

Every record, unsampled, as the access log's JSON line of every field (the calls
of routes that keep bodies carry them in ``capture``, calls to a model what they
used in ``ai``, MCP messages what they were and how they ended in ``mcp``),
appended to
``<calls dir>/<pid>-<n>.jsonl`` (``O_APPEND``, one ``write`` per batch of whole
lines).  The file is renamed to ``.jsonl.done`` and the next number begun at
``max_size``, every second (``FINISH_EVERY``) when it holds any line, and on
close.  The rename is what tells the ingester (in the admin sidecar, which looks
every second) that a file is finished: calls reach the store within about two
seconds, on a busy gateway or a quiet one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson

from quiver.observe.capture import document
from quiver.observe.mcp_note import mcp_document
from quiver.observe.outputs import Batch
from quiver.observe.record import ExchangeRecord
from quiver.observe.spend import spend_document

#: a spool's name: its writer's pid, its number, and ``.done`` once finished
SPOOL_NAME = re.compile(r"^(?P<pid>\d+)-(?P<n>\d+)\.jsonl(?P<done>\.done)?$")
FINISH_EVERY = 1.0  # seconds: how often a file holding lines is handed over


class CallSpool:
    """The spools of this worker in ``directory``; ``pid`` names them (this
    process's by default)."""

    name = "call_log"
    interval = FINISH_EVERY  # (a periodic output: see tick)

    def __init__(self, directory: Path, *, max_size: int, pid: int | None = None) -> None:
        self.directory = directory
        self.max_size = max_size
        self.pid = pid if pid is not None else os.getpid()
        self.number = 0
        self.fd = -1
        self.size = 0
        self.written = 0
        self.finished = 0  # files renamed to .done

    def open(self) -> None:
        """Begin the first file, numbered after any of this pid's already there (a
        dead process's, whose pid this one got: never touched, see quiver.calls.spool)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for entry in os.scandir(self.directory):
            match = SPOOL_NAME.match(entry.name)
            if match is not None and int(match["pid"]) == self.pid:
                self.number = max(self.number, int(match["n"]))
        self._begin()

    def write(self, batch: Batch) -> None:
        if self.fd < 0:  # (the last file could not be begun: try again)
            self._begin()
        lines = batch.full_lines()
        if any(
            record.capture is not None
            or record.ai is not None
            or record.mcp is not None
            or record.websocket is not None
            for record in batch
        ):
            lines = [_with_extras(line, r) for line, r in zip(lines, batch, strict=True)]
        data = b"".join(lines)
        view = memoryview(data)
        while view:  # (a regular file takes it whole unless the disk is full)
            view = view[os.write(self.fd, view) :]
        self.size += len(data)
        self.written += len(batch)
        if self.size >= self.max_size:
            self._finish()
            self._begin()

    def tick(self) -> None:
        """Hand the file over if it holds any line."""
        if self.fd >= 0 and self.size > 0:
            self._finish()
            self._begin()

    def reopen(self) -> None:
        pass  # (nobody moves spools but their writer)

    def close(self) -> None:
        if self.fd >= 0:
            self._finish()

    def status(self) -> dict[str, Any]:
        return {"dir": str(self.directory), "written": self.written, "files": self.finished}

    def _path(self) -> Path:
        return self.directory / f"{self.pid}-{self.number}.jsonl"

    def _begin(self) -> None:
        self.number += 1
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self.fd = os.open(self._path(), flags, 0o600)  # (paths, addresses, maybe bodies)
        self.size = 0

    def _finish(self) -> None:
        """Close the current file and hand it to the reader (an empty one is just
        removed)."""
        os.close(self.fd)
        self.fd = -1
        path = self._path()
        if self.size == 0:
            path.unlink(missing_ok=True)
            return
        path.rename(path.with_name(path.name + ".done"))
        self.finished += 1


def _with_extras(line: bytes, record: ExchangeRecord) -> bytes:
    """The line with what the route keeps beyond the call (``"capture": {...}``) and
    what a call to a model used (``"ai": {...}``) and what an MCP message was
    (``"mcp": {...}``) and what went through an upgrade's tunnel (``"websocket"``)."""
    extras = b""
    if record.capture is not None:
        extras += b',"capture":' + orjson.dumps(document(record.capture))
    if record.ai is not None:
        extras += b',"ai":' + orjson.dumps(spend_document(record.ai))
    if record.mcp is not None:
        extras += b',"mcp":' + orjson.dumps(mcp_document(record.mcp))
    if record.websocket is not None:
        extras += b',"websocket":' + orjson.dumps(record.websocket)
    if not extras:
        return line
    return line[:-2] + extras + b"}\n"
