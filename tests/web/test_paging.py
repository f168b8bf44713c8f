"""Tables paginate: a page of rows, clamped to the pages there are."""

from __future__ import annotations

import pytest

from quiver.web.paging import Page


@pytest.mark.parametrize(
    ("rows", "asked", "items", "number", "pages"),
    [
        (0, 1, [], 1, 1),
        (5, 1, [0, 1, 2, 3, 4], 1, 1),
        (45, 1, list(range(20)), 1, 3),
        (45, 3, list(range(40, 45)), 3, 3),
        (45, 9, list(range(40, 45)), 3, 3),
        (45, 0, list(range(20)), 1, 3),
        (40, 2, list(range(20, 40)), 2, 2),
    ],
)
def test_a_page_holds_its_rows_and_knows_its_neighbours(
    rows: int, asked: int, items: list[int], number: int, pages: int
) -> None:
    page = Page.of(list(range(rows)), asked)
    assert (list(page.items), page.number, page.pages, page.total) == (items, number, pages, rows)
    assert page.has_previous == (number > 1) and page.has_next == (number < pages)
