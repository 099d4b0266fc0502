"""Storage: files and atomic writes (:func:`files.staged` publishing, per-entry locks), the
configuration-hash cache of teachers, solves and runs behind one façade (:class:`cache.Cache`; the
solve store in :mod:`.solves`), the run record, and the layout of the app's analysis results
(:mod:`.analyses`, read by the cache's health check, never importing the app).

May import: ``deadwood.config``, ``deadwood.models`` (to load a stored model), ``deadwood.pruning``
(sparsity of a stored model), ``deadwood.robustness`` (the result format), ``deadwood.data``,
``deadwood.fingerprint`` (what every entry records), ``deadwood.errors``, ``deadwood.version``.
"""
