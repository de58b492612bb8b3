"""Many concurrent connections through a proxy, every byte checked (bench and tests).

Each connection sends its own payload (a shared random block rotated by the connection's
index, so bytes sent on the wrong connection are caught), half-closes, and reads back the
SHA-256 the upstream computed over what it received.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

DIGEST_SIZE = 32
READ_SIZE = 256 << 10


@dataclass(frozen=True, slots=True)
class LoadResult:
    connections: int
    bytes_each: int
    verified: int  # connections whose upstream digest matched what was sent
    seconds: float  # from the first connect to the last digest
    failures: tuple[str, ...] = ()  # the first few errors, for the report


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """What a process holds, read from /proc."""

    fds: int
    rss_bytes: int
    peak_rss_bytes: int


def process_usage(pid: int) -> ProcessUsage:
    """Open fds, resident and peak resident memory of `pid` (Linux /proc)."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return ProcessUsage(fds, fields["VmRSS"], fields["VmHWM"])


class DigestSink:
    """An upstream that reads each connection to EOF, answers its SHA-256 and closes."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self._accepted_changed = asyncio.Condition()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def wait_accepted(self, count: int) -> None:
        """Until `count` connections have been accepted in all."""
        async with self._accepted_changed:
            await self._accepted_changed.wait_for(lambda: self.accepted >= count)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._accepted_changed:
            self.accepted += 1
            self._accepted_changed.notify_all()
        digest = hashlib.sha256()
        try:
            while data := await reader.read(READ_SIZE):
                digest.update(data)
            writer.write(digest.digest())
            await writer.drain()
        except ConnectionError:
            pass  # the client went away; it counts the connection as not verified
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def payloads(size: int) -> bytes:
    """The shared block each connection's payload is a rotation of (twice, for slicing)."""
    block = os.urandom(size)
    return block + block


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(stream: Stream, index: int, doubled: bytes, size: int) -> bool:
    start = (index * 7919) % size
    payload = memoryview(doubled)[start : start + size]
    reader, writer = stream
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        answer = await reader.read(DIGEST_SIZE + 1)
    finally:
        writer.close()
    return answer == hashlib.sha256(payload).digest()


async def run_load(
    port: int,
    connections: int,
    size: int,
    *,
    within: float,
    all_open: Callable[[], Awaitable[None]] | None = None,
) -> LoadResult:
    """Open `connections` to `port`, and once all are open (and `all_open()` has returned,
    e.g. once the upstream has accepted them all) send `size` bytes on each at once; count
    the connections whose upstream digest matched.

    Raises TimeoutError if the whole load has not finished `within` seconds.
    """
    doubled = payloads(size)
    start = time.perf_counter()
    async with asyncio.timeout(within):
        opened = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(connections)),
            return_exceptions=True,
        )
        if all_open is not None:
            await all_open()
        results = await asyncio.gather(
            *(
                _exchange(stream, index, doubled, size)
                for index, stream in enumerate(opened)
                if not isinstance(stream, BaseException)
            ),
            return_exceptions=True,
        )
    seconds = time.perf_counter() - start
    refused: list[bool | BaseException] = [s for s in opened if isinstance(s, BaseException)]
    results = refused + results
    for outcome in results:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # cancellation and the like are not a connection's result
    verified = sum(1 for outcome in results if outcome is True)
    failures = [
        "upstream digest differs from what was sent" if outcome is False else repr(outcome)
        for outcome in results
        if outcome is not True
    ]
    return LoadResult(connections, size, verified, seconds, tuple(failures[:5]))
