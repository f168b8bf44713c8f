"""``quiver sync``: declarative pulls from REST APIs into tables.

The sources file (:mod:`quiver.sync.config`) says what to fetch and where to load
it; the runner (:mod:`quiver.sync.runner`) walks the pages (:mod:`quiver.sync.pages`),
turns each into Arrow tables by column (:mod:`quiver.sync.columnar`), fits them to
the tables loaded so far (:mod:`quiver.sync.schema`) and hands batches to a
destination (:mod:`quiver.sync.destinations`) that commits them with their state
(:mod:`quiver.sync.state`). Fetching goes through the client SDK, :mod:`quiver.client`
(each source's client is made in :mod:`quiver.sync.fetch`).
"""
