"""One page of a table's rows, for the ``pagination`` macro of ``macros.html``.

rows = Page.of(teams, number=page, size=20)   # ?page=N, clamped to the pages there are
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
PAGE_SIZE = 20


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int  # from 1
    pages: int  # at least 1, even with no rows
    total: int

    @classmethod
    def of(cls, rows: Sequence[T], number: int, size: int = PAGE_SIZE) -> Page[T]:
        pages = max(1, -(-len(rows) // size))
        number = min(max(number, 1), pages)
        start = (number - 1) * size
        return cls(rows[start : start + size], number, pages, len(rows))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages
