"""Local side of integrity: streaming sha256, chunked file I/O off the loop, atomic rename.

Big-file reads, writes and hashing run in worker threads (``asyncio.to_thread``), one chunk
at a time, so memory stays bounded and the event loop never blocks. A receiver on this side
writes ``.<name>.nfpart`` beside the final name and ``os.replace``s it only after the sha256
of what arrived equals the source's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from netfault.engine.transports.remote import PART_SUFFIX

CHUNK_SIZE = 1 << 20
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
