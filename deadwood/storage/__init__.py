"""Storage: files and atomic writes (staged publishing, per-entry locks), the configuration-hash
cache of teachers, solves and runs, the run record, and the code fingerprint that every key holds.

May import: ``deadwood.config``, ``deadwood.models`` (to load a stored model), ``deadwood.pruning``
(sparsity of a stored model), ``deadwood.robustness`` (the result format), ``deadwood.data``,
``deadwood.errors``, ``deadwood.version``.
"""
