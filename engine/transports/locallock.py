"""The local partial of a pull, fenced like the node's: its attempt holds an exclusive ``flock``
on it from start to rename, so two pulls into one destination (two engines, or a retry while a
cancelled attempt still unwinds) never write the same partial. A pull that cannot get the
lock within a bounded wait writes a private partial, ``.NAME.nfpart.TOKEN``, instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

LOCK_POLL = 0.02


def open_locked(path: Path, wait: float) -> int | None:
    """A descriptor of ``path`` (created when missing) holding its exclusive lock, or None
    when another holder kept it for ``wait`` seconds. Blocking: run it in a thread."""
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if _lock(fd, deadline) and same_file(fd, path):
            return fd
        os.close(fd)  # not locked in time, or replaced while we waited: open it again
        if time.monotonic() >= deadline:
            return None


def _lock(fd: int, deadline: float) -> bool:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_POLL)  # flock has no timeout of its own; this runs in a thread


def same_file(fd: int, path: Path) -> bool:
    """True while ``path`` still names the file open as ``fd``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def release(fd: int, path: Path) -> None:
    """Drop the lock; remove ``path`` first if it is still this file and empty (nothing to
    resume). Blocking."""
    try:
        if same_file(fd, path) and os.fstat(fd).st_size == 0:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        os.close(fd)
