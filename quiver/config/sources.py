"""Where a config comes from: a source loads it and says when it may have changed.

The proxy's reloader works with any :class:`ConfigSource`: it loads a config when
the source calls back, keeps serving the previous one when loading fails, and
applies the declaration of a new one (``Config.declaration``) at once, while its
``Config.settings`` wait for a restart.  :class:`FileSource` is the config file,
reloaded on SIGHUP and, when asked to, when the file changes.

A caller without an event loop (the master process of several workers, which waits
for signals itself) uses the synchronous pair instead of ``watch``: it asks
``changed()`` every ``poll_interval`` seconds and calls ``load()`` when it says so.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Mapping
from typing import Protocol

from quiver.config.loader import load_config
from quiver.config.models import Config
from quiver.config.plugin_set import PluginSet
from quiver.errors import QuiverError

WATCH_INTERVAL = 1.0  # seconds between two looks at a watched file

OnChange = Callable[[], object]


class SourceUnavailable(QuiverError):
    """The source cannot be read just now (its database is down): not a refusal of the
    config.  The source logged why; the caller keeps serving what it has."""


class ConfigSource(Protocol):
    """A place configs come from (a file today; an admin API or a database later)."""

    @property
    def name(self) -> str:
        """What log lines call the source, e.g. the file's path."""

    def load(self) -> Config:
        """The current config; ConfigError names every problem when it is not valid."""

    def watch(self, loop: asyncio.AbstractEventLoop, on_change: OnChange) -> None:
        """Call ``on_change()`` on ``loop`` whenever the config may have changed."""

    def close(self) -> None:
        """Stop watching."""

    @property
    def poll_interval(self) -> float | None:
        """Seconds between two looks at ``changed()`` for a caller without an event
        loop; None when only a signal (SIGHUP) says the config changed."""

    def changed(self) -> bool:
        """Whether the config changed since the last look; never blocks."""


def file_signature(path: str) -> tuple[int, int, int] | None:
    """What tells a changed file: inode, size and mtime (None when it cannot be read)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FileSource:
    """The config file at ``path``; changes are signalled by SIGHUP and, with ``poll``,
    noticed by looking at the file every ``WATCH_INTERVAL`` (size, mtime and inode).

    ``overrides`` are settings given on the command line (``--listen``,
    ``--drain-timeout``): they replace the file's at every load, so a reload neither
    loses them nor takes them for a change of the file.
    """

    def __init__(
        self,
        path: str,
        catalog: PluginSet | None = None,
        *,
        poll: bool = False,
        interval: float = WATCH_INTERVAL,
        overrides: Mapping[str, object] | None = None,
    ) -> None:
        self.path = path
        self.catalog = catalog
        self.overrides = dict(overrides or {})
        self.poll = poll
        self.interval = interval
        self._signature = file_signature(path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._on_change: OnChange | None = None

    @property
    def name(self) -> str:
        return self.path

    @property
    def poll_interval(self) -> float | None:
        return self.interval if self.poll else None

    def load(self) -> Config:
        # the file as it is now: changed() tells only of later changes, so a change
        # loaded on SIGHUP is not loaded again at the next look
        self._signature = file_signature(self.path) or self._signature
        config = load_config(self.path, self.catalog)
        return config.model_copy(update=self.overrides) if self.overrides else config

    def watch(self, loop: asyncio.AbstractEventLoop, on_change: OnChange) -> None:
        self._loop, self._on_change = loop, on_change
        loop.add_signal_handler(signal.SIGHUP, on_change)
        if self.poll:
            self._handle = loop.call_later(self.interval, self._look)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGHUP)
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def changed(self) -> bool:
        """Whether the file changed since the last look (a missing file has not)."""
        signature = file_signature(self.path)
        if signature is None or signature == self._signature:
            return False
        self._signature = signature
        return True

    def _look(self) -> None:
        if self.changed() and self._on_change is not None:
            self._on_change()
        if self._loop is not None:
            self._handle = self._loop.call_later(self.interval, self._look)


def restart_only_changes(old: Config, new: Config) -> list[str]:
    """The settings ``new`` changes, which take effect on restart only."""
    before, after = old.settings, new.settings
    return [
        name for name in type(before).model_fields if getattr(before, name) != getattr(after, name)
    ]
