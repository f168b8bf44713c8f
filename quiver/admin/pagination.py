"""Cursor pagination over lists kept in order.

A cursor names the last item a page held and that item's position, so the next
page starts right after that item wherever it now is: items added or removed
before it shift no item into two pages or out of all of them.  Only when the
item itself is gone does the next page start at its old position.  Cursors are
opaque to clients (base64url of a small JSON object) and a cursor this API did
not give out is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query

from quiver.admin.problems import ApiProblem

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000, description="Most items in the page (1..1000).")]
Cursor = Annotated[
    str | None, Query(description="The `next` of the previous page; omit for the first page.")
]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None


def paginate(
    items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None
) -> Page[T]:
    """The page of ``items`` (already filtered and in order) after ``cursor``."""
    start = 0
    if cursor is not None:
        after, position = _decode(cursor)
        keys = [key(item) for item in items]
        start = keys.index(after) + 1 if after in keys else min(position, len(items))
    chosen = list(items[start : start + limit])
    end = start + len(chosen)
    following = None
    if chosen and end < len(items):
        following = _encode(key(chosen[-1]), end)
    return Page(chosen, following)


def _encode(after: str, position: int) -> str:
    raw = json.dumps({"a": after, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        data = None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("a"), str)
        or type(data.get("p")) is not int
        or data["p"] < 0
    ):
        raise ApiProblem(
            400,
            "invalid-request",
            "the cursor is not one this API gave out: pass the `next` of a previous page",
        )
    return data["a"], data["p"]
