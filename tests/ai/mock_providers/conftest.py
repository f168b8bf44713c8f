"""Every SDK client a mock test opened is closed after it (its pooled sockets with it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ai.mock_providers.calls import OPENED


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()
