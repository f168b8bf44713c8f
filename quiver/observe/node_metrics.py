"""The metrics of a node, in its run directory: what each worker counted, and what
the master process keeps of the workers that ended.

- ``metrics-<pid>.json``, by each worker of a master process: its counters since it
  started (:mod:`quiver.observe.metrics`, and the records its log queue dropped) and
  its gauges (its view of every node: up, breaker state, requests in flight, pooled
  connections).  Written once a second, replacing the file atomically, and once more
  when the worker stops, after its last records were counted.
- ``metrics-master.json``, by the master process: the counters of the workers that
  ended, added up (``retired``), the pids whose counters those hold (``folded``), the
  workers it started again, the configs it handed to the workers and the store
  revision it serves.

Counters must never go backwards while the node runs, whatever ends a worker: when
the master reaps one, it adds the worker's last counters to ``retired`` and writes
its own document listing the pid as folded, and only then deletes the worker's file.
A reader (:func:`read_node`) reads the workers' files first and the master's last,
and leaves out the files of folded pids: a file it found is either not folded yet,
or folded in the master document it reads after; a file it did not find was deleted
after the master document listing it was written.  What a worker killed outright
counted after its last write (within a second) is lost.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from quiver.observe.metrics import Snapshot, add
from quiver.system import process_alive

log = logging.getLogger("quiver.metrics")

MASTER_FILE = "metrics-master.json"


def worker_path(run_dir: Path, pid: int) -> Path:
    return run_dir / f"metrics-{pid}.json"


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` atomically (a reader sees the old or the new)."""
    replace_file(path, encode_document(document), "metrics")


def encode_document(document: dict[str, Any]) -> bytes:
    """``document`` as the JSON the run directory's files hold."""
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)


def replace_file(path: Path, data: bytes, what: str) -> None:
    """Replace ``path`` with ``data`` atomically; a failure is logged, naming ``what``."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError as exc:
        log.warning("%s not written to %s: %s", what, path, exc)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):  # gone (folded) or not ours
        return None
    return document if isinstance(document, dict) else None


def _worker_pids(run_dir: Path) -> list[int]:
    pids = []
    for path in run_dir.glob("metrics-*.json"):
        number = path.name[len("metrics-") : -len(".json")]
        if number.isdigit():
            pids.append(int(number))
    return sorted(pids)


@dataclass
class MasterMetrics:
    """What the master process of ``run_dir`` keeps: call :meth:`begin` before the
    workers start, :meth:`worker_ended` when one is reaped, :meth:`end` at the end."""

    run_dir: Path
    retired: Snapshot = field(default_factory=dict)
    folded: list[int] = field(default_factory=list)
    restarts: int = 0
    reloads: int = 0
    revision: int | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / MASTER_FILE

    def begin(self, revision: int | None) -> None:
        """Start from zero: the files a node that ended left behind are removed (the
        run directory is made when it is new)."""
        self.revision = revision
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("metrics not written: cannot create %s: %s", self.run_dir, exc)
        for pid in _worker_pids(self.run_dir):
            if not process_alive(pid):
                worker_path(self.run_dir, pid).unlink(missing_ok=True)
        self._write()

    def worker_ended(self, pid: int, *, restarted: bool) -> None:
        """Keep the last counters of the worker ``pid`` (counting its restart)."""
        path = worker_path(self.run_dir, pid)
        document = _read(path)
        if document is not None:
            add(self.retired, document.get("counters") or {})
            self.folded.append(pid)
        self.restarts += restarted
        self._write()
        path.unlink(missing_ok=True)

    def reloaded(self) -> None:
        """A config was handed to the workers."""
        self.reloads += 1
        self._write()

    def served(self, revision: int | None) -> None:
        """The node serves the store's ``revision`` (None: a config file)."""
        self.revision = revision
        self._write()

    def end(self, pids: list[int]) -> None:
        """The node stops: its metrics with it (the workers ``pids`` included)."""
        for pid in pids:
            worker_path(self.run_dir, pid).unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        # a folded pid is listed while its file is there (a reader must leave it out)
        self.folded = [pid for pid in self.folded if worker_path(self.run_dir, pid).exists()]
        write_document(
            self.path,
            {
                "pid": os.getpid(),
                "retired": self.retired,
                "folded": self.folded,
                "worker_restarts": self.restarts,
                "reloads": self.reloads,
                "revision": self.revision,
            },
        )


@dataclass(frozen=True)
class NodeMetrics:
    """The metrics of a node as a reader finds them."""

    #: every worker's counters since the node started, added up (the ended ones too)
    counters: Snapshot
    #: the documents of the workers running now (their gauges are under ``targets``)
    workers: list[dict[str, Any]]
    worker_restarts: int
    reloads: int
    revision: int | None


def read_node(run_dir: Path) -> NodeMetrics:
    """The node's metrics: the workers' files first, the master's last (see above)."""
    documents = [_read(worker_path(run_dir, pid)) for pid in _worker_pids(run_dir)]
    master = _read(run_dir / MASTER_FILE) or {}
    folded = set(master.get("folded") or ())
    counters: Snapshot = add({}, master.get("retired") or {})
    workers = []
    for document in documents:
        if document is None or document.get("pid") in folded:
            continue
        add(counters, document.get("counters") or {})
        if process_alive(int(document.get("pid", 0))):
            workers.append(document)
    return NodeMetrics(
        counters,
        workers,
        int(master.get("worker_restarts") or 0),
        int(master.get("reloads") or 0),
        master.get("revision"),
    )
