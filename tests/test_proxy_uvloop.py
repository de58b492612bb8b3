"""The proxy on uvloop (what netfault-proxy uses when installed) loses no bytes."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest

from netfault.simulator.proxy import ProxyServer

uvloop = pytest.importorskip("uvloop")


def _sink(listener: socket.socket, digest: list[str]) -> None:
    conn, _ = listener.accept()
    h = hashlib.sha256()
    with conn:
        while data := conn.recv(1 << 20):
            h.update(data)
    digest.append(h.hexdigest())


def test_client_that_speaks_before_upstream_connects_loses_nothing_on_uvloop() -> None:
    payload = os.urandom(8 << 20)
    listener = socket.create_server(("127.0.0.1", 0))
    digest: list[str] = []
    sink = threading.Thread(target=_sink, args=(listener, digest), daemon=True)
    sink.start()
    server = ProxyServer("127.0.0.1", 0, seed=1)
    done = threading.Event()

    async def serve() -> None:
        await server.start()
        await server.collection.create("p", f"127.0.0.1:{listener.getsockname()[1]}", "127.0.0.1:0")
        done.set()
        await asyncio_wait(stop)

    stop = threading.Event()

    async def asyncio_wait(event: threading.Event) -> None:
        import asyncio

        await asyncio.to_thread(event.wait, 60)
        await server.aclose()

    runner = threading.Thread(target=lambda: uvloop.run(serve()), daemon=True)
    runner.start()
    assert done.wait(10)
    port = server.collection.get("p").port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(payload)  # at once, while the proxy may still be dialing upstream
    sink.join(30)
    stop.set()
    runner.join(30)
    listener.close()
    assert digest == [hashlib.sha256(payload).hexdigest()]
