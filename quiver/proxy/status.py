"""What each worker knows about its targets' nodes, for ``quiver status``.

Every worker writes a small JSON document about its nodes (health, circuit state,
requests in flight, pooled connections) to ``<run dir>/worker-<pid>.json`` once a
second, replacing the file atomically, and removes it when it stops.  ``quiver
status`` reads the documents of the workers still alive and shows them together.
The document also tells how long the worker's event loop stalled
(:mod:`quiver.proxy.lag`): ``loop.stall_ms`` since the last write and
``loop.longest_stall_ms`` since the worker started.  The run directory is
``--run-dir``, else ``$QUIVER_RUN_DIR``, else a directory named after the first
listen address under the system's temporary directory.

A worker of a master process also writes its metrics document there in the same
turn (``metrics-<pid>.json``, :mod:`quiver.observe.node_metrics`): its counters and
its view of the nodes, for the admin API's ``GET /metrics``.

The documents are made on the event loop (they read its state) but written to
their files by a thread started for that write alone: opening, writing and
renaming a file may wait on the file system for milliseconds, which would hold
every connection of the worker meanwhile.  The thread ends with its write: while
a process has a single thread, the kernel skips the reference counting that a
shared file table needs on every read and write of a socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from quiver.observe.node_metrics import encode_document, replace_file, worker_path, write_document
from quiver.proxy.lag import LoopLag
from quiver.proxy.server import ProxyState
from quiver.system import process_alive

log = logging.getLogger("quiver.status")

INTERVAL = 1.0


#: the environment variable naming the run directory when neither --run-dir nor
#: run_dir does
RUN_DIR_ENV = "QUIVER_RUN_DIR"


def default_run_dir(address: str) -> Path:
    override = os.environ.get(RUN_DIR_ENV)
    if override:
        return Path(override)
    name = address.replace("[", "").replace("]", "").replace(":", "_")
    return Path(tempfile.gettempdir()) / f"quiver-{os.getuid()}" / name


def worker_status(state: ProxyState, lag: LoopLag | None = None) -> dict[str, Any]:
    now = state.loop.time()
    targets = {}
    for name, target in state.snapshot.targets.items():
        nodes = []
        for node in target.nodes:
            pool = node.pool
            entry: dict[str, Any] = {
                "url": node.url,
                "weight": node.weight,
                "up": node.up,
                "in_flight": node.in_flight,
                "pool": {"open": pool.open, "idle": len(pool.idle)} if pool else None,
                "health": node.health.snapshot(now) if node.health is not None else None,
            }
            nodes.append(entry)
        targets[name] = {"nodes": nodes}
    document = {"pid": os.getpid(), "written_at": time.time(), "targets": targets}
    if lag is not None:
        document["loop"] = lag.document()
    if state.record_writer is not None:  # a section per output: access_log, call_log
        document.update(state.record_writer.status())
    return document


def worker_metrics(state: ProxyState) -> dict[str, Any]:
    """The worker's metrics document: counters since it started, gauges of now."""
    counters = state.metrics.snapshot() if state.metrics is not None else {}
    writer = state.record_writer
    if writer is not None:  # what each output lost: the full queue's drops, its failures
        counters["dropped"] = {
            name: writer.dropped + failed for name, failed in writer.failed.items()
        }
    now = state.loop.time()
    targets = {}
    for name, target in state.snapshot.targets.items():
        nodes = []
        for node in target.nodes:
            pool = node.pool
            health = node.health
            breaker = health.breaker if health is not None else None
            nodes.append(
                {
                    "node": node.label,
                    "up": node.up,
                    "breaker": breaker.snapshot(now)["state"] if breaker is not None else None,
                    "in_flight": node.in_flight,
                    "open": pool.open if pool else 0,
                    "idle": len(pool.idle) if pool else 0,
                }
            )
        targets[name] = nodes
    return {
        "pid": os.getpid(),
        "counters": counters,
        "targets": targets,
        "websockets": open_websockets(state),
    }


def open_websockets(state: ProxyState) -> dict[str, int]:
    """The WebSocket connections open now, by route (counted as they open and
    close: walking ten thousand of them once a second would stall the loop)."""
    return dict(state.websockets)


