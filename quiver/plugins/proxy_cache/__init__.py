"""``proxy-cache``: an RFC 9111 shared cache in front of a route's target.

``handler`` holds the plugin's phases; ``freshness`` and ``directives`` the rules
of RFC 9111; ``keys`` what identifies a stored response; ``stores`` the backends
(``memory``, ``redis``); ``coalesce`` one fetch per key; ``purge`` the purge
requests of ``quiver cache purge``.
"""

from quiver.plugins.proxy_cache.handler import ProxyCache

__all__ = ["ProxyCache"]
