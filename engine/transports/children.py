"""Local child processes of a transfer (ssh, rsync, scp, base64): started in a session of
their own and killed as a group.

Killing only the direct child is not enough: ``rsync`` and ``scp`` run ``ssh`` as their own
child, which keeps the output pipes open, and asyncio's ``Process.wait()`` returns only once
every pipe closed. An attempt cancelled by its operation timeout waited for that grandchild
(one rsync attempt ran 43 s with a 6.4 s timeout). So every child leads its own process
group, the group gets SIGKILL on any way out, and the reaping wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence

REAP_TIMEOUT = 0.5
PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL


async def spawn(
    argv: Sequence[str], *, stdin: int | None, stdout: int | None, stderr: int | None
) -> asyncio.subprocess.Process:
    """Start ``argv`` as the leader of a new session (so of a new process group)."""
    return await asyncio.create_subprocess_exec(
        *argv, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True
    )


def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL ``proc`` and every process it started (its group outlives it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc``'s group and wait (briefly: it was SIGKILLed) for it and its pipes.

    Safe to call on a finished process: a group's descendants may live on after its leader
    exited, so the group is killed whatever ``returncode`` says.
    """
    kill_group(proc)
    with contextlib.suppress(TimeoutError, ProcessLookupError):
        async with asyncio.timeout(REAP_TIMEOUT):
            await proc.wait()
