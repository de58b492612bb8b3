"""A resumed attempt says where it carried on from and moves only the rest: in its
``Attempt`` record and its ``ATTEMPT_SUCCEEDED`` event, over real SSH to a fake node."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from open_files import until_no_process_holds

from netfault.engine import ClusterTransport, EventRecorder, EventType, part_name
from netfault.simulator.cluster import LocalCluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIZE = 8 * 1024 * 1024
REMOTE = "models/resume.bin"


@pytest.fixture(scope="module")
def netfault_nodes() -> int:
    return 1


@pytest.mark.parametrize("transport", ["ssh", "base64"])
async def test_push_cut_half_way_is_resumed_and_the_attempt_says_from_where(
    netfault_cluster: LocalCluster,
    cluster_transport: ClusterTransport,
    tmp_path: Path,
    transport: str,
) -> None:
    node = netfault_cluster.node("node-1")
    data = os.urandom(SIZE)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    recorder = EventRecorder()
    cluster_transport.events.subscribe(recorder)
    task: asyncio.Task[object] | None = None

    def cut_half_way(done: int, total: int | None) -> None:
        if task is not None and done >= SIZE // 2:
            task.cancel()

    task = asyncio.ensure_future(
        cluster_transport.transfer_file(
            src, REMOTE, node, transports=[transport], progress=cut_half_way
        )
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = netfault_cluster.home_path("node-1", part_name(REMOTE))
    await until_no_process_holds(partial)
    kept = partial.stat().st_size
    assert 0 < kept < SIZE

    result = await cluster_transport.transfer_file(src, REMOTE, node, transports=[transport])

    assert result.success, result.error
    assert netfault_cluster.home_path("node-1", REMOTE).read_bytes() == data
    (attempt,) = result.attempts
    assert (attempt.resumed, attempt.resumed_from) == (True, kept)
    assert attempt.bytes == SIZE - kept  # only the rest crossed the wire
    (succeeded,) = [e for e in recorder.events if e.type is EventType.ATTEMPT_SUCCEEDED]
    assert (succeeded.resumed_from, succeeded.bytes) == (kept, SIZE - kept)
