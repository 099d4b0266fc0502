"""Sweeps past one process: a grid's cache entries computed as Ray tasks (the one module that imports ray).

A grid is many small independent jobs with two shared prefixes: every run of a seed starts from
that seed's teacher, every Deadwooding run of a (seed, ε, solve settings) from one Stage 1 solve
(:mod:`deadwood.storage.solves`). :meth:`RayExecutor.compute` therefore goes in dependency order: the
teachers (in parallel), the solves, every run, each task submitted as soon as what it needs is
done (a baseline run does not wait for the solves), and then the benchmark's attack evaluations
(AutoAttack), each submitted as soon as the run it attacks is cached. A task
(:mod:`deadwood.bench.tasks`) is one cache entry or one evaluation: it ships the entries it starts
from as bytes, a worker computes in a private temporary cache and returns the new entry's files (or
the evaluation's compact result), and the driver publishes each entry into its own cache atomically
(a staging folder, then a rename) or hands the result to ``on_evaluated``.

So workers share no filesystem with the driver, a worker that dies loses only its own task (Ray
runs it once more, then it is reported failed), and what finished stays cached: interrupting and
running the same command again resumes. The numbers are those of a serial grid, because every
task runs the same code from the same cached inputs with the same seeds and one torch thread
(``$DEADWOOD_THREADS``), and the driver afterwards reads its rows from its cache as it always did.

Its users are ``deadwood bench --workers``/``--ray-address`` and the app's Compare page
(``app.jobs.ray_grid``); both go through :class:`RayExecutor` and never import Ray themselves.
Ray is imported only when an executor starts: importing :mod:`deadwood` or running
``deadwood run`` never imports or starts it. A local instance (``RayExecutor(workers=N)``)
advertises 127.0.0.1, runs no dashboard, and requires a random per-instance token
(``RAY_AUTH_MODE=token``): Ray's own gRPC servers bind every interface and offer no option to
bind only the loopback one, so the token is what keeps other machines out.
"""
from __future__ import annotations

import os
import secrets
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..config import RunConfig
from ..errors import ClusterError, DeadwoodError
from .tasks import KINDS, Failure, Outcome, Task, compute_entry, evaluate_entry, plan, read_entry, write_entry

__all__ = ["RayExecutor", "KINDS", "POLL_SECONDS", "RETRIES", "Task", "Failure", "Outcome", "plan", "compute_entry",
           "evaluate_entry", "import_ray", "probe"]

RETRIES = 1  # a task whose worker died runs once more (Ray's max_retries), then is reported failed
PROBE_SECONDS = 3.0  # how long a cluster address may take to accept a TCP connection
POLL_SECONDS = 0.5  # how often the driver looks up from waiting (Ctrl-C, a Stop button)
RAY_PIN = "ray==2.60.0"  # what requirements.txt installs


# ----------------------------------------------------------------------------------------- Ray
def import_ray():
    """Ray, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"running on several workers needs Ray, which is not installed here: "
                           f"pip install '{RAY_PIN}' (it is in requirements.txt), or use --workers 1") from None
    return ray


def probe(address: str, seconds: float = PROBE_SECONDS) -> None:
    """Fail within ``seconds`` when nothing accepts a TCP connection at ``address`` (host:port,
    optionally ray://; port 6379 when none is given), before Ray is asked to join it."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        host, port = hostport, "6379"
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as e:
        why = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({why}): start it with `ray start --head` "
                           f"on that machine, or check the address") from None


