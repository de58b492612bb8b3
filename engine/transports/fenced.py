"""The remote side of a fenced push, shared by the exec transports, rsync and scp.

The shell commands live in ``remote`` (which explains the fence); these are the steps a push
runs on its asyncssh control connection around them: find where to resume, commit the copy
this attempt wrote, discard it after a failure nothing can resume, and turn a writer's exit
status into a typed error (``FenceRefused`` when its fence refused to start).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Protocol

import asyncssh

from netfault.engine.errors import AttemptError
from netfault.engine.transports import remote as rc
from netfault.engine.transports.failures import Tracker, mismatch, writer_error
from netfault.engine.transports.integrity import Hasher, hash_prefix
from netfault.engine.transports.sshconn import Remote, run_text
from netfault.engine.transports.sshmux import OpenSshMaster

Completed = asyncssh.SSHCompletedProcess

DISCARD_TIMEOUT = rc.DISCARD_LOCK_WAIT + 1.0
OUTPUT_CHUNK = 1 << 16


class Readable(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


def is_ready(line: bytes) -> bool:
    """Whether a fenced writer's first line of output is its go-ahead (``remote.READY_MARK``,
    printed once it holds its lock): no byte is sent into a writer that refuses them."""
    return line.rstrip(b"\r\n") == rc.READY_MARK.encode()  # a forced terminal adds a CR


async def discard(stdout: Readable) -> None:
    """Read a writer's output to its end: under a forced terminal it echoes every byte sent,
    which would fill the pipe and stall the writer if nobody read it."""
    while await stdout.read(OUTPUT_CHUNK):
        pass


async def resume_point(
    conn: Remote, final: str, local: Path, attempt: Tracker
) -> tuple[int, Hasher]:
    """Prepare the node for a push of ``local`` to ``final``; return the offset to resume
    the shared partial from and a sha256 object fed with that prefix."""
    out = await run_text(conn, rc.cmd_prepare_push(final), attempt, "mkdir")
    partial = rc.parse_size(out)
    return await remote_resume_point(conn, rc.part_name(final), local, partial, attempt)


async def remote_resume_point(
    conn: Remote, tmp: str, local: Path, partial: int, attempt: Tracker
) -> tuple[int, Hasher]:
    """Offset to resume an upload from, and a sha256 object already fed with that prefix."""
    assert attempt.total is not None
    if 0 < partial <= attempt.total:
        remote_sha, local_hasher = await asyncio.gather(
            run_text(conn, rc.cmd_prefix_sha(tmp, partial), attempt, "sha256sum"),
            hash_prefix(local, partial),
        )
        if rc.parse_sha(remote_sha) == local_hasher.hexdigest():
            return partial, local_hasher
    return 0, hashlib.sha256()


async def remote_size(conn: Remote, source: str, attempt: Tracker) -> int:
    """The size of the file a pull reads (also set as ``attempt.total``); fails when it is
    missing or a directory. A resume asks before its check; a fresh pull asks ``remote_sha``,
    beside its data stream."""
    attempt.total = rc.parse_size(await run_text(conn, rc.cmd_stat(source), attempt, "stat"))
    return attempt.total


async def remote_sha(conn: Remote, source: str, attempt: Tracker) -> str:
    """The sha256 of the file a pull reads. While ``attempt.total`` is unknown (a fresh pull),
    the same session also reports its size (set as ``attempt.total``) and fails as
    ``remote_size`` does: one session beside the data stream instead of two."""
    if attempt.total is not None:
        return rc.parse_sha(await run_text(conn, rc.cmd_sha(source), attempt, "sha256sum"))
    size, _, digest = (await run_text(conn, rc.cmd_stat_sha(source), attempt, "stat")).partition(
        "\n"
    )
    attempt.total = rc.parse_size(size)
    return rc.parse_sha(digest)


async def commit_remote(conn: Remote, tmp: str, final: str, sha: str, attempt: Tracker) -> None:
    """Rename the remote partial to ``final`` if its sha256 is ``sha``; IntegrityError if not."""
    _committed(await conn.run(rc.cmd_commit(tmp, final, sha), check=False), sha, attempt)


class PendingCommit:
    """``commit_remote`` started before the copy is written: its session opens beside the
    writer's (on an OpenSSH node each session forks its own shells) and waits for the digest
    on its stdin, so after the last byte a push waits for the node's sha256 of the copy only.
    """

    def __init__(self, conn: Remote, tmp: str, final: str, attempt: Tracker) -> None:
        self._attempt = attempt
        self._digest: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        command = rc.cmd_commit_on_input(tmp, final)
        self._session = asyncio.ensure_future(_run_fed(conn, command, self._digest))
        self._session.add_done_callback(_retrieved)

    async def commit(self, sha: str) -> None:
        """Send ``sha``: the copy is renamed if its sha256 matches (IntegrityError if not)."""
        self._digest.set_result(sha)
        _committed(await self._session, sha, self._attempt)

    def abandon(self) -> None:
        """End the session if it still waits: without a digest it renames nothing."""
        self._session.cancel()
        self._digest.cancel()


async def _run_fed(conn: Remote, command: str, line: asyncio.Future[str]) -> Completed:
    """Start ``command`` now; its stdin is the line ``line`` resolves to, then EOF."""
    if isinstance(conn, OpenSshMaster):
        return await conn.run(command, line=line)
    assert isinstance(conn, asyncssh.SSHClientConnection)
    proc = await conn.create_process(command)
    try:
        proc.stdin.write(await line + "\n")
        proc.stdin.write_eof()
        return await proc.wait()
    finally:
        proc.close()


def _retrieved(task: asyncio.Future[Completed]) -> None:
    """An abandoned commit's outcome (cancelled, or the connection's error) needs no reader."""
    if not task.cancelled():
        task.exception()


def _committed(result: Completed, sha: str, attempt: Tracker) -> None:
    """Raise the error of a commit that did not rename the copy."""
    if result.exit_status == rc.MISMATCH_EXIT:
        # under a forced terminal the report arrives on stdout (the terminal merges both)
        said = text(result.stderr) or text(result.stdout)
        got = said.replace("sha256", "").strip()
        raise mismatch(attempt, sha, got)
    if result.exit_status != 0:
        raise written_error(result.exit_status, text(result.stderr), attempt, "verify and rename")


async def discard_own(conn: Remote, final: str, token: str, shared: bool = True) -> None:
    """Best effort after a failure no resume can use: delete the partials this attempt wrote
    (bounded: it may run after the operation's timeout already fired)."""
    try:
        async with asyncio.timeout(DISCARD_TIMEOUT):
            await conn.run(rc.cmd_discard(final, token, shared), check=False)
    except (TimeoutError, OSError, asyncssh.Error, AttemptError):
        pass


def written_error(status: int | None, stderr: str, attempt: Tracker, what: str) -> AttemptError:
    """The error of a remote writer's exit ``status`` (classified by ``failures``): raises
    FenceRefused instead when its fence refused to start."""
    fenced = rc.fence_code(status, stderr)
    if fenced is not None:
        raise rc.FenceRefused(fenced)
    return writer_error(status, stderr, attempt, what)


def text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""
