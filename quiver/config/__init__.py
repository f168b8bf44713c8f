"""The declarative config: models, loading and validation."""

from quiver.config.effective import effective_pool, effective_timeouts
from quiver.config.loader import load_config, load_config_text, validate

__all__ = ["effective_pool", "effective_timeouts", "load_config", "load_config_text", "validate"]
