"""The config store as the source of the master process's configs.

``changed()`` is asked every ``POLL`` seconds and must stay cheap, so it looks at
the store only when something says a revision may have been applied:

- **PostgreSQL**: each apply notifies the ``quiver_revisions`` channel inside its
  transaction (a trigger on the head row; migration 0002).  The source listens on a
  connection of its own and reads what arrived without waiting; on a notification
  it asks the store for its head.  While that connection is down it asks for the
  head once a second instead, and tries to listen again; the first look after
  listening again catches what was applied meanwhile.
- **SQLite**: an apply writes the database's ``-wal`` file (or the file itself).
  The source compares their size, time and inode with the last look and asks for
  the head when one moved, and at every look of the half second after (a commit
  is in the log a moment before readers see it).

``load_signed()`` reads the latest revision and the merged declaration of every
team in one transaction, validates it once and adds the process's settings; the
workers take it from the handoff without validating it again.  A store that cannot
be reached is logged once (and once again when it is back), never per look: the
node serves the revision it has meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from quiver.config import validate
from quiver.config.models import Config, Settings
from quiver.config.plugin_set import PluginSet
from quiver.config.sources import SourceUnavailable
from quiver.errors import StoreError
from quiver.proxy.handoff import Signature
from quiver.store import Store, open_store
from quiver.store.models import REVISIONS_CHANNEL
from quiver.storemode.lastgood import LastGood
from quiver.storemode.urls import (
    is_sqlite,
    resources_database,
    shown,
    sqlite_path,
    with_connect_timeout,
)

log = logging.getLogger("quiver.storemode")

POLL = 0.1  # seconds between two looks at the files or the notifications
FALLBACK_POLL = 1.0  # seconds between two head queries while not listening

#: what a store that cannot be reached raises (its driver's errors come wrapped)
UNREACHABLE: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)
#: what opening a store raises when it cannot be used (a schema newer than the code too)
UNUSABLE: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, StoreError)


def compose(declaration: object, settings: Settings, catalog: PluginSet | None) -> Config:
    """The config a node serves: the store's ``declaration`` (validated: ConfigError
    names every problem) with this process's ``settings``; its resources stored
    beside the store unless it names their ``resources_db``."""
    if (
        isinstance(declaration, dict)
        and declaration.get("resources")
        and not declaration.get("resources_db")
    ):
        declaration = {**declaration, "resources_db": resources_database(settings.store)}
    config = validate(declaration, catalog)
    process = {name: getattr(settings, name) for name in Settings.model_fields}
    return config.model_copy(update=process)


def reason(exc: BaseException) -> str:
    """What went wrong, in one line and without the SQL or the driver's internals."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


class StoreSource:
    """The store at ``url`` as the master's source (quiver.proxy.supervisor.MasterSource).

    ``store`` is the store opened at start, or None when it could not be reached;
    ``revision`` the revision served (from the store or the last good file), ``seen``
    the latest one looked at when it is not that one (it did not compile).
    """

    def __init__(
        self,
        url: str,
        settings: Settings,
        catalog: PluginSet | None,
        last_good: LastGood,
        *,
        store: Store | None,
        revision: int,
        seen: int | None = None,
    ) -> None:
        self.url = with_connect_timeout(url)
        self.shown = shown(url)
        self.settings = settings
        self.catalog = catalog
        self.last_good = last_good
        self.store = store
        self.revision = revision  # served
        self._seen = revision if seen is None else seen  # loaded, valid or not: not again
        #: what was loaded and not yet served, by the signature handed over with it
        self._loaded: dict[str, tuple[int, dict[str, Any]]] = {}
        self._down = store is None
        self._next_try = 0.0
        self._watch: _Watch = (
            _FileWatch(sqlite_path(url)) if is_sqlite(url) else _Listener(self.url)
        )

    @property
    def name(self) -> str:
        return f"store revision {self._seen}"

    @property
    def poll_interval(self) -> float:
        return POLL

    def changed(self) -> bool:
        """Whether the store's head moved past the revision loaded last."""
        now = time.monotonic()
        if self._down or not self._watch.listening():
            # polled: nothing can be heard, or the last look failed and must be retried
            # even if nothing new is heard
            if now < self._next_try:
                return False
            self._next_try = now + FALLBACK_POLL
            if not self._watch.listening():
                self._watch.listen()  # (when it can: a look at the head follows anyway)
        elif not self._watch.heard():
            return False
        head = self._head()
        return head is not None and head != self._seen

    def load_signed(self) -> tuple[Config, str]:
        store = self._store()
        try:
            revision, declaration = store.effective()
        except UNREACHABLE as exc:
            self._unreachable(exc)
            raise SourceUnavailable(reason(exc)) from exc
        self._reachable()
        self._seen = revision
        config = compose(declaration, self.settings, self.catalog)
        signature = f"store revision {revision}"
        self._loaded[signature] = (revision, declaration)
        return config, signature

    def served(self, config: Config, signature: Signature) -> None:
        loaded = self._loaded.get(str(signature))
        if loaded is None:
            return
        revision, declaration = loaded
        # (what was loaded before it will never be served)
        self._loaded = {key: value for key, value in self._loaded.items() if value[0] > revision}
        self.revision = revision
        self.last_good.save(revision, declaration)

    def close(self) -> None:
        self._watch.close()
        if self.store is not None:
            self.store.close()

    def _store(self) -> Store:
        if self.store is None:
            try:
                self.store = open_store(self.url, self.catalog)
            except UNUSABLE as exc:
                self._unreachable(exc)
                raise SourceUnavailable(reason(exc)) from exc
        return self.store

    def _head(self) -> int | None:
        try:
            head = self._store().head()
        except SourceUnavailable:
            return None
        except UNREACHABLE as exc:
            self._unreachable(exc)
            return None
        self._reachable()
        return head

    def _unreachable(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "config store %s unreachable (%s): serving revision %d until it is back",
                self.shown,
                reason(exc),
                self.revision,
            )

    def _reachable(self) -> None:
        if self._down:
            self._down = False
            log.warning("config store %s reachable again", self.shown)


