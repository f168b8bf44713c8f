"""Fixtures of the AI tests: the mock model providers, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ai.mock_providers import MockProviders


@pytest.fixture(scope="session")
def mock_providers() -> Iterator[MockProviders]:
    """Every provider type's mock on one local server (see tests/ai/mock_providers)."""
    with MockProviders() as mocks:
        yield mocks
