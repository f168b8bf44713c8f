"""Store mode: the gateway serves the declaration kept in the config store.

``quiver serve`` without a config file (or with ``--store URL``, or a bootstrap
file holding ``store:`` and settings only) runs here: the master process reads the
store, notices each new revision (:mod:`quiver.storemode.source`), validates and
trial-compiles it once and hands it to its workers; the admin API runs in a child
process of its own (:mod:`quiver.storemode.admin`).  The proxy never reads the
store: the master hands it configs, as it does a config file's.
"""
