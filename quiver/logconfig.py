"""How ``quiver`` processes log: one line per record on stderr, tagged with the process.

Every line names the process that wrote it, so the lines of a master and its
workers sharing one stderr can be told apart::

    2026-01-05 10:00:00,123 INFO [4711] quiver.supervisor: worker 4712 started
    2026-01-05 10:00:00,456 INFO [4712 worker 0] quiver.worker: stopping: ...
    2026-01-05 10:00:00,789 INFO [4714 admin] quiver.admin: admin API listening on ...

A worker forked by the supervisor calls :func:`tag_worker` with its index (a
replacement takes the index of the worker it replaces).
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s [%(process)d{worker}] %(name)s: %(message)s"


def log_format(worker: int | None = None, *, label: str | None = None) -> str:
    """The format of every log line; ``worker`` is the worker index, if any, and
    ``label`` names another child process (``admin``)."""
    if label is not None:
        return _FORMAT.format(worker=f" {label}")
    return _FORMAT.format(worker="" if worker is None else f" worker {worker}")


def configure_logging(*, verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG when ``verbose``) in :func:`log_format`."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=log_format(),
        stream=sys.stderr,
    )
    if not verbose:  # (the store's migrations: Alembic tells of every step at INFO)
        logging.getLogger("alembic").setLevel(logging.WARNING)


def tag_worker(index: int) -> None:
    """Name worker ``index`` in the lines this process logs from now on."""
    _tag(log_format(index))


def tag_process(label: str) -> None:
    """Name this child process ``label`` in the lines it logs from now on."""
    _tag(log_format(label=label))


def _tag(line_format: str) -> None:
    formatter = logging.Formatter(line_format)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
