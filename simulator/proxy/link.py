"""One direction of a proxied connection: a pass-through fast path, or the toxic chain."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from netfault.simulator.proxy import rng, splice
from netfault.simulator.proxy.spec import ToxicSpec
from netfault.simulator.proxy.spin import spinner_for
from netfault.simulator.proxy.splice import Splice
from netfault.simulator.proxy.toxics import Chunk, Kind, ToxicState
from netfault.simulator.proxy.trace import FaultAction, toxic_event

if TYPE_CHECKING:
    from netfault.simulator.proxy.connection import Connection, Endpoint

# Reading from the source pauses while more than HIGH bytes wait in the chain.
HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10
# Bytes read from the source per recv: one buffer per link, reused while the destination
# transport holds none of it. It starts at one page (a connection costs little to set up:
# 64 KiB zeroed per link was 37 us and 128 KiB resident per idle connection, a tenth of the
# time a 200-node cluster took to accept its first connection on every route) and grows to
# READ_SIZE once a read fills it.
FIRST_READ_SIZE = 4 << 10
READ_SIZE = 1 << 20


@dataclass(slots=True)
class _Active:
    spec: ToxicSpec
    state: ToxicState
    active: bool


class ByteCounter:
    """Bytes received from the source and sent to the destination of one direction."""

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0


class Link:
    """Moves bytes from `src` to `dst`; implements the LinkContext toxics act through."""

    def __init__(
        self,
        conn: Connection,
        direction: str,
        src: Endpoint,
        dst: Endpoint,
        *,
        seed: int,
        counter: ByteCounter,
    ) -> None:
        self._conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self.seed = seed
        self.proxy = conn.proxy_name
        self.conn = conn.number
        self._counter = counter
        self._loop = asyncio.get_running_loop()
        self._toxics: list[_Active] = []
        self._transparent = True  # every active toxic passes bytes through at once
        self._pending: deque[Chunk] = deque()
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._dst_paused = False
        self.src_paused = False
        self.finished = False  # end of stream written to dst
        self._splice: Splice | None = None  # the zero-copy path, while it runs
        self._src_ended = False  # the splice read the source's end: its transport stays paused
        self._splice_failed = False
        self._view = memoryview(bytearray(FIRST_READ_SIZE))
        self._spinner = spinner_for(self._loop)

    # --- LinkContext -------------------------------------------------------------------
    def now(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self._loop.call_at(when, callback)

    def close(self) -> None:
        self._conn.close()

    def reset(self) -> None:
        self._conn.reset()

    def refuse(self) -> None:
        self._conn.refuse()

    # --- data from the source ------------------------------------------------------------
    def get_buffer(self) -> memoryview:
        """Where the source's next read lands (a fresh one if dst still holds the last)."""
        transport = self.dst.transport
        if transport is not None and transport.get_write_buffer_size():
            # uvloop (and asyncio from 3.12) keep a view of unsent bytes, not a copy
            self._view = memoryview(bytearray(len(self._view)))
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        """`nbytes` arrived in the buffer `get_buffer` returned."""
        self._spinner.poke()
        transport = self.dst.transport
        if not self._transparent or self._pending or transport is None:
            if not self._conn.ready and self.src.transport is not None:
                # uvloop ignores a pause from connection_made but honours one from here;
                # without it a connection read its peer's bytes into memory until HIGH_WATER
                self.src.transport.pause_reading()
            self.feed(bytes(self._view[:nbytes]))  # toxics and the queue keep their own copy
            return
        # fast path: nothing queued, no toxic or only ones that pass bytes through at once
        for act in self._toxics:
            if act.active:
                act.state.offset += nbytes  # as if the chain had seen them
        self._counter.received += nbytes
        if transport.is_closing() or self.finished:
            return
        transport.write(self._view[:nbytes])
        self._counter.sent += nbytes
        if nbytes >= FIRST_READ_SIZE and splice.AVAILABLE and self._start_splice():
            return  # a bulk transfer: the kernel moves the rest
        if nbytes == len(self._view) < READ_SIZE:
            self._view = memoryview(bytearray(READ_SIZE))  # a bulk transfer: read more at once

    def feed(self, data: bytes) -> None:
        self._counter.received += len(data)
        if not self._toxics and not self._pending and self.dst.transport is not None:
            self._write(data)  # fast path: no toxic, nothing queued
            return
        chunks = [Chunk(data, self._loop.time())]
        for act in self._toxics:
            if not act.active:
                continue
            passed: list[Chunk] = []
            for chunk in chunks:
                if chunk.kind is not Kind.DATA:
                    passed.append(chunk)
                    continue
                size = len(chunk.data)
                passed.extend(act.spec.toxic.transform(chunk, self, act.state))
                act.state.offset += size
            chunks = passed
        for chunk in chunks:
            self._pending.append(chunk)
            self._pending_bytes += len(chunk.data)
        self.flush()

    def feed_eof(self) -> None:
        when = self._loop.time()
        for act in self._toxics:
            if act.active:
                when = act.spec.toxic.eof_time(when, self, act.state)
        self._feed_end(Kind.EOF, when)

    def feed_close(self) -> None:
        """The source socket is gone: close the connection once what it sent is written."""
        self._feed_end(Kind.CLOSE, self._loop.time())

    def _feed_end(self, kind: Kind, when: float) -> None:
        if self._conn.refused:
            self._conn.reset()  # closed before a byte: no upstream to pass the end to
            return
        # An end marker waits behind queued bytes and for the destination socket to exist
        # (an EOF may arrive before the upstream connection does).
        if self._pending:
            when = max(when, self._pending[-1].t)
        elif when <= self._loop.time() and self.dst.transport is not None:
            self._end(kind)
            return
        self._pending.append(Chunk(b"", when, kind))
        self.flush()

    def _end(self, kind: Kind) -> None:
        if kind is Kind.EOF:
            self._write_eof()
        elif kind is Kind.RESET:
            self._conn.reset()
        else:
            self._conn.close()

    # --- data to the destination ---------------------------------------------------------
    def flush(self) -> None:
        """Write every queued chunk whose time has come; arm a timer for the next one."""
        now = self._loop.time()
        # bytes that arrive before the upstream socket exists wait here (pause_reading in
        # connection_made is not honoured by every event loop, e.g. uvloop)
        while self._pending and not self._dst_paused and self.dst.transport is not None:
            head = self._pending[0]
            if head.t > now:
                self._arm(head.t)
                break
            self._pending.popleft()
            self._pending_bytes -= len(head.data)
            if head.kind is Kind.DATA:
                self._write(head.data)
            elif head.kind is Kind.EOF:
                self._write_eof()
            else:
                self._end(head.kind)
                return
        if not self._conn.closed:
            self.sync_reading()

    def _arm(self, when: float) -> None:
        if self._timer is not None and self._timer_when == when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def _write(self, data: bytes) -> None:
        transport = self.dst.transport
        if transport is None or transport.is_closing() or self.finished:
            return
        transport.write(data)
        self._counter.sent += len(data)

    def _write_eof(self) -> None:
        if self.finished:
            return
        self.finished = True
        transport = self.dst.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            try:
                transport.write_eof()
            except OSError:
                # Reset by its peer while nothing read it (ENOTCONN): a lost socket, handled
                # by connection_lost as on an event loop that reports this asynchronously.
                transport.abort()
                return
        self._conn.link_finished()

    # --- zero-copy pass-through (splice.py) --------------------------------------------------
    def _start_splice(self) -> bool:
        """Move this direction's bytes with splice from now on, if nothing stands between
        the sockets (no toxic that acts, nothing queued); True if it started. What dst's
        transport has not sent yet goes first: the splice writes once it has drained."""
        src, dst = self.src.transport, self.dst.transport
        if (
            self._splice is not None
            or self._splice_failed
            or not self._transparent
            or self._pending
            or self.finished
            or not self._conn.ready
            or self._conn.closed
            or src is None
            or dst is None
            or src.is_closing()
            or dst.is_closing()
        ):
            return False
        try:
            src_fd, dst_fd = self.src.fd(), self.dst.fd()
            if src_fd is None or dst_fd is None:
                return False
            pipe = Splice(
                self._loop, src_fd, dst_fd, self, writable=not dst.get_write_buffer_size()
            )
        except OSError:
            self._splice_failed = True  # no descriptor left: the transports carry on
            return False
        src.pause_reading()  # the splice reads from here on; the transport only writes
        self.src_paused = True
        self._splice = pipe
        pipe.read()  # what came after this read, at once, as the transport would have
        return True

    def _stop_splice(self) -> None:
        """Back to reading through the transport; what the pipe holds is written on first
        (it arrived before whatever stopped the splice, as if already written)."""
        running, self._splice = self._splice, None
        if running is None:
            return
        held = running.close()
        if held:
            self._write(held)
        if not self._conn.closed:
            self.sync_reading()

    def spliced_in(self, nbytes: int) -> None:
        self._spinner.poke()
        self._counter.received += nbytes
        for act in self._toxics:
            if act.active:
                act.state.offset += nbytes  # as if the chain had seen them

    def spliced_out(self, nbytes: int) -> None:
        self._counter.sent += nbytes

    def splice_eof(self) -> None:
        self._src_ended = True
        self._stop_splice()
        self.feed_eof()

    def splice_source_lost(self) -> None:
        # reset by its peer: as the transport's connection_lost would report it
        self._src_ended = True
        self._stop_splice()
        self.feed_close()

    def splice_destination_lost(self) -> None:
        # the splice has stopped; the transport reports the lost socket as a failed write
        # would, through connection_lost (which closes the connection)
        self._splice = None
        transport = self.dst.transport
        if transport is not None:
            transport.abort()

    # --- flow control ------------------------------------------------------------------
    def set_dst_paused(self, paused: bool) -> None:
        self._dst_paused = paused
        if paused:
            self.sync_reading()
        else:
            self.flush()
            if self._splice is not None:
                self._splice.release()

    def sync_reading(self) -> None:
        if self._splice is not None or self._src_ended:
            return  # the transport stays paused: the splice reads, or the source has ended
        limit = LOW_WATER if self.src_paused else HIGH_WATER
        want = self._dst_paused or self._pending_bytes > limit or not self._conn.ready
        if want == self.src_paused:
            return
        transport = self.src.transport
        if transport is None:
            return
        self.src_paused = want
        if want:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # --- toxic changes on an open connection ---------------------------------------------
    def add_toxic(self, spec: ToxicSpec, *, late: bool = False) -> None:
        """Add `spec`; `late` if the connection may already have carried bytes."""
        state = ToxicState(name=spec.name, trace=self._conn.trace, offsets_exact=not late)
        act = _Active(spec, state, self._draw(spec))
        self._toxics.append(act)
        if act.active:
            spec.toxic.start(self, act.state)
        self._retune()

    def update_toxic(self, spec: ToxicSpec) -> None:
        for act in self._toxics:
            if act.spec.name == spec.name:
                act.spec.toxic.stop(self, act.state)
                act.spec = spec
                act.state.offsets_exact = False
                act.active = self._draw(spec)
                if act.active:
                    spec.toxic.start(self, act.state)
        self._retune()
        self._release_held()

    def remove_toxic(self, name: str) -> None:
        for index, act in enumerate(self._toxics):
            if act.spec.name == name:
                del self._toxics[index]
                act.spec.toxic.stop(self, act.state)
                act.spec.toxic.removed(self, act.state)
                break
        self._retune()
        self._release_held()

    def shutdown(self) -> None:
        """Stop every timer; the connection is going away."""
        self._stop_splice()
        for act in self._toxics:
            act.state.cancel_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        self._pending_bytes = 0

    def _retune(self) -> None:
        self._transparent = all(not a.active or a.spec.toxic.passes_through() for a in self._toxics)
        if not self._transparent:
            self._stop_splice()  # bytes from now on go through the chain

    def _release_held(self) -> None:
        # An interrupted toxic lets go of what it holds, as Toxiproxy's do.
        now = self._loop.time()
        for chunk in self._pending:
            chunk.t = min(chunk.t, now)
        self.flush()

    def _draw(self, spec: ToxicSpec) -> bool:
        keys = (self.proxy, self.conn, self.direction, spec.name, "toxicity", spec.version)
        active = rng.uniform(self.seed, *keys) < spec.toxicity
        trace = self._conn.trace
        if not active and trace is not None and trace.active:
            action, now = FaultAction.TOXIC_SKIPPED, self._loop.time()
            trace.emit(
                toxic_event(
                    action, self.proxy, spec.name, spec.type, self.direction, self.conn, now
                )
            )
        return active
