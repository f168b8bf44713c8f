"""Declared REST resources, stored in SQLite and answered inside the worker.

:mod:`.storage` owns the tables, :mod:`.keys` the kinds of key, :mod:`.schema_plan`
and :mod:`.migrate` bring tables in line with a changed declaration, :mod:`.query`
reads list parameters, :mod:`.patch` applies RFC 7396 and RFC 6902 documents,
:mod:`.validate` checks bodies against the declared fields, :mod:`.transfer` and
:mod:`.csvfile` move items in and out, and :mod:`.target` is the ``resource``
target type serving them.
"""
