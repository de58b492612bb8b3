"""The exec transports' bulk data path through OpenSSH's ``ssh`` binary (and coreutils base64).

asyncssh's client packetises and encrypts in Python, on CPU the node on the same host needs
(``bench/transfer.py`` compares both paths with ``cat f | ssh node 'cat > f'``). So the bytes
go the baseline's way: ``ssh`` reads the
local file (or a local ``base64`` pipe) straight from a descriptor and writes a pull straight
into the ``.nfpart`` file. No byte passes through an asyncio pipe transport (the platform notes'
truncation trap): child processes are joined by plain ``os.pipe`` descriptors.

The local sha256 is computed in a worker thread beside the stream, in the same pass over the
page cache: of the source file for a push, and of the partial file as it grows (trailing the
writer) for a pull, so a pull verifies what actually reached the disk. The ``ssh`` here is a
session of the attempt's OpenSSH master (``sshmux``), which also runs every other step
(resume check, remote sha256, atomic rename): one connection, one handshake per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import threading
from collections.abc import Awaitable, Sequence
from pathlib import Path

from netfault.engine.errors import IntegrityError, TransportError
from netfault.engine.transports import children
from netfault.engine.transports.failures import Tracker
from netfault.engine.transports.fenced import discard, is_ready, written_error
from netfault.engine.transports.integrity import Hasher
from netfault.engine.transports.sshmux import SSH_ERROR_EXIT, OpenSshMaster

CHUNK = 1 << 20
DEVNULL = asyncio.subprocess.DEVNULL


def available(*tools: str) -> bool:
    """True when ``ssh`` and the given local tools are on PATH."""
    return all(shutil.which(tool) is not None for tool in ("ssh", *tools))


class _Streamer:
    """Hashes a file in a worker thread: feeding a pipe from it, or following it as it grows.

    Every chunk is reported to ``notify`` on the event loop (progress, per chunk as the
    asyncssh path did, so a cancel lands within a chunk or two of where it was asked).
    """

    def __init__(
        self, path: Path, offset: int, hasher: Hasher, attempt: Tracker | None = None
    ) -> None:
        self.path = path
        self.position = offset
        self.hasher = hasher
        self._loop = asyncio.get_running_loop()
        self._attempt = attempt
        self._finished = threading.Event()
        self._stopped = False

    def _notify(self) -> None:
        if not self._stopped and self._attempt is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed after a cancel
                self._loop.call_soon_threadsafe(self._advance, self.position)

    def _advance(self, position: int) -> None:
        if not self._stopped and self._attempt is not None:
            self._attempt.set_done(max(self._attempt.done, position))

    def feed(self, pipe: int) -> int:
        """Copy the file from ``offset`` into ``pipe`` (closed at the end), hashing each chunk."""
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.position)
                while not self._stopped:
                    block = fh.read(CHUNK)
                    if not block:
                        break
                    self.hasher.update(block)
                    view = memoryview(block)
                    while view:
                        view = view[os.write(pipe, view) :]
                    self.position += len(block)
                    self._notify()
        except BrokenPipeError:
            pass  # the reader died: its exit status tells why
        finally:
            os.close(pipe)
        return self.position

    def follow(self) -> int:
        """Hash the file from ``offset`` as a writer appends to it, until ``finish``."""
        with self.path.open("rb") as fh:
            fh.seek(self.position)
            while not self._stopped:
                finished = self._finished.is_set()  # before the read: then EOF is final
                block = fh.read(CHUNK)
                if block:
                    self.hasher.update(block)
                    self.position += len(block)
                    self._notify()
                elif finished:
                    break
                else:
                    self._finished.wait(0.005)
        return self.position

    def finish(self) -> None:
        """The writer is done: hash up to the end of the file, then return."""
        self._finished.set()

    def stop(self) -> None:
        """Give up (cancelled or failed): return at the next chunk."""
        self._stopped = True
        self._finished.set()


def _pipe() -> tuple[int, int]:
    """A pipe with a 1 MiB buffer where Linux allows it (fewer wake-ups than 64 KiB)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, CHUNK)
    return read_end, write_end


def _open_part(path: Path, offset: int) -> int:
    """The partial file truncated to ``offset`` (created when new), positioned at its end."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


class _Pipeline:
    """Child processes joined by descriptors; killed and reaped on any way out."""

    def __init__(self, master: OpenSshMaster) -> None:
        self.master = master
        self.procs: list[tuple[asyncio.subprocess.Process, asyncio.Future[bytes]]] = []
        self.readers: list[asyncio.Future[None]] = []  # stdouts read to their end

    async def spawn(
        self, argv: Sequence[str], stdin: int, stdout: int
    ) -> asyncio.subprocess.Process:
        proc = await self.master.spawn(argv, stdin, stdout)
        assert proc.stderr is not None
        self.procs.append((proc, asyncio.ensure_future(proc.stderr.read())))
        return proc

    async def wait(self) -> list[tuple[int, str]]:
        """(exit status, stderr) of each process, in spawn order."""
        results = []
        for proc, stderr in self.procs:
            text = (await stderr).decode("utf-8", "replace")
            results.append((await proc.wait(), text))
        return results

    def discard_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        self.readers.append(asyncio.ensure_future(discard(proc.stdout)))

    async def close(self) -> None:
        for proc, stderr in self.procs:
            await children.reap(proc)
            stderr.cancel()
            with contextlib.suppress(BaseException):
                await stderr
        for reader in self.readers:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


def _forget(future: asyncio.Future[int]) -> None:
    """A hashing thread told to stop: nobody waits for it, so retrieve its outcome quietly."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


