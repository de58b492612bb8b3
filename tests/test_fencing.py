"""No two writers ever append to the same partial file (issue 12, section 1).

Real fake nodes behind the fault proxy: a bandwidth fault keeps a timed-out attempt's remote
writer draining queued bytes while the next attempt starts, which is how a resume used to
append to a partial that another writer was still appending to.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import TransportError
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.engine.transports import default_transports
from netfault.simulator.cluster import LocalCluster
from netfault.simulator.node import FakeNode

pytestmark = pytest.mark.asyncio(loop_scope="module")

QUICK = TransportConfig(connect_timeout=1.0, operation_timeout=3.0, http_timeout=2.0)
ROOMY = TransportConfig(connect_timeout=5.0, operation_timeout=60.0, http_timeout=10.0)
NODE = "node-1"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[LocalCluster]:
    async with LocalCluster(nodes=1, seed=12) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_fault_survives_a_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").faults.clear_all()


def partials(directory: Path, name: str) -> list[str]:
    """The partial files for ``name`` in ``directory``: the engine's (shared or per
    attempt) and the agent's."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.name.startswith(f".{name}.") and ("nfpart" in p.name or "netfault-partial" in p.name)
    )


def describe(result: object) -> str:
    attempts = getattr(result, "attempts", [])
    return "; ".join(f"{a.transport}:{a.error_kind}:{a.message}" for a in attempts)


async def test_bandwidth_limited_push_reports_timeout_on_every_attempt_never_integrity(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """The issue's reproducer: 100 KB/s, [tailscale, ssh], connect 1 s, operation 3 s, a
    500 KB push. Each attempt's writer is fenced, so no attempt sees a corrupted partial."""
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(500 * 1024))
    cluster.faults.apply("bandwidth", NODE, rate_kbps=100)
    # Reproduced 3 times out of 3 before the fence. A fresh name each round: a later round
    # would rightly resume the partial the earlier one left.
    for name in ("a.bin", "b.bin", "c.bin"):
        async with ClusterTransport(config=QUICK, thresholds=Thresholds()) as ct:
            result = await ct.transfer_file(
                src, name, cluster.node(NODE), "push", transports=["tailscale", "ssh"]
            )
        assert not result.success
        kinds = [a.error_kind for a in result.attempts]
        assert kinds and set(kinds) == {"timeout"}, describe(result)
        assert await cluster.read_remote(NODE, name) is None


@pytest.mark.parametrize(
    "pair",
    [
        pytest.param(("ssh", "ssh"), id="ssh-ssh"),
        pytest.param(("base64", "base64"), id="base64-base64"),
        pytest.param(("rsync", "rsync"), id="rsync-rsync"),
        pytest.param(("http", "http"), id="http-http"),
        pytest.param(("ssh", "http"), id="ssh-http"),
    ],
)
async def test_two_concurrent_pushes_end_with_one_content_intact_and_no_partial(
    cluster: LocalCluster, tmp_path: Path, pair: tuple[str, str]
) -> None:
    """Two engines push different contents to the same path at the same time, slowed so
    that their writers overlap on the node."""
    contents = [os.urandom(1024 * 1024), os.urandom(1024 * 1024)]
    sources = []
    for i, data in enumerate(contents):
        sources.append(tmp_path / f"src{i}.bin")
        sources[-1].write_bytes(data)
    cluster.faults.apply("bandwidth", NODE, rate_kbps=4000)
    node = cluster.node(NODE)

    async def push(source: Path, name: str) -> bool:
        async with ClusterTransport(config=ROOMY, thresholds=Thresholds()) as ct:
            result = await ct.transfer_file(source, "same.bin", node, "push", transports=[name])
        return result.success

    done = await asyncio.gather(*(push(s, n) for s, n in zip(sources, pair, strict=True)))
    cluster.faults.clear_all()

    final = await cluster.read_remote(NODE, "same.bin")
    assert any(done)
    assert final in [c for c, ok in zip(contents, done, strict=True) if ok]
    assert partials(cluster.home_path(NODE, "same.bin").parent, "same.bin") == []


@pytest_asyncio.fixture(loop_scope="module")
async def node(tmp_path: Path) -> AsyncIterator[FakeNode]:
    async with FakeNode("node-f", host="127.0.0.12") as fake:
        yield fake


