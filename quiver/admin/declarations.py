"""Where the admin API reads and writes declarations: the store, or a config file.

In store mode every team's declaration is read from and written to the store.  In
file mode (``quiver serve quiver.yaml`` with an admin port) the declaration is the
file's, shown as team ``default``; the file is the source of truth, so every write
is refused (405 ``read-only``).  Tokens and teams live in the store either way.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection

from quiver.admin.problems import ApiProblem
from quiver.config.document import read_document
from quiver.config.loader import validate
from quiver.config.models import Settings
from quiver.config.plugin_set import PluginSet
from quiver.config.sources import file_signature
from quiver.errors import ConfigError
from quiver.store import Current, Diff, Edit, Store
from quiver.store.diffing import diff
from quiver.store.models import DEFAULT_TEAM
from quiver.store.secrets import without_secrets
from quiver.store.teams import team_exists

Mutate = Callable[[Current], object]
#: what is written in an edit's transaction beside the declaration (Store.edit)
Also = Callable[[Connection], None]
_log = logging.getLogger("quiver.admin")


@dataclass(frozen=True)
class FileDeclarations:
    """Serve the declaration of the config file at ``path``, read-only."""

    path: str


class ReadOnly(Exception):
    """The declaration comes from a file: it is changed by editing the file."""

    def __init__(self, path: str) -> None:
        super().__init__(f"config comes from {path}")


class Declarations(Protocol):
    """What the endpoints need of a source of declarations."""

    #: the store holding revisions; None in file mode, where there are none
    @property
    def store(self) -> Store | None: ...

    def has_team(self, team: str) -> bool: ...

    def read(self, team: str) -> Current: ...

    def diff(self, document: object, team: str) -> Diff: ...

    def edit(
        self, team: str, mutate: Mutate, author: str, message: str, *, also: Also | None = None
    ) -> Edit: ...


class StoreDeclarations:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def has_team(self, team: str) -> bool:
        return team_exists(self._store, team)

    def read(self, team: str) -> Current:
        return self._store.state(team)

    def diff(self, document: object, team: str) -> Diff:
        return self._store.diff(document, team)

    def edit(
        self, team: str, mutate: Mutate, author: str, message: str, *, also: Also | None = None
    ) -> Edit:
        return self._store.edit(team, mutate, author, message, also=also)


class FileBackedDeclarations:
    """The file's declaration, read again when the file changes (secrets hashed as
    the store would keep them, so a key in the file is never shown in clear)."""

    def __init__(self, path: str, catalog: PluginSet | None) -> None:
        self.path = os.fspath(path)
        self.catalog = catalog
        self._lock = threading.Lock()
        self._seen: tuple[tuple[int, int, int] | None, dict[str, Any]] | None = None

    @property
    def store(self) -> None:
        return None

    def has_team(self, team: str) -> bool:
        return team == DEFAULT_TEAM

    def read(self, team: str) -> Current:
        return Current(copy.deepcopy(self._document()), 0)

    def diff(self, document: object, team: str) -> Diff:
        before = self._document()
        config = validate(document, self.catalog)
        data = dict(cast(Mapping[str, Any], document))  # validate refused anything else
        return diff(before, without_secrets(data, config, before))

    def edit(
        self, team: str, mutate: Mutate, author: str, message: str, *, also: Also | None = None
    ) -> Edit:
        raise ReadOnly(self.path)

    def _document(self) -> dict[str, Any]:
        signature = file_signature(self.path)
        with self._lock:
            if self._seen is None or signature is None or self._seen[0] != signature:
                try:
                    data = read_document(self.path).data
                    config = validate(data, self.catalog)
                except ConfigError as exc:
                    _log.warning("admin API: %s is not valid now:\n%s", self.path, exc)
                    raise ApiProblem(
                        500,
                        "internal",
                        f"the config file {self.path} is not valid now; "
                        f"`quiver check {self.path}` says why",
                    ) from None
                declared = {k: v for k, v in data.items() if k not in Settings.model_fields}
                self._seen = (signature, without_secrets(declared, config, {}))
            return self._seen[1]


def declarations_for(
    source: FileDeclarations | None, store: Store, catalog: PluginSet | None
) -> Declarations:
    if source is None:
        return StoreDeclarations(store)
    return FileBackedDeclarations(source.path, catalog)
