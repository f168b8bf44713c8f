"""The events Quiver publishes to webhooks when its declaration changes.

Every revision publishes ``config.revision.applied``; a revision that adds or
removes a consumer publishes ``consumer.created`` or ``consumer.deleted``, and one
that adds or removes a credential ``credential.created`` or ``credential.revoked``
(with the id the admin API lists it under, never the key or its hash).  They are
written in the revision's own transaction: an applied revision always has its
events queued, a failed one has none.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection

from quiver.admin.credentials import credential_id
from quiver.store import Diff, Revision, Store
from quiver.webhooks.queue import publish

REVISION_APPLIED = "config.revision.applied"


def publish_on_revisions(store: Store) -> None:
    """Make every revision of ``store`` publish its events (once per store)."""
    if revision_events not in store.revision_hooks:
        store.revision_hooks.append(revision_events)


def revision_events(connection: Connection, revision: Revision, changes: Diff) -> None:
    now = int(time.time() * 1000)
    team = revision.team
    publish(
        connection,
        REVISION_APPLIED,
        {
            "revision": revision.number,
            "team": team,
            "author": revision.author,
            "message": revision.message,
            "added": len(changes["added"]),
            "changed": len(changes["changed"]),
            "removed": len(changes["removed"]),
        },
        now_ms=now,
    )
    for change in changes["added"]:
        if change["kind"] == "consumer":
            publish(
                connection, "consumer.created", {"team": team, "name": change["name"]}, now_ms=now
            )
    for change in changes["removed"]:
        if change["kind"] == "consumer":
            publish(
                connection, "consumer.deleted", {"team": team, "name": change["name"]}, now_ms=now
            )
    for change in (*changes["added"], *changes["changed"], *changes["removed"]):
        if change["kind"] != "consumer":
            continue
        before = _credentials(change.get("before"))
        after = _credentials(change.get("after"))
        for key in sorted(after.keys() - before.keys()):
            data = {"team": team, "consumer": change["name"], "plugin": key[0], "id": key[1]}
            publish(connection, "credential.created", data, now_ms=now)
        for key in sorted(before.keys() - after.keys()):
            data = {"team": team, "consumer": change["name"], "plugin": key[0], "id": key[1]}
            publish(connection, "credential.revoked", data, now_ms=now)


def _credentials(consumer: Any) -> dict[tuple[str, str], None]:
    if not isinstance(consumer, dict):
        return {}
    return {
        (plugin, credential_id(plugin, item)): None
        for plugin, items in (consumer.get("credentials") or {}).items()
        for item in items
    }
