"""What every write shares: one revision per write, ETags and preconditions checked
inside the write's transaction, and errors mapped to problem documents.

A write reads the team document, changes it and applies it in one store
transaction (:meth:`Store.edit`), holding the lock every apply takes; the
``If-Match`` check runs inside it, so two clients that read the same ETag cannot
both replace the entity (RFC 9110 §13.1.1): the second gets 412.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from quiver.admin.auth import Access
from quiver.admin.declarations import Also, ReadOnly
from quiver.admin.issues import Within, invalid_config
from quiver.admin.problems import ApiProblem
from quiver.errors import ConfigError
from quiver.store import Current, Edit, UnknownTeam


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def etag(document: object) -> str:
    """A strong ETag: the first 32 hex digits of the SHA-256 of the canonical JSON."""
    return '"' + hashlib.sha256(canonical(document)).hexdigest()[:32] + '"'


def check_preconditions(
    current: object | None, if_match: str | None, if_none_match: str | None = None
) -> None:
    """RFC 9110 §13.1.1-2 on the entity as it is inside the write transaction."""
    if if_match is not None:
        tags = [tag.strip() for tag in if_match.split(",")]
        if current is None:
            raise _failed("If-Match was given but the entity does not exist")
        if "*" not in tags and etag(current) not in tags:
            raise _failed("the entity changed since the ETag given in If-Match")
    if if_none_match is not None and current is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        if "*" in tags or etag(current) in tags:
            raise _failed("the entity exists (If-None-Match)")


def _failed(detail: str) -> ApiProblem:
    return ApiProblem(412, "precondition-failed", detail)


def find(document: dict[str, Any], key: str, name: str) -> tuple[int, dict[str, Any]] | None:
    for index, item in enumerate(document.get(key) or []):
        if isinstance(item, dict) and item.get("name") == name:
            return index, item
    return None


def commit(
    access: Access,
    mutate: Callable[[Current], object],
    message: str,
    sent: Sequence[Within] = (),
    *,
    conflict: bool = False,
    team: str | None = None,
    also: Also | None = None,
) -> Edit:
    """Run ``mutate`` as one edit of the caller's team (or of ``team``), attributed
    to its token, with what ``also`` writes in the same transaction.

    An invalid result is 422 ``invalid-config`` with pointers into the body
    (``sent`` says where the body went), or 409 ``conflict`` when ``conflict``
    (a delete that leaves a reference dangling)."""
    team = team or access.team
    try:
        return access.declarations.edit(team, mutate, access.author, message, also=also)
    except ReadOnly as exc:
        raise ApiProblem(405, "read-only", str(exc), headers={"Allow": "GET"}) from None
    except UnknownTeam:
        raise ApiProblem(404, "team-not-found", f"there is no team {team!r}") from None
    except ConfigError as exc:
        if conflict:
            raise invalid_config(exc, sent, status=409, slug="conflict") from None
        raise invalid_config(exc, sent) from None


def not_found(kind: str, name: str, team: str) -> ApiProblem:
    return ApiProblem(404, "not-found", f"there is no {kind} {name!r} in team {team!r}")


def message_for(given: str | None, method: str, path: str) -> str:
    return given if given else f"{method} {path}"
