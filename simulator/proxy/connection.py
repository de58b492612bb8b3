"""A proxied TCP connection: two sockets, two links, and how it ends (EOF, close or RST)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable, Sequence
from typing import cast

from netfault.simulator.proxy.link import ByteCounter, Link
from netfault.simulator.proxy.spec import ToxicSpec
from netfault.simulator.proxy.trace import FaultTrace

CONNECT_TIMEOUT = 10.0
# A destination that cannot take a whole read at once pauses its source until every byte
# is written (the kernel's socket buffers do the queueing); the link then reads into the
# same buffer again instead of allocating one, and uvloop's transport, which keeps a view
# of what it could not send, never sees that buffer change under it.
WRITE_HIGH = 0
WRITE_LOW = 0


class Endpoint(asyncio.BufferedProtocol):
    """One socket of a proxied connection; feeds one link and is written by the other.

    Reads go straight into the inbound link's buffer (no bytes object per read).
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.inbound: Link | None = None  # link this socket's bytes feed
        self.outbound: Link | None = None  # link that writes into this socket
        self._fd: int | None = None  # a duplicate of the socket's descriptor, for splicing

    def fd(self) -> int | None:
        """A descriptor of this socket the loop may watch besides its transport (a duplicate,
        made once, closed with the connection); None if the socket is gone."""
        if self._fd is None:
            sock = None if self.transport is None else self.transport.get_extra_info("socket")
            if sock is None or sock.fileno() < 0:
                return None
            self._fd = os.dup(sock.fileno())
        return self._fd

    def release_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.conn.endpoint_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        assert self.inbound is not None
        return self.inbound.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        assert self.inbound is not None
        self.inbound.buffer_updated(nbytes)

    def eof_received(self) -> bool:
        if self.inbound is not None:
            self.inbound.feed_eof()
        return True  # keep the socket for the other direction (half-close)

    def pause_writing(self) -> None:
        if self.outbound is not None:
            self.outbound.set_dst_paused(True)

    def resume_writing(self) -> None:
        if self.outbound is not None:
            self.outbound.set_dst_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        # Closed or reset by its peer: the other side is closed after what this one sent
        # (which may still wait for the upstream connection or a toxic) has been written.
        if self.inbound is not None and not self.conn.closed:
            self.inbound.feed_close()


class Connection:
    """Client socket <-> upstream socket, with the upstream and downstream links between."""

    def __init__(
        self,
        *,
        proxy_name: str,
        number: int,
        seed: int,
        counters: dict[str, ByteCounter],
        toxics: Sequence[ToxicSpec],
        on_closed: Callable[[Connection], None],
        trace: FaultTrace | None = None,
    ) -> None:
        self.proxy_name = proxy_name
        self.trace = trace
        self.number = number
        self.ready = False
        self.closed = False
        self.refused = False  # a toxic turned it away: never dialled, reset at the first byte
        self._on_closed = on_closed
        self.client = Endpoint(self)
        self.server = Endpoint(self)
        self.upstream = Link(
            self, "upstream", self.client, self.server, seed=seed, counter=counters["upstream"]
        )
        self.downstream = Link(
            self, "downstream", self.server, self.client, seed=seed, counter=counters["downstream"]
        )
        self.client.inbound = self.server.outbound = self.upstream
        self.server.inbound = self.client.outbound = self.downstream
        for spec in toxics:
            self.link(spec.direction).add_toxic(spec)
        self._connect_task: asyncio.Task[None] | None = None

    def link(self, direction: str) -> Link:
        return self.upstream if direction == "upstream" else self.downstream

    def endpoint_made(self, endpoint: Endpoint) -> None:
        if self.closed:
            assert endpoint.transport is not None
            endpoint.transport.close()
        elif endpoint is self.client and not self.refused:
            assert endpoint.transport is not None
            endpoint.transport.pause_reading()  # nothing moves until upstream answers
            self.upstream.src_paused = True

    def start(self, host: str, port: int) -> None:
        if self.refused:
            return
        self._connect_task = asyncio.get_running_loop().create_task(self._connect(host, port))

    async def _connect(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(lambda: self.server, host, port)
        except (OSError, TimeoutError):
            self.close()  # Toxiproxy accepts, then closes with EOF
            return
        if self.closed:
            if self.server.transport is not None:
                self.server.transport.close()
            return
        self.ready = True
        self.upstream.flush()
        self.downstream.flush()

    def refuse(self) -> None:
        """Never dial the upstream: the client is read at once, and its first byte or its
        end of stream resets it (a toxic decides this as the connection opens)."""
        self.refused = True
        self.ready = True  # nothing to wait for before reading the client

    def link_finished(self) -> None:
        if self.upstream.finished and self.downstream.finished:
            self.close()

    def close(self, *, abort: bool = False) -> None:
        """Close both sockets (peers see EOF); queued bytes are written first unless `abort`."""
        if self.closed:
            return
        self.closed = True
        self._teardown()
        for endpoint in (self.client, self.server):
            if endpoint.transport is not None:
                if abort:
                    endpoint.transport.abort()
                else:
                    endpoint.transport.close()
        self._on_closed(self)

    def reset(self) -> None:
        """Abort both sockets with SO_LINGER 0 so the peers see a TCP RST."""
        if self.closed:
            return
        self.closed = True
        self._teardown()
        for endpoint in (self.client, self.server):
            transport = endpoint.transport
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                linger = struct.pack("ii", 1, 0)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                except OSError:
                    pass  # already gone; abort() below still closes it
            transport.abort()
        self._on_closed(self)

    def _teardown(self) -> None:
        self.upstream.shutdown()
        self.downstream.shutdown()
        # after the links stopped watching them, before the transports close their sockets
        # (a duplicate left open would keep a socket alive and its peer waiting for the FIN)
        self.client.release_fd()
        self.server.release_fd()
        task = self._connect_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
