"""Files on disk: atomic writes of a file or of a whole folder (:func:`staged`), safe checkpoint
loading, and the per-entry locks that let processes share one cache.

Everything is written to a temporary name in the same folder and renamed into
place, so a crash leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: no lock between processes (each still publishes atomically)
    fcntl = None

import torch

from ..errors import RunFileError
from ..models.checkpoint import load_untrusted


def default_cache_dir() -> Path:
    """``$DEADWOOD_CACHE``, else ``~/.cache/deadwood``."""
    return Path(os.environ.get("DEADWOOD_CACHE") or Path.home() / ".cache" / "deadwood")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place. A write the system
    refuses (a full disk, no permission) is a RunFileError naming the file, and leaves nothing."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise RunFileError(f"cannot write {path} ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise RunFileError(f"cannot write {path} ({e.strerror or e})") from None
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def atomic_save_state(path: Path, state_dict: dict) -> None:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write plain tensors to ``path`` as a safetensors file (no pickle), through a temporary file."""
    from safetensors.torch import save  # the one place the project uses safetensors

    atomic_write_bytes(path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (no code runs); RunFileError when it is missing or damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        return load(path.read_bytes())
    except (OSError, SafetensorError, ValueError) as e:
        raise RunFileError(f"cannot read {path} ({e})") from None


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from ``path``, unpickled with ``weights_only=True`` (no code runs)."""
    path = Path(path)
    state = load_untrusted(path, f"{path} is not a plain-tensor checkpoint this program can load safely")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise RunFileError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return state



def check_writable(folder: Path) -> None:
    """RunFileError naming the folder unless files can be written at ``folder`` (made if need be).

    Probes the nearest existing folder at or above it by making and removing a folder there:
    permission bits alone do not tell (read-only mounts; root ignores them). Leaves nothing."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunFileError(f"cannot create {folder}: {existing} is a file")
    try:
        Path(tempfile.mkdtemp(dir=existing, prefix=".deadwood-probe-")).rmdir()
    except OSError as e:
        raise RunFileError(f"cannot write into {existing} ({e.strerror or e})") from None


@contextlib.contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Publish a folder whole: ``with staged(final) as tmp:`` yields a fresh private folder to write
    the entry's files into; when the block ends they are fsynced and the folder renamed to ``final``
    (:func:`publish_dir`), so a reader sees the old entry or the whole new one, never a part.

    An exception inside the block (a crash, a stop, a refused write) removes the staging folder
    and leaves ``final`` as it was. What a killed process leaves (it gets no chance to clean up)
    is removed by the next publish under the same name. Locks are the caller's: take
    :func:`entry_lock` around the computation when two processes may write the same entry."""
    tmp = staging_dir(final)
    try:
        yield tmp
        _fsync_folder(tmp)
        publish_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder ``tmp`` to ``final``, replacing an old folder there.

    The old one is renamed aside and removed after the new one is in place, so ``final`` is always
    whole (if the last rename fails, the old one goes back). Aside and staging folders are named
    ``.NAME.old-PID-*`` and ``.NAME.tmp-PID-*``; those a crashed process left behind are removed here,
    on the next publish under the same name. Never replaces a file or a link: callers decide what
    may be replaced (see ``record.check_out``). :func:`staged` is the usual way in.
    """
    final = Path(final)
    _make_parent(final)
    _sweep(final)
    old = None
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise RunFileError(f"{final} is not a folder; refusing to replace it")
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_dir(final: Path) -> Path:
    """A fresh hidden folder beside ``final`` to write into before :func:`publish_dir`."""
    final = Path(final)
    _make_parent(final)
    try:
        return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-{os.getpid()}-"))
    except OSError as e:
        raise RunFileError(f"cannot write into {final.parent} ({e.strerror or e})") from None


def _fsync_folder(folder: Path) -> None:
    """Flush every file in ``folder`` and the folder itself to disk, so that the rename that
    publishes it never makes visible names whose data a power cut could still lose."""
    for f in folder.iterdir():
        if f.is_file() and not f.is_symlink():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not POSIX (a folder cannot be opened): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to sync a folder; nothing more can be done
    finally:
        os.close(fd)


def _make_parent(final: Path) -> None:
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunFileError(f"cannot create the folder {final.parent} ({e.strerror or e})") from None


def _sweep(final: Path) -> None:
    """Remove the staging and aside folders of ``final`` whose writer process is gone."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(?:old|tmp)-(\d+)-\w+")
    for p in final.parent.iterdir():
        found = pattern.fullmatch(p.name)
        if found and not process_alive(int(found.group(1))) and _flat(p):
            shutil.rmtree(p, ignore_errors=True)


def process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":
        return True  # another thread of ours may be writing it; elsewhere, no cheap liveness test
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _flat(folder: Path) -> bool:
    """A real folder of plain files only (what the engine stages): anything else is left alone."""
    return (folder.is_dir() and not folder.is_symlink()
            and all(f.is_file() and not f.is_symlink() for f in folder.iterdir()))


LOCK_POLL = 0.5  # seconds between tries for a lock another process holds
WAITING = "waiting for another process computing this "  # + what: the 'waiting' events' message


@contextlib.contextmanager
def entry_lock(final: Path, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold the cache entry ``final`` for this process while it computes it.

    An exclusive ``fcntl.flock`` on :func:`lock_path` (``ROOT/locks/KIND.NAME.lock`` for the entry
    ``ROOT/KIND/NAME``), so two processes asked for the same entry compute it once: the second
    waits, calling ``on_wait()`` at every try (every :data:`LOCK_POLL` s; it may raise to give up
    the wait, as RunStopped does), and then finds the entry published.
    The kernel releases the lock when its holder ends, even by SIGKILL, so a crashed writer never
    blocks the next. Yields whether another process held it first (look in the cache again).
    The lock files stay (removing one would race a waiter): they are empty, kept apart from the
    entries, and ``deadwood cache`` passes them by. Only a computation that fails (bad input found
    late, say) in a cache this lock had to create removes what it created, so that nothing is written."""
    path = lock_path(final)
    created = [d for d in [path.parent, *path.parent.parents] if not d.exists()]  # innermost first
    _make_parent(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunFileError(f"cannot write into {final.parent} ({e.strerror or e})") from None
    try:
        waited = False
        while fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = True
                if on_wait is not None:
                    on_wait()
                time.sleep(LOCK_POLL)
        yield waited
    except BaseException:
        if created:
            path.unlink(missing_ok=True)
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:  # something else is in it now: it stays
                    break
        raise
    finally:
        os.close(fd)  # and with it the lock


def lock_path(final: Path) -> Path:
    """The lock file of the cache entry ``final`` (``ROOT/KIND/NAME``): ``ROOT/locks/KIND.NAME.lock``."""
    final = Path(final)
    return final.parent.parent / "locks" / f"{final.parent.name}.{final.name}.lock"
