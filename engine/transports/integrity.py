"""Local side of integrity: streaming sha256, chunked file I/O off the loop, atomic rename.

Big-file reads, writes and hashing run in worker threads (``asyncio.to_thread``), one chunk
at a time, so memory stays bounded and the event loop never blocks. A receiver on this side
writes ``.<name>.nfpart`` beside the final name and ``os.replace``s it only after the sha256
of what arrived equals the source's.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import queue
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from netfault.engine.errors import IntegrityError, RemoteStorageError
from netfault.engine.transports import locallock
from netfault.engine.transports.remote import PART_SUFFIX

CHUNK_SIZE = 1 << 20
IOV_MAX = 1024  # Linux's limit on buffers per writev
Hasher = Any  # hashlib's _Hash is private


def local_part(path: Path) -> Path:
    """The temporary name beside ``path`` that a pull writes before renaming."""
    return path.with_name(f".{path.name}{PART_SUFFIX}")


def _hash_prefix(path: Path, length: int) -> Hasher:
    hasher = hashlib.sha256()
    remaining = length
    with path.open("rb") as fh:
        while remaining > 0:
            block = fh.read(min(CHUNK_SIZE * 4, remaining))
            if not block:
                raise ValueError(f"{path} is shorter than {length} bytes")
            hasher.update(block)
            remaining -= len(block)
    return hasher


async def hash_prefix(path: Path, length: int) -> Hasher:
    """A sha256 object fed with the first ``length`` bytes of ``path`` (can be continued)."""
    return await asyncio.to_thread(_hash_prefix, path, length)


async def sha256_file(path: Path) -> str:
    size = (await asyncio.to_thread(path.stat)).st_size
    return str((await hash_prefix(path, size)).hexdigest())


class ChunkReader:
    """Reads a file from an offset in chunks, hashing the raw bytes and transforming them."""

    def __init__(
        self,
        path: Path,
        offset: int,
        hasher: Hasher,
        chunk_size: int = CHUNK_SIZE,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.hasher = hasher
        self._chunk = chunk_size
        self._transform = transform
        self._fh = path.open("rb")
        self._fh.seek(offset)

    def read(self) -> tuple[int, bytes]:
        """(raw byte count, transformed bytes); (0, b"") at end of file. Blocking."""
        block = self._fh.read(self._chunk)
        if not block:
            return 0, b""
        self.hasher.update(block)
        return len(block), self._transform(block) if self._transform else block

    def close(self) -> None:
        self._fh.close()

    async def pump(self, send: Callable[[int, bytes], Awaitable[None]]) -> None:
        """Pass every chunk to ``send`` while the next one is already being read in a thread."""
        pending = asyncio.ensure_future(asyncio.to_thread(self.read))
        try:
            while True:
                raw, data = await pending
                if not raw:
                    return
                pending = asyncio.ensure_future(asyncio.to_thread(self.read))
                await send(raw, data)
        finally:
            pending.cancel()
            self.close()  # cheap; a read still running in its thread holds the file's lock


class ChunkWriter:
    """Appends to a local ``.nfpart`` file from a thread, one write in flight at a time."""

    def __init__(
        self,
        part: Path,
        offset: int,
        hasher: Hasher,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.part = part
        self.hasher = hasher
        self.written = offset
        self._transform = transform
        self._fh = part.open("r+b" if offset else "wb")
        self._fh.truncate(offset)
        self._fh.seek(offset)
        self._pending: asyncio.Future[None] | None = None

    def _write(self, data: bytes) -> None:
        if self._transform is not None:
            data = self._transform(data)
        self._fh.write(data)
        self.hasher.update(data)
        self.written += len(data)  # only one write is ever in flight

    async def write(self, data: bytes) -> None:
        """Queue ``data`` (transformed in the thread); waits only for the previous write."""
        await self.flush()
        self._pending = asyncio.ensure_future(asyncio.to_thread(self._write, data))

    async def flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await asyncio.to_thread(self._fh.close)


class QueueWriter:
    """Appends to a local ``.nfpart`` file from dedicated threads fed through queues.

    Cheaper per chunk than a ``to_thread`` hop (no executor submit, no joining of network
    buffers): ``write`` only queues, and waits while more than ``limit`` bytes are not yet
    written and hashed (until half of that is done), so memory stays bounded; with 8 MiB the
    reader and the hasher ran in lock-step and an HTTP pull lost a quarter of its speed. One
    thread writes each batch (one ``writev``: a buffered ``write`` per network buffer cost a
    GIL hand-off each and halved an HTTP pull here), then hands the same buffers to a second
    thread that hashes them while the next batch is written (a profile of an HTTP pull had one
    thread doing both as the bottleneck).
    """

    def __init__(
        self, part: Path, offset: int, hasher: Hasher, limit: int = 32 * CHUNK_SIZE
    ) -> None:
        self.part = part
        self.hasher = hasher
        self.written = offset  # written and hashed (updated by the hashing thread)
        self._offset = offset
        self._limit = limit
        self._queued = 0
        self._waiting = False  # write() waits for room; the hasher wakes it
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        self._to_hash: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        self._room = asyncio.Event()
        self._room.set()
        self._done: asyncio.Future[None] = self._loop.create_future()
        self._closed = False
        threading.Thread(target=self._write_all, name="nfpart-writer", daemon=True).start()
        threading.Thread(target=self._hash_all, name="nfpart-hasher", daemon=True).start()

    def _write_all(self) -> None:
        try:
            fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.ftruncate(fd, self._offset)
                os.lseek(fd, self._offset, os.SEEK_SET)
                while (batch := self._queue.get()) is not None:
                    write_all(fd, batch)
                    self._to_hash.put(batch)
            finally:
                os.close(fd)
        except BaseException as exc:  # reported to the loop; the thread just ends
            self._loop.call_soon_threadsafe(_settle, self._done, exc)
            while self._queue.get() is not None:
                pass  # drop what was queued until close()
        finally:
            self._to_hash.put(None)  # after the file is closed

    def _hash_all(self) -> None:
        while (batch := self._to_hash.get()) is not None:
            for data in batch:
                self.hasher.update(data)
            size = sum(map(len, batch))
            with self._lock:
                self.written += size
                self._queued -= size
                wake = self._waiting and self._queued <= self._limit // 2
                if wake:
                    self._waiting = False
            # Only a blocked write() is woken, once half the limit is free: not per batch.
            if wake:
                self._loop.call_soon_threadsafe(self._room.set)
        # After a failed write this comes second: the error was settled first.
        self._loop.call_soon_threadsafe(_settle, self._done, None)

    async def write(self, batch: list[bytes]) -> None:
        """Queue buffers (not copied); waits while too much is queued. Raises the thread's
        error (e.g. ENOSPC) once it failed."""
        if self._done.done():
            self._done.result()
            raise RuntimeError("write after close")
        with self._lock:
            self._queued += sum(map(len, batch))
            full = self._queued > self._limit
            if full:
                self._waiting = True
                self._room.clear()
        self._queue.put(batch)
        if full:
            room = asyncio.ensure_future(self._room.wait())
            waiters: list[asyncio.Future[Any]] = [room, self._done]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                room.cancel()
            if self._done.done():
                self._done.result()

    async def close(self) -> None:
        """Write what is queued, close the file; raises the thread's error if it failed."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        await asyncio.shield(self._done)


