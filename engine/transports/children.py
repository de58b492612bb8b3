"""Local child processes of a transfer (ssh, rsync, scp, base64): started in a session of
their own and killed as a group.

Killing only the direct child is not enough: ``rsync`` and ``scp`` run ``ssh`` as their own
child, which keeps the output pipes open, and asyncio's ``Process.wait()`` returns only once
every pipe closed. An attempt cancelled by its operation timeout waited for that grandchild
(one rsync attempt ran 43 s with a 6.4 s timeout). So every child leads its own process
group, the group gets SIGKILL on any way out, and the reaping wait is bounded. A group of its
own no longer hears a signal sent to the engine's group, so on Linux each child also asks the
kernel for SIGKILL when the engine dies (``PR_SET_PDEATHSIG``): a killed engine leaves no ssh
or rsync streaming into a partial behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Sequence

REAP_TIMEOUT = 0.5
PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
_PR_SET_PDEATHSIG = 1


def _death_signal() -> Callable[[], None] | None:
    """A pre-exec hook setting SIGKILL as the parent-death signal (None off Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved now, not in the forked child

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))

    return hook


_PRE_EXEC = _death_signal()


async def spawn(
    argv: Sequence[str],
    *,
    stdin: int | None,
    stdout: int | None,
    stderr: int | None,
    death_signal: bool = True,
) -> asyncio.subprocess.Process:
    """Start ``argv`` as the leader of a new session (so of a new process group).

    ``death_signal=False`` for a child that cannot outlive something that has it (a session
    of an OpenSSH master, ends when the master does): without a pre-exec hook Python starts
    it with vfork, about ten times cheaper than a fork of the engine's process.
    """
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_PRE_EXEC if death_signal else None,
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
