"""Zero-copy pass-through: socket -> pipe -> socket with os.splice, bytes never in Python.

A link whose active toxics all pass bytes through at once moves a bulk transfer this way:
the kernel hands the source socket's pages to a pipe and the pipe's pages to the
destination socket, instead of copying every byte into the proxy and out again (the
proxy's share of a relay's CPU is mostly those two copies and the network stack). The
event loop's transports still own both sockets; the link pauses the source transport and
polls a duplicate of each socket's descriptor (a loop refuses a second watcher on a
transport's own one). Linux only; elsewhere links keep their read/write path.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sys
from typing import Protocol

AVAILABLE = sys.platform == "linux" and hasattr(os, "splice")
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0) | getattr(os, "SPLICE_F_NONBLOCK", 0)
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# What one splice moves at most: the pipe's capacity. 1 MiB is the unprivileged maximum
# (fs.pipe-max-size); a user over the pipe quota gets a smaller pipe, which still works.
PIPE_SIZE = 1 << 20
# Pipefuls one reader callback moves before it lets other connections have the loop.
READS_PER_TURN = 16


class SpliceOwner(Protocol):
    """What a splice reports to the link that runs it."""

    def spliced_in(self, nbytes: int) -> None: ...

    def spliced_out(self, nbytes: int) -> None: ...

    def splice_eof(self) -> None: ...

    def splice_source_lost(self) -> None: ...

    def splice_destination_lost(self) -> None: ...


class Splice:
    """Moves bytes from `src_fd` to `dst_fd` through a pipe, from loop reader callbacks.

    Reads stop while the destination cannot take what the pipe holds (so the source's
    peer sees TCP back-pressure, as with the transports), and resume once it has. With
    `writable` False nothing is written before `release()`: the destination's transport
    still has bytes of its own to send first.
    """

    __slots__ = (
        "_closed",
        "_dst",
        "_eof",
        "_held",
        "_loop",
        "_owner",
        "_r",
        "_reading",
        "_src",
        "_w",
        "_writable",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        src_fd: int,
        dst_fd: int,
        owner: SpliceOwner,
        *,
        writable: bool = True,
    ) -> None:
        self._loop = loop
        self._src = src_fd
        self._dst = dst_fd
        self._owner = owner
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self._w, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # the default 64 KiB pipe moves the same bytes in more calls
        self._held = 0  # bytes in the pipe, read from the source, not yet written
        self._eof = False  # the source ended; report it once the pipe is empty
        self._closed = False
        self._writable = writable
        self._reading = False
        self._start_reading()

    @property
    def held(self) -> int:
        return self._held

    def _start_reading(self) -> None:
        self._reading = True
        self._loop.add_reader(self._src, self._on_readable)

    def _stop_reading(self) -> None:
        self._reading = False
        self._loop.remove_reader(self._src)

    def read(self) -> None:
        """Read now what the source holds, as its reader callback would."""
        self._on_readable()

    def _on_readable(self) -> None:
        # Read until the socket is empty, ends or fails, or the destination is full: after
        # an error event (a reset) uvloop calls a reader once and stops watching its
        # descriptor, so the bytes before the reset and the reset itself are taken now.
        for _ in range(READS_PER_TURN):
            if not self._reading:
                return  # stopped, or waiting for the destination (which restarts reading)
            try:
                nbytes = os.splice(self._src, self._w, PIPE_SIZE, flags=_FLAGS)
            except BlockingIOError:
                return
            except OSError:
                self._stop_reading()
                self._owner.splice_source_lost()
                return
            if not nbytes:
                self._stop_reading()
                self._eof = True
                if not self._held:
                    self._owner.splice_eof()
                return
            self._held += nbytes
            self._owner.spliced_in(nbytes)
            self._push()
        self._loop.call_soon(self._on_readable)  # more to read: after the loop's other work

    def release(self) -> None:
        """The destination's transport has sent its own bytes: write from the pipe now."""
        if self._writable or self._closed:
            return
        self._writable = True
        self._on_writable()

    def _push(self) -> None:
        if not self._writable:
            self._stop_reading()  # one pipeful waits for release()
            return
        while self._held and not self._closed:
            try:
                nbytes = os.splice(self._r, self._dst, self._held, flags=_FLAGS)
            except (BlockingIOError, InterruptedError):
                # the destination is full: stop reading until it takes the pipe's bytes
                self._stop_reading()
                self._loop.add_writer(self._dst, self._on_writable)
                return
            except OSError:
                self.close()
                self._owner.splice_destination_lost()
                return
            self._held -= nbytes
            self._owner.spliced_out(nbytes)

    def _on_writable(self) -> None:
        self._loop.remove_writer(self._dst)
        self._push()
        if self._held or self._closed or not self._writable:
            return
        if self._eof:
            self._owner.splice_eof()
        else:
            self._start_reading()

    def close(self) -> bytes:
        """Stop; the bytes read but not yet written (the caller writes them on)."""
        if self._closed:
            return b""
        self._closed = True
        self._stop_reading()
        self._loop.remove_writer(self._dst)
        held = bytearray()
        while len(held) < self._held:
            try:
                data = os.read(self._r, self._held - len(held))
            except BlockingIOError:
                break
            if not data:
                break
            held += data
        self._held = 0
        os.close(self._r)
        os.close(self._w)
        return bytes(held)
