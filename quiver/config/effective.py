"""Settings a target inherits from the global section.

A target's ``timeouts`` or ``pool`` mapping overrides only the keys it writes;
every other key keeps the global value, so ``timeouts: {read: 5m}`` on one slow
target does not reset its connect timeout to the built-in default.
"""

from __future__ import annotations

from typing import TypeVar

from quiver.config.base import Strict
from quiver.config.models import Config, Pool, Target, Timeouts

_Section = TypeVar("_Section", bound=Strict)


def effective_timeouts(config: Config, target: Target) -> Timeouts:
    """The upstream timeouts that apply to ``target``."""
    return _overlay(config.timeouts, target.timeouts)


def effective_pool(config: Config, target: Target) -> Pool:
    """The connection pool settings that apply to ``target``."""
    return _overlay(config.pool, target.pool)


def _overlay(base: _Section, override: _Section | None) -> _Section:
    if override is None or not override.model_fields_set:
        return base
    explicit = {name: getattr(override, name) for name in override.model_fields_set}
    return base.model_copy(update=explicit)