async def push_file(
    master: OpenSshMaster,
    command: str,
    local: Path,
    offset: int,
    hasher: Hasher,
    encode: Sequence[str],
    attempt: Tracker,
) -> None:
    """Stream ``local`` from ``offset`` (through ``encode`` if given) into ``command``'s stdin.

    ``hasher`` (already fed with the first ``offset`` bytes) is fed with the bytes as they are
    written to the pipe: one read of the file, hashed and sent in the same pass.
    """
    pipeline = _Pipeline(master)
    streamer = _Streamer(local, offset, hasher, attempt)
    feed_end, write_end = _pipe()
    opened = [feed_end, write_end]
    sending: asyncio.Future[int] | None = None
    try:
        ssh_in = feed_end
        if encode:
            ssh_in, encoded = _pipe()
            opened += [ssh_in, encoded]
            await pipeline.spawn(encode, feed_end, encoded)
        ssh = await pipeline.spawn(master.argv(command), ssh_in, children.PIPE)
        for fd in opened:
            if fd != write_end:
                os.close(fd)
        opened = [write_end]
        if await _ready(ssh):
            pipeline.discard_stdout(ssh)
            sending = asyncio.ensure_future(asyncio.to_thread(streamer.feed, write_end))
            opened = []  # the thread closes the write end
        else:  # the writer refused (its exit status says why): send nothing
            os.close(write_end)
            opened = []
        results = await pipeline.wait()
        if sending is not None:
            await sending
    finally:
        streamer.stop()
        if sending is not None:
            _forget(sending)
        for fd in opened:
            os.close(fd)
        await pipeline.close()
    *local_steps, (status, stderr) = results
    if status not in (0, SSH_ERROR_EXIT):
        raise written_error(status, stderr, attempt, "upload")  # the remote writer's own
    if status != 0:
        raise await master.failure(status, stderr, "upload")
    for code, text in local_steps:
        if code != 0:
            raise attempt.fail(TransportError, f"local {encode[0]} exit {code}: {text.strip()}")
    attempt.set_done(streamer.position)


async def _ready(proc: asyncio.subprocess.Process) -> bool:
    """Wait for the remote writer's go-ahead (see ``fenced.is_ready``)."""
    assert proc.stdout is not None
    return is_ready(await proc.stdout.readline())


async def pull_file(
    master: OpenSshMaster,
    command: str,
    part: Path,
    offset: int,
    hasher: Hasher,
    decode: Sequence[str],
    attempt: Tracker,
) -> int:
    """Write ``command``'s stdout (through ``decode`` if given) to ``part`` after ``offset``.

    ``hasher`` (fed with the first ``offset`` bytes) is fed with what reaches the file, read
    back from the page cache right behind the writer; returns the partial file's size.
    """
    pipeline = _Pipeline(master)
    streamer = _Streamer(part, offset, hasher, attempt)
    opened = [await asyncio.to_thread(_open_part, part, offset)]
    hashing: asyncio.Future[int] | None = None
    try:
        ssh_argv = master.argv(command)
        if decode:
            read_end, write_end = _pipe()
            opened += [read_end, write_end]
            await pipeline.spawn(ssh_argv, DEVNULL, write_end)
            await pipeline.spawn(decode, read_end, opened[0])
        else:
            await pipeline.spawn(ssh_argv, DEVNULL, opened[0])
        for fd in opened:
            os.close(fd)
        opened = []
        hashing = asyncio.ensure_future(asyncio.to_thread(streamer.follow))
        results = await pipeline.wait()
        streamer.finish()
        written = await hashing
    finally:
        streamer.stop()
        if hashing is not None:
            _forget(hashing)
        for fd in opened:
            os.close(fd)
        await pipeline.close()
    (status, stderr), *local_steps = results
    attempt.set_done(written)
    if status != 0:
        raise await master.failure(status, stderr, "download")
    for code, text in local_steps:
        if code != 0:
            raise attempt.fail(IntegrityError, f"undecodable stream ({text.strip()[:200]})")
    return written


async def follow_hash(path: Path, offset: int, hasher: Hasher, writer: Awaitable[None]) -> int:
    """Await ``writer`` (something appending to ``path`` from ``offset`` on, e.g. ``rsync
    --inplace``) while a thread feeds ``hasher`` with what it writes; return the final size.

    ``path`` must exist before the call. The hash is of the file as it is on disk at the end,
    read right behind the writer instead of in a second pass.
    """
    streamer = _Streamer(path, offset, hasher)
    hashing = asyncio.ensure_future(asyncio.to_thread(streamer.follow))
    try:
        await writer
        streamer.finish()
        return await hashing
    finally:
        streamer.stop()
        _forget(hashing)
