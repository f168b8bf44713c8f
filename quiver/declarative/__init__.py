"""Declarative config against the admin API: ``quiver dump``, ``diff``, ``apply`` and
``rollback`` (as decK does for Kong).  A client of the admin API over HTTP: it reads
and writes files and talks to the API, and never opens the store itself."""

DEFAULT_ADMIN = "http://127.0.0.1:8081"
TOKEN_VARIABLE = "QUIVER_ADMIN_TOKEN"
