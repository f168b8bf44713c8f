"""``concurrency-limit``: at most so many requests in flight at once, per route or
any key, exactly across the workers of the node; the others wait in a bounded
queue or are refused."""

from quiver.plugins.concurrency_limit.handler import ConcurrencyLimit

__all__ = ["ConcurrencyLimit"]
