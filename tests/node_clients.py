"""Clients of a fake node shared by the node and transport tests: an asyncssh login with the
node's own key and known_hosts, and a node running on a loop thread of its own."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncssh

from netfault.simulator.cluster.loop_thread import LoopThread
from netfault.simulator.node import FakeNode

TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def connect(
    node: FakeNode,
    known_hosts: Path | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """Log in to ``node`` (or to ``host:port``, e.g. a route to it) as its user."""
    async with asyncssh.connect(
        host or node.host,
        port or node.ssh_port,
        username=node.user,
        client_keys=[str(node.client_key.private_path)],
        known_hosts=str(known_hosts or node.known_hosts_path),
        connect_timeout=TIMEOUT,
    ) as conn:
        yield conn


@contextlib.contextmanager
def node_on_thread(name: str, host: str, ssh_server: str) -> Iterator[FakeNode]:
    """A started node serving from a loop thread of its own (for module-scoped fixtures)."""
    thread = LoopThread(name)
    thread.start()
    fake = FakeNode(name, host=host, ssh_server=ssh_server)
    try:
        thread.run(fake.start())
        yield fake
    finally:
        thread.run(fake.stop())
        thread.stop()