def write_all(fd: int, buffers: list[bytes]) -> None:
    """Write every buffer to ``fd`` in order: one ``writev`` per batch (a single release of
    the GIL, not one per network buffer), continuing after short writes."""
    views = [memoryview(b) for b in buffers if b]
    while views:
        written = os.writev(fd, views[:IOV_MAX])
        while written:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


@asynccontextmanager
async def receiving(final: Path, wait: float) -> AsyncIterator[Path]:
    """Yield the ``.nfpart`` name a pull writes; rename it to ``final`` if the body succeeds.

    The partial is held under its lock for the whole attempt (``locallock``): after ``wait``
    seconds of another holder, a private partial is yielded instead. A checksum or storage
    failure discards the partial (it can never be resumed into a good file), and so does a
    failed rename; any other failure keeps the shared one for the next attempt to resume
    from. A ``final`` that is a directory fails before anything is written.
    """
    if await asyncio.to_thread(final.is_dir):
        raise IsADirectoryError(errno.EISDIR, "is a directory; name the file to write", str(final))
    shared = local_part(final)
    fd = await asyncio.to_thread(locallock.open_locked, shared, wait)
    part = shared if fd is not None else shared.with_name(f"{shared.name}.{secrets.token_hex(8)}")
    try:
        try:
            yield part
        except (IntegrityError, RemoteStorageError):
            await remove_local(part)
            raise
        except BaseException:
            if fd is None:
                await remove_local(part)  # a private partial: nobody resumes it
            raise
        try:
            await commit_local(part, final)
        except OSError:
            await remove_local(part)  # verified, but nothing can resume a file already whole
            raise
    finally:
        if fd is not None:
            await asyncio.to_thread(locallock.release, fd, shared)


async def commit_local(part: Path, final: Path) -> None:
    """Atomically move a verified ``.nfpart`` file to its final name."""
    await asyncio.to_thread(os.replace, part, final)


async def remove_local(path: Path) -> None:
    await asyncio.to_thread(path.unlink, missing_ok=True)


async def local_partial_size(part: Path, limit: int) -> int:
    """Size of a local partial worth checking for resume (0 when absent or too big)."""
    try:
        size = (await asyncio.to_thread(part.stat)).st_size
    except FileNotFoundError:
        return 0
    return size if 0 < size <= limit else 0
