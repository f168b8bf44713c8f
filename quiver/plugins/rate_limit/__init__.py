"""``rate-limit``: at most so many requests per window, exactly, per consumer or any key."""

from quiver.plugins.rate_limit.handler import RateLimit

__all__ = ["RateLimit"]
