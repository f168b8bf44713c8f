"""Declared REST resources, stored in SQLite and answered inside the worker.

:mod:`.storage` owns the tables, :mod:`.query` reads list parameters, :mod:`.patch`
applies RFC 7396 and RFC 6902 documents, :mod:`.validate` checks bodies against the
declared fields, and :mod:`.target` is the ``resource`` target type serving them.
"""
