"""The proxy reads into one reusable buffer per direction: a slow peer corrupts nothing.

A destination that takes a read only in part keeps a view of the rest (uvloop; asyncio
from 3.12), so the buffer must not be refilled before that is written. Both event loops,
with a bulk transfer moved by splice (zero-copy) and by the read/write path.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from netfault.simulator.proxy import ProxyServer, link, splice

PAYLOAD = 24 << 20


def _asyncio_run(main: Coroutine[Any, Any, None]) -> None:
    asyncio.run(main)


def _uvloop_run(main: Coroutine[Any, Any, None]) -> None:
    uvloop = pytest.importorskip("uvloop")
    uvloop.run(main)


class CountingSplice(splice.Splice):
    """A Splice that counts how many were started (the path a test means to take), or
    fails to start as with no descriptor left for its pipe."""

    started = 0
    no_descriptors = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.no_descriptors:
            raise OSError(errno.EMFILE, "Too many open files")
        super().__init__(*args, **kwargs)
        type(self).started += 1


@pytest.fixture(params=["splice", "read-write", "no-descriptor-for-a-pipe"])
def zero_copy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Whether bulk links may splice; checks afterwards that they did exactly then."""
    enabled = request.param == "splice"
    if request.param != "read-write" and not splice.AVAILABLE:
        pytest.skip("os.splice is Linux only")
    monkeypatch.setattr(splice, "AVAILABLE", request.param != "read-write")
    monkeypatch.setattr(link, "Splice", CountingSplice)
    monkeypatch.setattr(CountingSplice, "started", 0)
    monkeypatch.setattr(CountingSplice, "no_descriptors", request.param.startswith("no-"))
    yield enabled
    assert (CountingSplice.started > 0) == enabled


@pytest.fixture(params=["asyncio", "uvloop"])
def proxy(
    request: pytest.FixtureRequest, zero_copy: bool
) -> Iterator[tuple[ProxyServer, Callable[[int], int]]]:
    runner = _asyncio_run if request.param == "asyncio" else _uvloop_run
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    server = ProxyServer("127.0.0.1", 0, seed=1)
    started = threading.Event()
    stop = threading.Event()
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    async def serve() -> None:
        await server.start()
        holder["loop"] = asyncio.get_running_loop()
        started.set()
        await asyncio.to_thread(stop.wait, 120)
        await server.aclose()

    thread = threading.Thread(target=runner, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    loop = holder["loop"]

    def make(upstream: int) -> int:
        coro = server.collection.create("p", f"127.0.0.1:{upstream}", "127.0.0.1:0")
        asyncio.run_coroutine_threadsafe(coro, loop).result(10)
        return server.collection.get("p").port

    yield server, make
    stop.set()
    thread.join(30)


def _api(server: ProxyServer, method: str, path: str, body: Any = None) -> None:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.api_url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()


def _slow_echo(listener: socket.socket) -> None:
    """Echo back, reading in small, slow steps, so the proxy's writes to it stay partial."""
    conn, _ = listener.accept()
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)
            if len(data) < 4096:
                time.sleep(0.0005)


def _collect(sock: socket.socket, out: list[bytes]) -> None:
    h = hashlib.sha256()
    total = 0
    while data := sock.recv(1 << 16):
        h.update(data)
        total += len(data)
        if total < PAYLOAD // 4:
            time.sleep(0.0002)  # a slow client too, for the downstream writes
    out.append(h.digest())


def test_slow_peers_get_every_byte_in_order_both_ways(
    proxy: tuple[ProxyServer, Callable[[int], int]],
) -> None:
    _, make = proxy
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    echo = threading.Thread(target=_slow_echo, args=(listener,), daemon=True)
    echo.start()
    port = make(listener.getsockname()[1])
    payload = os.urandom(PAYLOAD)
    got: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        reader = threading.Thread(target=_collect, args=(client, got), daemon=True)
        reader.start()
        view = memoryview(payload)
        for start in range(0, PAYLOAD, 3 << 20):  # writes of a size no buffer matches
            client.sendall(view[start : start + (3 << 20)])
        client.shutdown(socket.SHUT_WR)
        reader.join(60)
    echo.join(10)
    listener.close()
    assert got == [hashlib.sha256(payload).digest()]


def test_toxic_added_and_removed_mid_stream_keeps_the_bytes(
    proxy: tuple[ProxyServer, Callable[[int], int]],
) -> None:
    server, make = proxy
    listener = socket.create_server(("127.0.0.1", 0))
    echo = threading.Thread(target=_slow_echo, args=(listener,), daemon=True)
    echo.start()
    port = make(listener.getsockname()[1])
    payload = os.urandom(PAYLOAD)
    quarter = PAYLOAD // 4
    toxics = [
        {"type": "noop", "stream": "upstream", "name": "up"},
        {"type": "latency", "stream": "downstream", "name": "down"},
    ]
    got: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        reader = threading.Thread(target=_collect, args=(client, got), daemon=True)
        reader.start()
        client.sendall(payload[:quarter])
        for toxic in toxics:
            _api(server, "POST", "/proxies/p/toxics", toxic)
        client.sendall(payload[quarter : 2 * quarter])
        for toxic in toxics:
            _api(server, "DELETE", f"/proxies/p/toxics/{toxic['name']}")
        client.sendall(payload[2 * quarter : 3 * quarter])
        _api(server, "POST", "/proxies/p/toxics", toxics[1])
        client.sendall(payload[3 * quarter :])
        client.shutdown(socket.SHUT_WR)
        reader.join(60)
    echo.join(10)
    listener.close()
    assert got == [hashlib.sha256(payload).digest()]
