"""Interrupted pulls over SSH channels leave no open pipe behind in the fake node."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netfault.engine.config import TransportConfig
from netfault.engine.transport import ClusterTransport
from netfault.simulator.node import FakeNode

CONFIG = TransportConfig(connect_timeout=5.0, operation_timeout=30.0, http_timeout=10.0)
SIZE = 32 * 1024 * 1024
SETTLE_TIMEOUT = 30.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled_fds(baseline: int) -> int:
    """The open fd count once it is back at ``baseline``, or after SETTLE_TIMEOUT.

    Sockets and pipes close asynchronously after a cancelled pull, and the kernel's fd table
    has no event to wait on, so the count is polled until it settles (not slept on blindly).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    while (count := open_fds()) > baseline and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return count


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("node-fd", host="127.0.0.72") as fake:
        big = fake.home / "data" / "big.bin"
        await asyncio.to_thread(big.write_bytes, os.urandom(SIZE))
        yield fake


async def interrupted_pull(ct: ClusterTransport, node: FakeNode, name: str, dest: Path) -> None:
    """Start a pull and cancel it once the first bytes arrived (a Ctrl-C mid-transfer)."""
    started = asyncio.Event()

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            started.set()

    pull = asyncio.create_task(
        ct.transfer_file(
            dest, "big.bin", node.node_config(), "pull", CONFIG, transports=[name],
            progress=progress,
        )
    )  # fmt: skip
    waiter = asyncio.create_task(started.wait())
    async with asyncio.timeout(60):
        done, _ = await asyncio.wait([pull, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert pull not in done, f"{name} pull finished before it could be interrupted"
    pull.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pull


@pytest.mark.parametrize("name", ["ssh", "rsync", "base64"])
async def test_twenty_interrupted_pulls_leave_the_fd_count_at_its_baseline(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    async with ClusterTransport() as ct:
        await interrupted_pull(ct, node, name, tmp_path / "warm-up.bin")
        baseline = open_fds()
        for i in range(20):
            await interrupted_pull(ct, node, name, tmp_path / f"pull-{i}.bin")
        after = await settled_fds(baseline)

    assert after <= baseline, f"{after - baseline} fds left open after 20 interrupted pulls"
