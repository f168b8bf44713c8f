"""Request routing: route patterns compiled once per config into a lookup table.

``normalize_path`` canonicalizes a request path; ``Router.match`` finds the route
for a request and the path to forward upstream.  Pattern syntax is described in
``quiver.proxy.routing.patterns``.

Precedence, when several routes accept a request (``Router.table`` lists routes
in this order; each path/host combination of a route is ranked on its own):

1. higher ``priority``;
2. host: an exact host, then a ``*.`` wildcard (the longer suffix first), then
   a route without hosts;
3. path: exact (``=``) paths first; then the others by the number of literal
   characters in the pattern, more first; on a tie a template wins over a regex,
   which wins over a plain prefix;
4. more conditions: a route restricted by methods and/or headers (counted one
   for methods plus one per header) before a less restricted one;
5. config order.

How a lookup works: the host picks at most three tables (exact host, each
wildcard suffix of the host, hostless).  In each, an exact path is one dict
lookup; prefixes and templates share a segment trie walked once along the
request's segments; regexes are tried in rank order.  Every candidate carries
its precomputed rank, so choosing is an integer comparison, and a candidate is
skipped without checking its methods or headers once a better one is found.
"""

from quiver.proxy.routing.matcher import RouteMatch, Router
from quiver.proxy.routing.normalize import normalize_path

__all__ = ["RouteMatch", "Router", "normalize_path"]
