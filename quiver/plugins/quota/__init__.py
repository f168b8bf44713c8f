"""``quota``: at most so many requests per day, week, month or rolling period, per
consumer or any key, kept across restarts."""

from quiver.plugins.quota.handler import Quota

__all__ = ["Quota"]