class _Watch:
    """What says a revision may have been applied."""

    def listening(self) -> bool:
        """Whether ``heard()`` can be trusted (else the head is polled)."""
        return False

    def heard(self) -> bool:
        """Whether something happened since the last call; never blocks."""
        return True

    def listen(self) -> None:
        """Try to start listening again."""

    def close(self) -> None:
        pass


class _FileWatch(_Watch):
    """A SQLite database: its file and its write-ahead log, by size, time and inode.

    A commit writes its frames to the log before readers can see it: a look that
    falls in between sees the file moved but the old head.  So for ``SETTLE``
    seconds after the files last moved, every look says something happened."""

    SETTLE = 0.5

    def __init__(self, path: str) -> None:
        self.paths = (path, f"{path}-wal")
        self._last = self._signature()
        self._settled_at = 0.0

    def listening(self) -> bool:
        return True

    def heard(self) -> bool:
        now = time.monotonic()
        signature = self._signature()
        if signature != self._last:
            self._last = signature
            self._settled_at = now + self.SETTLE
            return True
        return now < self._settled_at

    def _signature(self) -> tuple[tuple[int, int, int] | None, ...]:
        found: list[tuple[int, int, int] | None] = []
        for path in self.paths:
            try:
                info = os.stat(path)
            except OSError:
                found.append(None)
            else:
                found.append((info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(found)


class _Listener(_Watch):
    """A PostgreSQL connection of its own, listening on the revisions channel."""

    def __init__(self, url: str) -> None:
        # the driver's connection string (psycopg is the store's PostgreSQL driver)
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection: Any = None  # a psycopg.Connection
        self._lost_logged = False

    def listening(self) -> bool:
        return self._connection is not None

    def listen(self) -> None:
        import psycopg

        try:
            connection = psycopg.connect(self.dsn, autocommit=True)
            connection.execute(f"LISTEN {REVISIONS_CHANNEL}")
        except psycopg.Error:
            return  # (the head query that follows logs the outage)
        self._connection = connection
        if self._lost_logged:
            log.info("listening for the store's revisions again")
            self._lost_logged = False

    def heard(self) -> bool:
        import psycopg
        from psycopg import pq

        connection = self._connection
        if connection is None:
            return True
        try:
            pgconn = connection.pgconn
            pgconn.consume_input()
            if pgconn.status != pq.ConnStatus.OK:
                raise psycopg.OperationalError("connection lost")
            heard = False
            while pgconn.notifies() is not None:
                heard = True
        except psycopg.Error:
            self.close()
            if not self._lost_logged:
                log.warning("lost the store's revision notifications: polling until back")
                self._lost_logged = True
            return True  # (look at the head: the same outage may have hidden one)
        return heard

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
