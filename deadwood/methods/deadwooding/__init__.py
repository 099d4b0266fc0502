"""Deadwooding (Kaur, Fioretto, Salekin, arXiv 2202.05226): the method (:mod:`.method`), its
Lagrangian-dual problem, the multipliers and their update rules (:mod:`.multipliers`), and the
solve cache that keeps Stage 1 apart from κ (:mod:`.solve_cache`).

May import what ``deadwood.methods`` may.
"""