class StatusWriter:
    """Writes the status document once a second, and with ``metrics`` the metrics
    document too (a worker of a master process)."""

    def __init__(
        self,
        state: ProxyState,
        run_dir: Path,
        lag: LoopLag | None = None,
        *,
        metrics: bool = False,
    ) -> None:
        self.state = state
        self.lag = lag
        self.path = run_dir / f"worker-{os.getpid()}.json"
        self.metrics_path = worker_path(run_dir, os.getpid()) if metrics else None
        self._handle: asyncio.TimerHandle | None = None
        self._writing: threading.Thread | None = None

    def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("status not written: cannot create %s: %s", self.path.parent, exc)
            return
        self._write()

    def stop(self) -> None:
        """Stop writing: the last write finishes, then the status document goes."""
        if self._handle is not None:
            self._handle.cancel()
        if self._writing is not None:
            self._writing.join()
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        status = encode_document(worker_status(self.state, self.lag))
        metrics = None
        if self.metrics_path is not None:
            metrics = encode_document(worker_metrics(self.state))
        writing = self._writing
        # a file system slower than a second: this turn's documents are skipped (the
        # next turn's are newer), never queued behind the write still going on
        if writing is None or not writing.is_alive():
            self._writing = writing = threading.Thread(
                target=self._store, args=(status, metrics), name="quiver-status", daemon=True
            )
            writing.start()
        self._handle = self.state.loop.call_later(INTERVAL, self._write)

    def _store(self, status: bytes, metrics: bytes | None) -> None:
        """(In the writing thread.)"""
        replace_file(self.path, status, "status")
        if metrics is not None and self.metrics_path is not None:
            replace_file(self.metrics_path, metrics, "metrics")

    def write_metrics(self) -> None:
        """Write the metrics document (once more after the worker stopped serving: its
        last counts; the master deletes it once it took them)."""
        if self.metrics_path is not None:
            write_document(self.metrics_path, worker_metrics(self.state))


def read_status(run_dir: Path) -> list[dict[str, Any]]:
    """The documents of the live workers in ``run_dir``, oldest process first."""
    workers = []
    for path in sorted(run_dir.glob("worker-*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if process_alive(int(document.get("pid", 0))):
            workers.append(document)
    return workers


def render(workers: list[dict[str, Any]]) -> str:
    """One row per target and node, summed over the workers."""
    rows = [("TARGET", "NODE", "UP", "IN FLIGHT", "OPEN", "IDLE", "BREAKER", "HEALTH")]
    merged: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for worker in workers:
        for target, info in worker["targets"].items():
            for position, node in enumerate(info["nodes"]):
                merged.setdefault((target, position, node["url"]), []).append(node)
    for (target, _, url), views in merged.items():
        up = sum(1 for view in views if view["up"])
        pools = [view["pool"] or {} for view in views]
        healths = [view["health"] for view in views if view["health"]]
        breakers = {h["breaker"]["state"] for h in healths if h.get("breaker")}
        rows.append(
            (
                target,
                url,
                f"{up}/{len(views)}",
                str(sum(view["in_flight"] for view in views)),
                str(sum(pool.get("open", 0) for pool in pools)),
                str(sum(pool.get("idle", 0) for pool in pools)),
                ",".join(sorted(breakers)) or "-",
                _health_words(healths),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    header = f"{len(workers)} worker(s)"
    for output, shown, done in (
        ("access_log", "access log", "written"),
        ("call_log", "call log", "written"),
        ("tracing", "spans", "exported"),  # (each worker exports its own)
    ):
        logs = [worker[output] for worker in workers if worker.get(output)]
        if logs:  # summed over the workers
            header += ", {}: {} {}, {} dropped, {} failed".format(
                shown,
                sum(log.get(done, 0) for log in logs),
                done,
                *(sum(log.get(key, 0) for log in logs) for key in ("dropped", "failed")),
            )
    return "\n".join([header, *(line.rstrip() for line in lines)])


def _health_words(healths: list[dict[str, Any]]) -> str:
    words = set()
    for health in healths:
        passive = health.get("passive")
        active = health.get("active")
        if passive and passive.get("ejected"):
            words.add(f"ejected ({passive.get('reason') or 'failures'})")
        if active is not None:
            words.add("probe ok" if active.get("healthy") else "probe failing")
    return ", ".join(sorted(words)) or "-"
