"""json-server compatibility: ``quiver resources serve db.json``.

:mod:`.infer` reads a json-server ``db.json`` into resource declarations,
:mod:`.database` seeds and reopens the SQLite file holding its data,
:mod:`.query` reads json-server 0.17's list parameters into SQL, :mod:`.target`
answers as json-server does, and :mod:`.command` builds the config and serves it.
"""
