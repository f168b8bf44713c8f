"""The declarative config: models, loading and validation.

The names below are loaded on first use: a module of the package that needs none of
the gateway's models (:mod:`quiver.config.document`, read by ``quiver sync``) does not
pay for importing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quiver.lazy import loaded_on_use

if TYPE_CHECKING:
    from quiver.config.effective import effective_pool, effective_timeouts
    from quiver.config.loader import load_config, load_config_text, validate

__all__ = ["effective_pool", "effective_timeouts", "load_config", "load_config_text", "validate"]

__getattr__ = loaded_on_use(
    __name__,
    {
        "effective_pool": "quiver.config.effective",
        "effective_timeouts": "quiver.config.effective",
        "load_config": "quiver.config.loader",
        "load_config_text": "quiver.config.loader",
        "validate": "quiver.config.loader",
    },
)
