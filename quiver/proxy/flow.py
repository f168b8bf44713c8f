"""How bytes move through an exchange: response body modes and read-pause reasons.

Defined once here and shared by the client side, the upstream side and the
exchange between them.  Plain integers on purpose: they are compared per chunk.
"""

from __future__ import annotations

# -- how a response body travels to the client ---------------------------------------
NO_BODY = 0
#: the node's bytes as they are (Content-Length, chunked to HTTP/1.1, or to close)
RELAY = 1
#: the node ends the body by closing: its bytes are sent as chunks
WRAP_CHUNKS = 2
#: chunked by the node, decoded for an HTTP/1.0 client (ended by closing)
DECODED = 3
#: decoded, passed through plugins, sent as chunks (HTTP/1.0: ended by closing)
FILTERED = 4

# -- why reading from a client connection is paused (bits; reading resumes at 0) -----
#: requests are queued behind the one being answered (pipelining)
PAUSE_PIPELINE = 1
#: the node's connection cannot take more of the request body yet
PAUSE_UPSTREAM = 2
#: the body waits for a node connection and the buffer for it is full
PAUSE_BUFFER = 4
