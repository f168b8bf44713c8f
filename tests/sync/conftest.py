"""The variable the sources files of these tests name for their token."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def shop_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "secret")
