"""A proxied connection's life cycle on both event loops: every data, EOF, reset and close
reaches the other side in order, even before the upstream connection exists, and nothing
is left open afterwards."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from netfault.simulator.proxy import ProxyServer
from netfault.simulator.proxy.link import HIGH_WATER

T = TypeVar("T")
WAIT = 30.0  # seconds any single step may take on a loaded machine before the test fails


@dataclass
class Harness:
    """A proxy server running on its own thread and event loop."""

    server: ProxyServer
    loop: asyncio.AbstractEventLoop
    errors: list[str] = field(default_factory=list)  # what reached the loop's error handler

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def make(self, upstream: int, name: str = "p") -> int:
        self.call(self.server.collection.create(name, f"127.0.0.1:{upstream}", "127.0.0.1:0"))
        return self.server.collection.get(name).port

    def api(self, method: str, path: str, body: object = None) -> int:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server.api_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=WAIT) as reply:
            reply.read()
            return int(reply.status)

    def connections(self, name: str = "p") -> int:
        async def count() -> int:
            return self.server.collection.get(name).connection_count

        return self.call(count())

    def received(self, stream: str, name: str = "p") -> int:
        async def count() -> int:
            return self.server.collection.get(name).counters[stream].received

        return self.call(count())

    def sent(self, stream: str, name: str = "p") -> int:
        async def count() -> int:
            return self.server.collection.get(name).counters[stream].sent

        return self.call(count())


def _run(loop_name: str, main: Coroutine[Any, Any, None]) -> None:
    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


@pytest.fixture(params=["asyncio", "uvloop"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    server = ProxyServer("127.0.0.1", 0, seed=1)
    started = threading.Event()
    stop = threading.Event()
    box: list[Harness] = []

    async def serve() -> None:
        await server.start()
        loop = asyncio.get_running_loop()
        box.append(Harness(server, loop))
        loop.set_exception_handler(lambda _, ctx: box[0].errors.append(repr(ctx)))
        started.set()
        await asyncio.to_thread(stop.wait, 300)
        await server.aclose()

    thread = threading.Thread(target=_run, args=(request.param, serve()), daemon=True)
    thread.start()
    assert started.wait(WAIT)
    yield box[0]
    stop.set()
    thread.join(WAIT)
    assert box[0].errors == []


def wait_for(what: str, predicate: Callable[[], bool]) -> None:
    """Poll `predicate` until it holds; fail naming `what` after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {WAIT} s for: {what}")
        time.sleep(0.005)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def reset_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a TCP RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def recv_to_end(sock: socket.socket) -> bytes:
    out = bytearray()
    while data := sock.recv(1 << 16):
        out += data
    return bytes(out)


