"""Which processes hold a file open, from /proc (shared by the transport tests)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path


async def until_no_process_holds(path: Path, polls: int = 500) -> None:
    """Wait (bounded) until no process has ``path`` open: the node's writer has flushed it."""
    for _ in range(polls):
        if not any(_holds(pid, path) for pid in os.listdir("/proc") if pid.isdigit()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} still open after {polls} polls")


def _holds(pid: str, path: Path) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            continue
    return False