def held(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` and hold its lock, as a live writer does; returns the fd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.mark.parametrize("name", ["ssh", "base64", "rsync"])
async def test_resume_never_appends_to_a_partial_a_live_writer_holds(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    """A partial whose writer is alive (its lock held) is neither resumed nor removed: the
    push writes a copy of its own after the bounded wait, and the file arrives intact."""
    data = os.urandom(2 * 1024 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    shared = node.home / "data" / ".f.bin.nfpart"
    fd = held(shared, data[: len(data) // 2])
    try:
        config = TransportConfig(connect_timeout=5.0, operation_timeout=6.0)
        sent = await default_transports()[name].push(node.node_config(), src, "f.bin", config)
        assert sent >= len(data)  # a whole fresh copy, not the held partial's rest
        assert (node.home / "data" / "f.bin").read_bytes() == data
        assert shared.read_bytes() == data[: len(data) // 2]
        assert partials(shared.parent, "f.bin") == [".f.bin.nfpart"]
    finally:
        os.close(fd)


async def test_http_put_refuses_a_partial_a_live_writer_holds(
    node: FakeNode, tmp_path: Path
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    agent_partial = node.home / "data" / ".f.bin.netfault-partial"
    fd = held(agent_partial, data[:1000])
    try:
        with pytest.raises(TransportError, match="still being written"):
            await default_transports()["http"].push(node.node_config(), src, "f.bin", ROOMY)
        assert agent_partial.read_bytes() == data[:1000]
        assert not (node.home / "data" / "f.bin").exists()
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


CLIENT = """
import asyncio, sys
from pathlib import Path
from netfault.engine.config import TransportConfig
from netfault.engine.hosts import load_hosts
from netfault.engine.transports import default_transports

hosts, node, name, src = sys.argv[1:5]
config = TransportConfig(connect_timeout=5.0, operation_timeout=120.0)
def progress(done, total):
    print(done, flush=True)
asyncio.run(default_transports()[name].push(
    load_hosts(Path(hosts))[node], Path(src), "killed.bin", config, progress))
"""


async def kill_half_way(cluster: LocalCluster, name: str, src: Path, size: int) -> None:
    """Run a push in its own process and SIGKILL it once half the file was sent and a
    quarter reached the node's partial (the client's progress runs ahead of the node)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        str(cluster.hosts_file),
        NODE,
        name,
        str(src),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    partial = cluster.home_path(NODE, ".killed.bin.nfpart")
    try:
        while line := await proc.stdout.readline():
            if int(line) >= size // 2 and await asyncio.to_thread(_size, partial) >= size // 4:
                break
        else:
            pytest.fail(f"the {name} client ended before sending half the file")
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()


@pytest.mark.parametrize("name", ["ssh", "base64", "rsync"])
async def test_resume_after_a_killed_client_is_still_used(
    cluster: LocalCluster, tmp_path: Path, name: str
) -> None:
    size = 4 * 1024 * 1024
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    await asyncio.to_thread(cluster.home_path(NODE, "killed.bin").unlink, True)
    fault = cluster.faults.apply("bandwidth", NODE, rate_kbps=1500)
    await kill_half_way(cluster, name, src, size)
    cluster.faults.clear(fault)
    node: NodeConfig = cluster.node(NODE)
    sent = await default_transports()[name].push(node, src, "killed.bin", ROOMY)
    assert sent < size  # resumed (rsync's ssh may even have delivered every byte: 0 to send)
    assert await cluster.read_remote(NODE, "killed.bin") == data
    assert partials(cluster.home_path(NODE, "killed.bin").parent, "killed.bin") == []


@pytest.mark.parametrize("name", ["ssh", "base64", "rsync"])
async def test_a_whole_copy_orphaned_by_a_dead_attempt_is_adopted_and_resumed(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    """A writer that finished after its client was gone leaves a whole copy under its own
    name; once orphaned, the next push adopts it and has nothing left to send."""
    data = os.urandom(1024 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    here = node.home / "data"
    here.mkdir(exist_ok=True)
    orphan = here / ".o.bin.nfpart.deadbeef"
    orphan.write_bytes(data)
    a_minute_ago = time.time() - 60
    os.utime(orphan, (a_minute_ago, a_minute_ago))
    sent = await default_transports()[name].push(node.node_config(), src, "o.bin", ROOMY)
    assert sent == 0
    assert (here / "o.bin").read_bytes() == data
    assert partials(here, "o.bin") == []


@pytest.mark.parametrize("name", ["ssh", "base64", "rsync", "http"])
async def test_two_concurrent_pulls_into_one_destination_end_with_one_content_intact(
    cluster: LocalCluster, tmp_path: Path, name: str
) -> None:
    contents = [os.urandom(1024 * 1024), os.urandom(1024 * 1024)]
    for i, data in enumerate(contents):
        await asyncio.to_thread(cluster.home_path(NODE, f"p{i}.bin").write_bytes, data)
    cluster.faults.apply("bandwidth", NODE, rate_kbps=4000)
    dest = tmp_path / "dest.bin"
    t = default_transports()[name]
    node = cluster.node(NODE)
    await asyncio.gather(*(t.pull(node, f"p{i}.bin", dest, ROOMY) for i in range(2)))
    assert dest.read_bytes() in contents
    assert partials(tmp_path, "dest.bin") == []


@pytest.mark.parametrize("name", ["ssh", "rsync", "http"])
async def test_pull_never_writes_a_local_partial_another_holder_has(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    data = os.urandom(1024 * 1024)
    (node.home / "data").mkdir(exist_ok=True)
    (node.home / "data" / "f.bin").write_bytes(data)
    shared = tmp_path / ".dest.bin.nfpart"
    fd = held(shared, data[:1000])
    try:
        config = TransportConfig(connect_timeout=5.0, operation_timeout=6.0)
        dest = tmp_path / "dest.bin"
        await default_transports()[name].pull(node.node_config(), "f.bin", dest, config)
        assert dest.read_bytes() == data
        assert shared.read_bytes() == data[:1000]
        assert partials(tmp_path, "dest.bin") == [".dest.bin.nfpart"]
    finally:
        os.close(fd)