@contextmanager
def _environment(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _warm_up() -> str:
    """Import what every task needs (torch, the engine, foolbox) and hash the code once."""
    from ..fingerprint import code_fingerprint
    from .. import pipeline, robustness  # noqa: F401

    return code_fingerprint()


def _reload_settings() -> bool:
    """Make Ray's core read its ``RAY_*`` settings (the token ones) again, as Ray's own tests do:
    it reads them once, when ``ray`` is first imported, possibly before an executor set them.
    Returns False when this Ray version offers no way to."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - another Ray version
        return False
    return True


class RayExecutor:
    """Compute a grid's cache entries on Ray: a local instance with ``workers`` CPUs (each task
    one worker with ``threads`` torch threads), or the cluster at ``address``. Use it as a context
    manager (Ray starts on entry, stops on exit); ``task`` is the worker function (tests swap it)."""

    def __init__(self, workers: int = 2, *, address: Optional[str] = None, threads: int = 1,
                 task: Callable = compute_entry, evaluate: Callable = evaluate_entry):
        if workers < 1:
            raise ClusterError(f"--workers must be >= 1, got {workers}")
        if threads < 1:
            raise ClusterError(f"threads per worker must be >= 1, got {threads}")
        self.workers, self.address, self.threads, self.task = workers, address, threads, task
        self.evaluate = evaluate
        self._ray = None
        self._env = None
        self._warming: list = []

    # -------------------------------------------------------------------------- start and stop
    def __enter__(self) -> "RayExecutor":
        if self.address:
            probe(self.address)  # before importing Ray: a wrong address fails in seconds, nothing started
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"RAY_USAGE_STATS_ENABLED": "0",
               # local workers import the driver's deadwood, whatever is installed
               "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        if not self.address:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),  # one per instance
                       # Ray starts workers at niceness 15; the grid is this instance's whole work, and
                       # at 15 a worker got a fifth of the one-process bench's share of a busy machine
                       RAY_worker_niceness="0")
        self._env = _environment(env)
        self._env.__enter__()
        try:
            ray = import_ray()
            if not self.address and not _reload_settings():  # a Ray without the reload: run it without the token
                for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
                    os.environ.pop(k, None)
            quiet = dict(include_dashboard=False, logging_level="error", log_to_driver=False)
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(address="local", num_cpus=self.workers * self.threads, _node_ip_address="127.0.0.1",
                         object_store_memory=256 * 2**20, **quiet)
        except BaseException as e:
            self._env.__exit__(None, None, None)
            if isinstance(e, (ConnectionError, RuntimeError)):
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ClusterError(f"Ray did not start: {first}") from None
            raise
        self._ray = ray
        if not self.address:  # each worker imports torch and the engine now, beside the first teacher
            warm = ray.remote(num_cpus=self.threads, max_retries=0)(_warm_up)
            self._warming = [warm.remote() for _ in range(self.workers)]
        return self

    def __exit__(self, *exc) -> None:
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None
            self._env.__exit__(None, None, None)
            if not self.address:
                _reload_settings()  # the token settings leave with the instance

    # -------------------------------------------------------------------------------- the work
    def compute(self, configs: Sequence[RunConfig], cache_dir=None,
                on_progress: Optional[Callable] = None, *, evaluations: Sequence = (),
                on_evaluated: Optional[Callable] = None) -> Outcome:
        """Compute every entry ``configs`` need that the cache at ``cache_dir`` lacks, and then each
        of ``evaluations`` (``(config, Evaluation)`` pairs), submitted as soon as its run is
        cached; ``on_evaluated(evaluation, result)`` receives each result in the driver.

        A task is submitted as soon as the entries it needs are in the driver's cache (teachers
        first, then solves, then runs, in grid order): a baseline run starts when its teacher is
        done, while the Deadwooding solve of the same seed is still running beside it.

        ``on_progress(kind, done, total, task, state, error=None)`` is called once per kind with
        work to do before anything runs (``state`` 'start', ``task`` None), when a task ends
        ('done'; 'failed', or 'skipped' when an entry it needs failed, with ``error``, one line),
        and every :data:`POLL_SECONDS` while waiting ('wait'). An exception raised from it (a Stop
        button's :class:`deadwood.RunStopped`), or Ctrl-C, cancels what is still running and is
        raised on; what finished stays cached."""
        from ..fingerprint import code_fingerprint
        from ..storage.cache import Cache

        if self._ray is None:
            raise RuntimeError("RayExecutor.compute outside its `with` block")
        ray, root = self._ray, Cache(cache_dir).root
        report = on_progress or (lambda *a, **k: None)
        remote = ray.remote(max_retries=RETRIES, num_cpus=self.threads)(self.task)
        remote_eval = ray.remote(max_retries=RETRIES, num_cpus=self.threads)(self.evaluate)
        phases = plan(configs, root)
        phases["attack"] = [Task("attack", c.validate(), e) for c, e in evaluations]
        totals = {k: len(v) for k, v in phases.items()}
        done = dict.fromkeys(KINDS, 0)
        outcome, code = Outcome(), code_fingerprint()
        have: set[Path] = set()  # entries known to be in the driver's cache
        lost: set[Path] = set()  # entries that failed
        shipped: dict[Path, object] = {}  # each needed entry goes into Ray's object store once
        runs_shipped: set[Path] = set()  # the runs among them, dropped once their evaluations are submitted
        waiting = [t for k in KINDS for t in phases[k]]
        pending: dict = {}

        def available(n: Task) -> bool:
            where = n.folder(root)
            if where not in have and n.cached(root):
                have.add(where)
            return where in have

        def end(task: Task, what: str, error: Optional[str] = None) -> None:
            done[task.kind] += 1
            if error is not None:
                outcome.failed.append(Failure(task, error))
                if task.kind != "attack":  # an evaluation is no entry that others need
                    lost.add(task.folder(root))
            report(task.kind, done[task.kind], totals[task.kind], task, what, error)

        for kind in KINDS:
            if totals[kind]:
                report(kind, 0, totals[kind], None, "start")
        try:
            while waiting or pending:
                later = []
                for task in waiting:
                    needs = task.needs()
                    failed = [n for n in needs if n.folder(root) in lost]
                    if failed:
                        end(task, "skipped", f"not started: its {failed[0].kind} failed")
                    elif all(available(n) for n in needs):
                        refs = []
                        for n in needs:
                            where = n.folder(root)
                            if where not in shipped:
                                shipped[where] = ray.put((n.kind, read_entry(root, n)))
                                if n.kind == "run":
                                    runs_shipped.add(where)
                            refs.append(shipped[where])
                        if task.kind == "attack":
                            ref = remote_eval.remote(_located(task.config), code, self.threads, task.evaluation,
                                                     *refs)
                        else:
                            ref = remote.remote(task.kind, _located(task.config), code, self.threads, *refs)
                        pending[ref] = task
                    else:
                        later.append(task)
                waiting = later
                for where in [w for w in shipped if w in runs_shipped]:
                    del shipped[where]  # a run's entry serves the evaluations submitted just now (Ray keeps it for them)
                if not pending:
                    if waiting:  # pragma: no cover - every need is planned before what needs it
                        raise RuntimeError(f"nothing runs and {waiting[0].label} waits")
                    break
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                if not ready:
                    kind = next(k for k in KINDS if done[k] < totals[k])
                    report(kind, done[kind], totals[kind], None, "wait")
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        files = ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - any task error is reported, the others go on
                        end(task, "failed", _reason(ray, e))
                        continue
                    if task.kind == "attack":
                        if on_evaluated is not None:
                            on_evaluated(task.evaluation, files)
                        outcome.computed.append(task)
                        end(task, "done")
                        continue
                    write_entry(root, task, files)
                    have.add(task.folder(root))
                    outcome.computed.append(task)
                    end(task, "done")
        finally:
            for ref in pending:  # interrupted: stop the rest; what finished is already published
                ray.cancel(ref, force=True)
        outcome.cached = sum(1 for c in configs if Task("run", c).cached(root)) - len(outcome.computed_runs())
        return outcome


def _located(config: RunConfig) -> RunConfig:
    """``config`` with its data folder made absolute: a worker runs in a folder of Ray's choosing
    (``data_dir`` is a location, outside every key, so the entry's key is unchanged)."""
    from ..config import with_updates

    if config.data_dir is None:
        return config
    return with_updates(config, data_dir=str(Path(config.data_dir).expanduser().resolve()))


def _reason(ray, e: Exception) -> str:
    """One line for a failed task: the task's own error, or what happened to its worker."""
    exc = ray.exceptions
    if isinstance(e, exc.RayTaskError):
        cause = getattr(e, "cause", None)
        if isinstance(cause, DeadwoodError):
            return str(cause)
        if cause is not None:
            return f"{type(cause).__name__}: {cause}".splitlines()[0]
    if isinstance(e, (exc.WorkerCrashedError, exc.NodeDiedError)):
        return f"its worker died (tried {RETRIES + 1} times)"
    if isinstance(e, exc.TaskCancelledError):
        return "cancelled"
    return f"{type(e).__name__}: {e}".splitlines()[0]
