"""The last declaration a node served from the store, kept on its own disk.

Each time the master hands a new revision to its workers it writes the merged
declaration and its revision number to ``<run dir>/last-good.json`` (atomically,
readable by this user only: a plugin's config may hold a secret).  A node that
starts while its store is unreachable serves that file instead of refusing to
start, and keeps trying the store.  The file names the store it came from, so a
node pointed at another store never serves a declaration of the first.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("quiver.storemode")

FILE_NAME = "last-good.json"


@dataclass(frozen=True)
class LastGood:
    path: Path
    #: the store the declarations come from (quiver.storemode.urls.identity)
    store: str

    def save(self, revision: int, declaration: dict[str, Any]) -> None:
        """Keep ``declaration`` (of ``revision``); a failure is logged, not raised:
        it costs only the fallback, never the reload."""
        temporary = self.path.with_suffix(".tmp")
        data = orjson.dumps({"store": self.store, "revision": revision, "declaration": declaration})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
            fd = os.open(temporary, flags, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
        except OSError as exc:
            log.warning("last good config not kept in %s (%s)", self.path, exc.strerror or exc)

    def load(self) -> tuple[int, dict[str, Any]] | None:
        """The revision and declaration kept, or None (logged when there is a file
        that cannot be used)."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("last good config %s cannot be read (%s)", self.path, exc)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("declaration"), dict):
            log.warning("last good config %s is not one Quiver wrote; ignored", self.path)
            return None
        if data.get("store") != self.store:
            log.warning(
                "last good config %s comes from another store (%s); ignored",
                self.path,
                data.get("store"),
            )
            return None
        return int(data.get("revision", 0)), data["declaration"]
