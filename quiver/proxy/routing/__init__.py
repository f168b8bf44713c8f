"""Request routing: route patterns compiled once per config into a lookup table.

``normalize_path`` canonicalizes a request path; ``Router.match`` finds the route
for a request and the path to forward upstream.  Pattern syntax is described in
``quiver.proxy.routing.patterns``.

Precedence, when several routes accept a request (``Router.table`` lists routes
in this order; each path/host combination of a route is ranked on its own):

1. higher ``priority``;
2. host: an exact host, then a ``*.`` wildcard (the longer suffix first), then
   a route without hosts (a host of ``"*"`` counts as none);
3. path: exact (``=``) paths first; then the others by the number of literal
   characters in the pattern, more first (``{name}`` and regex syntax count
   nothing); on a tie a template wins over a regex, which wins over a prefix;
4. more conditions first: one for ``methods``, one per header in ``headers``;
5. config order (then path order and host order within a route).

A route whose methods or headers do not accept the request is skipped and the
next in this order gets its chance.

How a lookup works: the host selects at most one table per host key (the exact
name, each ``.suffix`` for wildcards) plus the hostless one.  In each, an exact
path is one dict lookup; prefixes, templates and regexes live in a segment trie
walked once along the request's segments (a regex hangs under the literal
segments it must start with, so most are never tried).  Every candidate carries
its precomputed rank, so choosing is an integer comparison, and a candidate
that cannot beat the best so far is skipped before its methods or headers are
looked at.
"""

from quiver.http.normalize import normalize_path
from quiver.proxy.routing.entry import RouteMatch
from quiver.proxy.routing.matcher import Router

__all__ = ["RouteMatch", "Router", "normalize_path"]
