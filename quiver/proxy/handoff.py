"""The config the master process validated, handed to its workers for a reload.

Loading a large config file is mostly parsing and checking it (seconds for thousands
of routes); the master of several workers has done both before it passes a reload
on.  It writes the validated :class:`Config` to ``<run dir>/config-<master pid>.pickle``
together with the signature of the file it was read from, and each worker's
:class:`HandoffSource` takes it from there instead of loading the file again, in a
fraction of the time.  A worker reads the handoff only when the file still has that
signature (else it loads the file itself), and only when the handoff belongs to its
own user and nobody else may write it: unpickling runs code, so a file planted by
someone else is never read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import stat
from collections.abc import Hashable, Mapping
from pathlib import Path

from quiver.config.models import Config
from quiver.config.plugin_set import PluginSet
from quiver.config.sources import FileSource, OnChange, file_signature
from quiver.errors import ConfigError, ConfigIssue

log = logging.getLogger("quiver.reload")

#: what the handed-off config was read from: a file's (inode, size, mtime), or a
#: label such as ``"store revision 12"`` for a source only the master reads
Signature = Hashable


def handoff_path(run_dir: Path, instance: int) -> Path:
    """Where the master process ``instance`` leaves the validated config."""
    return run_dir / f"config-{instance}.pickle"


def write_handoff(path: Path, config: Config, signature: Signature | None) -> None:
    """Leave ``config``, read from a file with ``signature``, at ``path`` (atomically,
    readable by this user only).  A failure is logged: workers then load the file."""
    temporary = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps((signature, config), protocol=pickle.HIGHEST_PROTOCOL)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        temporary.replace(path)
    except (OSError, pickle.PicklingError) as exc:
        log.warning("validated config not handed to the workers (%s): they load the file", exc)


def read_handoff(path: Path, signature: Signature | None) -> Config | None:
    """The config at ``path`` if it was read from a file with ``signature``; None when
    there is none, it is for another version of the file, or it is not safe to read."""
    if signature is None:
        return None
    found = read_any_handoff(path)
    if found is None or found[0] != signature:
        return None
    return found[1]


def read_any_handoff(path: Path) -> tuple[Signature, Config] | None:
    """The config at ``path`` with the signature it was written with, whatever it is;
    None when there is none or it is not safe to read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            log.warning("%s ignored: not owned by this user, or writable by others", path)
            return None
        data = file.read()
    try:
        written_for, config = pickle.loads(data)
    except Exception:  # (a file cut short, or from another version of Quiver)
        log.warning("%s ignored: cannot be read", path, exc_info=True)
        return None
    if not isinstance(config, Config):
        return None
    return written_for, config


def remove_handoff(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.with_suffix(".tmp").unlink(missing_ok=True)


class HandoffSource(FileSource):
    """The config file of a worker of several: on load, the config the master process
    validated when it is that of the file as it is now, else the file itself."""

    def __init__(
        self,
        path: str,
        handoff: Path,
        catalog: PluginSet | None = None,
        *,
        overrides: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(path, catalog, overrides=overrides)
        self.handoff = handoff

    def load(self) -> Config:
        signature = file_signature(self.path)
        config = read_handoff(self.handoff, signature)
        if config is None:
            return super().load()
        self._signature = signature or self._signature
        return config


class HandedOffSource:
    """The config of a worker whose master reads a source the workers do not (the
    config store): on SIGHUP, the config the master validated and left in the
    handoff, whatever it was read from.  There is nothing to fall back to: a handoff
    that cannot be read is refused, and the worker serves on what it has."""

    def __init__(self, handoff: Path) -> None:
        self.handoff = handoff
        self._name = "the master process"
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def poll_interval(self) -> float | None:
        return None

    def load(self) -> Config:
        found = read_any_handoff(self.handoff)
        if found is None:
            issue = ConfigIssue("", "no config handed over by the master process")
            raise ConfigError([issue])
        signature, config = found
        self._name = str(signature)
        return config

    def watch(self, loop: asyncio.AbstractEventLoop, on_change: OnChange) -> None:
        self._loop = loop
        loop.add_signal_handler(signal.SIGHUP, on_change)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGHUP)

    def changed(self) -> bool:
        return False
