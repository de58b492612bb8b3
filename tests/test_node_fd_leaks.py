"""Interrupted pulls over SSH channels leave no open pipe behind in the fake node."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
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


FAST_FAULTS: list[tuple[str | None, dict[str, int]]] = [
    ("reset", {}),
    ("reset", {"after_bytes": 40_000}),
    ("down", {}),
    ("corrupt_binary", {}),
    ("http_5xx", {}),
    (None, {}),
]


async def test_hundreds_of_faulted_transfers_leave_the_fd_count_at_its_baseline(
    tmp_path: Path,
) -> None:
    """One process hosting a 3-node cluster and the engine, as in a long soak run."""
    from netfault.simulator.cluster import LocalCluster

    rnd = random.Random(7)
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2_000_000))  # more than the pipes between a command and SSH hold
    quick = TransportConfig(connect_timeout=1.0, operation_timeout=5.0, http_timeout=2.0)
    outcomes: list[bool] = []
    async with LocalCluster(nodes=3, seed=1) as cluster, ClusterTransport() as ct:
        names = sorted(cluster.nodes)

        async def one(i: int) -> None:
            name = rnd.choice(names)
            kind, params = rnd.choice(FAST_FAULTS)
            applied = cluster.faults.apply(kind, name, **params) if kind else None
            direction = rnd.choice(["push", "pull"])
            local = src if direction == "push" else tmp_path / "back.bin"
            try:
                result = await ct.transfer_file(
                    local, f"f{i % 5}.bin", cluster.nodes[name], direction, quick
                )
            finally:
                if applied is not None:
                    cluster.faults.clear(applied)
            ct.reset_circuit_breakers()
            outcomes.append(result.success)

        for i in range(30):  # warm-up: connection pools and caches fill
            await one(i)
        baseline = open_fds()
        for i in range(30, 230):
            await one(i)
        after = await settled_fds(baseline)

    assert True in outcomes and False in outcomes  # faults did bite, transfers did succeed
    assert after <= baseline, f"{after - baseline} fds left open after 200 faulted transfers"
