"""Upload partials on the node: locked while written, swept once the file is finished, aged out.

Every writer of a partial file, the agent's resumable PUT as well as the engine's remote
commands (``flock`` from util-linux), holds an exclusive ``flock`` on the partial itself for as
long as it writes it. So a partial whose lock can be taken has no live writer, and only such a
partial is ever removed: when a file is finished (whatever transport finished it, the partials
the others left for that name go), or, for the agent's own partials of aborted uploads, once
they are older than ``PARTIAL_MAX_AGE`` (swept at most every ``SWEEP_EVERY`` seconds, on a PUT).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import time
from pathlib import Path
from typing import BinaryIO

from netfault.simulator.node.paths import AGENT_PART_SUFFIX

ENGINE_SUFFIX = ".nfpart"  # the engine's shell writers: .NAME.nfpart and .NAME.nfpart.TOKEN
PARTIAL_MAX_AGE = 24 * 3600.0
ORPHAN_AGE = 10.0  # as the engine's remote.ORPHAN_AGE
SWEEP_EVERY = 60.0
LOCK_POLL = 0.02


def open_locked(path: Path, wait: float) -> BinaryIO | None:
    """``path`` opened for writing (created when missing) under its exclusive lock, or None
    when another writer kept the lock for ``wait`` seconds. Blocking: run it in a thread."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if _lock(fd, deadline) and _same_file(fd, path):
                return os.fdopen(fd, "r+b")
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # not locked in time, or replaced while we waited: open it again
        if time.monotonic() >= deadline:
            return None


def close_locked(fh: BinaryIO, path: Path) -> None:
    """Close a partial opened by ``open_locked``, removing it first if it is still ``path``
    and empty (a refused or failed PUT leaves nothing behind). Blocking."""
    try:
        if _same_file(fh.fileno(), path) and os.fstat(fh.fileno()).st_size == 0:
            path.unlink(missing_ok=True)
    finally:
        fh.close()


def _lock(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_POLL)  # flock has no timeout of its own; this runs in a thread


def _same_file(fd: int, path: Path) -> bool:
    """True while ``path`` still names the file open as ``fd`` (a sweep or a rename may have
    unlinked it while we waited for its lock)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def remove_unless_written(path: Path) -> bool:
    """Delete ``path`` if no writer holds its lock; True when it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not _same_file(fd, path):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def others_for(final: Path) -> list[Path]:
    """The partials the engine's shell writers left for ``final``: the shared one, and the
    per-attempt copies once orphaned (a whole copy waits, unlocked, for its own attempt's
    commit: only one left ``ORPHAN_AGE`` seconds is taken as orphaned)."""
    shared = final.with_name(f".{final.name}{ENGINE_SUFFIX}")
    cutoff = time.time() - ORPHAN_AGE
    copies = map(Path, glob.glob(glob.escape(str(shared)) + ".*"))
    return [shared, *(p for p in copies if _mtime(p) <= cutoff)]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def sweep_finished(final: Path) -> int:
    """Remove the partials other writers left for ``final`` (just finished); return how many."""
    return sum(remove_unless_written(p) for p in others_for(final) if p.is_file())


def expire(home: Path, max_age: float = PARTIAL_MAX_AGE) -> int:
    """Remove the agent's partials not written for ``max_age`` seconds; return how many."""
    cutoff = time.time() - max_age
    removed = 0
    for dirpath, _dirs, files in os.walk(home):
        for name in files:
            if not name.endswith(AGENT_PART_SUFFIX):
                continue
            path = Path(dirpath, name)
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < cutoff and remove_unless_written(path):
                    removed += 1
    return removed