class Upstream:
    """A loopback server handling each accepted connection with `handle` on a thread."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._handle = handle
        self._threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # listener closed
            conn.settimeout(WAIT)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            self._handle(conn)

    def close(self) -> None:
        self.listener.close()
        for thread in list(self._threads):
            thread.join(WAIT)


def test_connect_and_close_at_once_reaches_upstream_and_leaves_no_socket(
    harness: Harness,
) -> None:
    seen: list[bytes] = []
    upstream = Upstream(lambda conn: seen.append(conn.recv(10)))
    port = harness.make(upstream.port)
    before = open_fds()
    for _ in range(50):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    wait_for("50 upstream connections to see EOF", lambda: len(seen) == 50)
    wait_for("the proxy to close every connection", lambda: harness.connections() == 0)
    wait_for(f"the fd count to return to {before}", lambda: open_fds() == before)
    upstream.close()
    assert seen == [b""] * 50


def test_data_and_half_close_sent_before_upstream_exists_arrive_in_order(
    harness: Harness,
) -> None:
    def reply_after_eof(conn: socket.socket) -> None:
        got = recv_to_end(conn)
        conn.sendall(b"got " + got)

    upstream = Upstream(reply_after_eof)
    port = harness.make(upstream.port)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
            client.sendall(b"hello")
            client.shutdown(socket.SHUT_WR)  # half-close: the answer still comes back
            assert recv_to_end(client) == b"got hello"
    wait_for("the proxy to close every connection", lambda: harness.connections() == 0)
    upstream.close()


def test_client_reset_before_upstream_exists_closes_the_upstream_side(
    harness: Harness,
) -> None:
    seen: list[bytes] = []
    upstream = Upstream(lambda conn: seen.append(recv_to_end(conn)))
    port = harness.make(upstream.port)
    before = open_fds()
    for _ in range(20):
        reset_close(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
    wait_for("20 upstream connections to end", lambda: len(seen) == 20)
    wait_for("the proxy to close every connection", lambda: harness.connections() == 0)
    wait_for(f"the fd count to return to {before}", lambda: open_fds() == before)
    upstream.close()
    assert seen == [b""] * 20


def test_upstream_that_speaks_and_closes_first_is_seen_whole_by_the_client(
    harness: Harness,
) -> None:
    upstream = Upstream(lambda conn: conn.sendall(b"banner\r\n"))
    port = harness.make(upstream.port)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
            assert recv_to_end(client) == b"banner\r\n"
    upstream.close()


def test_unreachable_upstream_gives_the_client_eof(harness: Harness) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = harness.make(closed.getsockname()[1])
    closed.close()  # nothing listens there any more
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
        assert recv_to_end(client) == b""
    wait_for("the proxy to close the connection", lambda: harness.connections() == 0)


@pytest.mark.parametrize("how", ["toxic-deleted", "toxic-timer"])
def test_toxics_released_onto_reset_sockets_close_cleanly(harness: Harness, how: str) -> None:
    """The EOF a slow_close toxic holds is released onto an upstream socket that was reset
    while the proxy was not reading it: the connection closes, the API answers 204."""
    conns = 5
    reset_now = threading.Event()

    def flood_then_reset(conn: socket.socket) -> None:
        conn.setblocking(False)
        block = b"d" * (64 << 10)
        while not reset_now.is_set():
            try:
                conn.send(block)
            except BlockingIOError:
                reset_now.wait(0.01)
        conn.setblocking(True)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    upstream = Upstream(flood_then_reset)
    port = harness.make(upstream.port)
    # deleted: both toxics hold until deleted; timer: the EOF leaves first, the data later
    hold, down = (60_000, 60_000) if how == "toxic-deleted" else (300, 2_000)
    harness.api(
        "POST",
        "/proxies/p/toxics",
        {"name": "down", "type": "latency", "attributes": {"latency": down}},
    )
    harness.api(
        "POST",
        "/proxies/p/toxics",
        {"name": "up", "type": "slow_close", "stream": "upstream", "attributes": {"delay": hold}},
    )
    clients = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(conns)]
    # the downstream toxic holds over HIGH_WATER bytes per connection: reading upstream stops
    wait_for(
        "the proxy to stop reading upstream",
        lambda: harness.received("downstream") > conns * HIGH_WATER,
    )
    for client in clients:
        client.shutdown(socket.SHUT_WR)  # an EOF the upstream toxic holds
    reset_now.set()
    upstream.close()  # every upstream socket is reset now
    if how == "toxic-deleted":
        assert harness.api("DELETE", "/proxies/p/toxics/up") == 204
        assert harness.api("DELETE", "/proxies/p/toxics/down") == 204
    for client in clients:
        with client:
            try:
                recv_to_end(client)
            except ConnectionResetError:
                pass  # an aborted connection may reach the client as a reset
    wait_for("the proxy to close every connection", lambda: harness.connections() == 0)


BULK = 8 << 20  # a bulk transfer: the proxy splices it where it can (splice.py)


def test_bulk_upload_half_close_and_answer_arrive_whole_and_counted(harness: Harness) -> None:
    def answer_after_eof(conn: socket.socket) -> None:
        got = recv_to_end(conn)
        conn.sendall(hashlib.sha256(got).digest() + got)

    upstream = Upstream(answer_after_eof)
    port = harness.make(upstream.port)
    before = open_fds()
    payload = os.urandom(BULK)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            assert recv_to_end(client) == hashlib.sha256(payload).digest() + payload
    wait_for("the proxy to close every connection", lambda: harness.connections() == 0)
    wait_for(f"the fd count to return to {before}", lambda: open_fds() == before)
    upstream.close()
    assert harness.received("upstream") == harness.sent("upstream") == 3 * BULK
    assert harness.received("downstream") == harness.sent("downstream") == 3 * (BULK + 32)


@pytest.mark.parametrize("who", ["client", "upstream"])
def test_reset_in_the_middle_of_a_bulk_transfer_closes_the_other_side(
    harness: Harness, who: str
) -> None:
    """A reset from either peer while bytes stream through: the other peer's connection
    ends (EOF or reset), the proxy lets go of it, its loop reports no error."""
    started = threading.Event()
    ended: list[str] = []

    def read_then_maybe_reset(conn: socket.socket) -> None:
        conn.recv(1 << 16)
        started.set()
        if who == "upstream":
            reset_close(conn)
            ended.append("reset")
            return
        try:
            recv_to_end(conn)
        except ConnectionResetError:
            pass
        ended.append("end")

    upstream = Upstream(read_then_maybe_reset)
    port = harness.make(upstream.port)
    before = open_fds()
    client = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sender = threading.Thread(target=_stream_until_refused, args=(client,), daemon=True)
    sender.start()
    assert started.wait(WAIT)
    if who == "client":
        reset_close(client)  # the sender's next send fails and it stops
    sender.join(WAIT)
    client.close()
    wait_for("the upstream handler to finish", lambda: len(ended) == 1)
    wait_for("the proxy to close the connection", lambda: harness.connections() == 0)
    wait_for(f"the fd count to return to {before}", lambda: open_fds() == before)
    upstream.close()


def _stream_until_refused(sock: socket.socket) -> None:
    block = os.urandom(1 << 20)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            sock.sendall(block)
        except OSError:
            return  # reset, or closed under us by the test
