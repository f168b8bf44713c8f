"""``ai-cache``: an exact-match cache of model answers for deterministic requests.

``config`` is the plugin's config; ``keys`` decides which requests are cached and
what identifies them; ``answers`` what may be stored; ``handler`` the phases.
Entries and their stores are those of ``proxy-cache`` (an ``Entry`` with its
rendered head, an LRU bounded in bytes or Redis), kept apart from its own.
"""

from quiver.plugins.ai_cache.handler import AICache

__all__ = ["AICache"]
