"""Benchmarking tooling on top of the engine: grids of runs, their report, cost and throughput.

- :mod:`.grid`: every method on one grid of sparsities and seeds (``deadwood bench``), resumable;
- :mod:`.attacks`: the attacks beyond the record's PGD (AutoAttack) on a grid's runs and teachers,
  cached in ``attacks.json``;
- :mod:`.report`: means over seeds, ``bench.md``, the Pareto front and chart;
- :mod:`.cost`: method-specific stage times of several variants, side by side (``deadwood cost``);
- :mod:`.throughput`: images per second per kind of step, foolbox against plain torch;
- :mod:`.deployment`: what each method's cut buys at each sparsity (``deadwood bench --deploy``);
- :mod:`.tasks`: a grid's work as tasks (one cache entry or one evaluation each) and what a worker
  runs for one, without Ray;
- :mod:`.executor`: those tasks scheduled on Ray (``deadwood bench --workers``, the app's Compare
  page); the one module that imports Ray, and only when an executor starts.

May import the engine (the table in docs/architecture.md, row ``bench``); nothing in the engine
imports from here.
"""
from .grid import (BenchSpec, measure_throughput, method_seconds, restore_run, row_of, run_bench,  # noqa: F401
                   synthetic_throughput, timing_only)
from .report import markdown, pareto_figure, pareto_front, summarize, write_figure  # noqa: F401

__all__ = ["BenchSpec", "run_bench", "row_of", "summarize", "markdown", "pareto_figure", "pareto_front",
           "write_figure", "method_seconds", "measure_throughput", "synthetic_throughput", "timing_only",
           "restore_run"]
