"""The scp transport on its one OpenSSH connection: a cut that takes the connection away
mid-copy is a reset (the master says why), and nothing lands under the final name."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from netfault.engine.config import TransportConfig
from netfault.engine.errors import ConnectionReset
from netfault.engine.transports.scp import ScpTransport
from netfault.simulator.cluster import LocalCluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONFIG = TransportConfig(connect_timeout=5.0, operation_timeout=30.0)
NODE = "node-1"
SIZE = 2 * 1024 * 1024
CUT = 256 * 1024  # past the handshake and the prepare step, well before the end of the copy


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[LocalCluster]:
    async with LocalCluster(nodes=1, seed=7) as c:
        yield c


async def test_a_push_cut_mid_copy_is_a_reset_and_leaves_nothing_under_the_final_name(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    local = tmp_path / "cut.bin"
    local.write_bytes(os.urandom(SIZE))
    fault = cluster.faults.apply("reset", NODE, route="hostname", service="ssh", after_bytes=CUT)
    try:
        with pytest.raises(ConnectionReset):
            await ScpTransport().push(cluster.node(NODE), local, "cut.bin", CONFIG)
    finally:
        cluster.faults.clear(fault)
    assert not cluster.home_path(NODE, "cut.bin").exists()
    # the same push, once the route is sound again, lands whole on one connection
    assert await ScpTransport().push(cluster.node(NODE), local, "cut.bin", CONFIG) == SIZE
    assert cluster.home_path(NODE, "cut.bin").read_bytes() == local.read_bytes()


async def test_a_pull_cut_mid_copy_is_a_reset_and_leaves_no_local_file(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    remote = cluster.home_path(NODE, "source.bin")
    remote.parent.mkdir(parents=True, exist_ok=True)
    remote.write_bytes(data)
    local = tmp_path / "source.bin"
    fault = cluster.faults.apply("reset", NODE, route="hostname", service="ssh", after_bytes=CUT)
    try:
        with pytest.raises(ConnectionReset):
            await ScpTransport().pull(cluster.node(NODE), "source.bin", local, CONFIG)
    finally:
        cluster.faults.clear(fault)
    assert not local.exists()
    assert await ScpTransport().pull(cluster.node(NODE), "source.bin", local, CONFIG) == SIZE
    assert local.read_bytes() == data
