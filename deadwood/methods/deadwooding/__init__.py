"""Deadwooding (Kaur, Fioretto, Salekin, arXiv 2202.05226): the method (:mod:`.method`), its
Lagrangian-dual problem, the multipliers and their update rules (:mod:`.multipliers`). Its Stage 1
result, a solve, ignores κ and is stored apart from it by :mod:`deadwood.storage.solves`, which the
pipeline hands the method as ``PruneContext.solves``.

May import what ``deadwood.methods`` may.
"""
