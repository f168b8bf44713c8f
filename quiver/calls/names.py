"""Names (routes, targets, consumers, nodes, user agents) as small integer ids.

Ids are handed out by the ``call_names`` table and remembered in memory; new
names are written in the batch's own transaction, so a batch that rolls back
takes its names with it (and :meth:`Names.forget` drops what was remembered).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from quiver.store.calltables import CONSUMER, ROUTE, TARGET, call_names
from quiver.store.models import DEFAULT_TEAM

_TEAMED = (ROUTE, TARGET, CONSUMER)


def team_of(name: str) -> str:
    """The team of a name as records write it: ``team.name`` or a default team's."""
    team, dot, _ = name.partition(".")
    return team if dot else DEFAULT_TEAM


class Names:
    def __init__(self) -> None:
        self._ids: dict[tuple[int, str], int] = {}

    def forget(self) -> None:
        self._ids.clear()

    def ids(
        self, connection: Connection, wanted: set[tuple[int, str]]
    ) -> dict[tuple[int, str], int]:
        """The id of each (kind, name) in ``wanted``, adding the new ones."""
        missing = [key for key in wanted if key not in self._ids]
        if missing:
            self._load(connection, missing)
            new = [key for key in missing if key not in self._ids]
            if new:
                connection.execute(
                    call_names.insert(),
                    [
                        {
                            "kind": kind,
                            "name": name,
                            "team": team_of(name) if kind in _TEAMED else None,
                        }
                        for kind, name in new
                    ],
                )
                self._load(connection, new)
        return self._ids

    def _load(self, connection: Connection, keys: list[tuple[int, str]]) -> None:
        for kind in {kind for kind, _ in keys}:
            names = [name for k, name in keys if k == kind]
            for start in range(0, len(names), 500):
                rows = connection.execute(
                    select(call_names.c.id, call_names.c.name).where(
                        call_names.c.kind == kind, call_names.c.name.in_(names[start : start + 500])
                    )
                )
                for row in rows:
                    self._ids[(kind, row.name)] = row.id
