"""json-server compatibility: ``quiver resources serve db.json``.

:mod:`.infer` reads a json-server ``db.json`` into resource declarations,
:mod:`.database` seeds and reopens the SQLite file holding its data,
:mod:`.table` keeps the fields db.json did not have, :mod:`.query` reads
json-server 0.17's list parameters into SQL, :mod:`.target` answers a collection
as json-server does and :mod:`.documents` the singular documents and ``/db``, and
:mod:`.command` builds the config and serves it.
"""
