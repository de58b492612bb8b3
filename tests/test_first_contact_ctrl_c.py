"""Ctrl-C during `netfault push` / `netfault pull`: one line saying what was cancelled and
that the partial is kept, exit 130, the partial really kept, and the same command resumes.

A real engine process against a real fake node behind the fault proxy; a bandwidth fault
keeps the transfer running long enough to interrupt it half way.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from netfault.simulator.cluster import LocalCluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

NODE = "node-1"
SIZE = 3 * 1024 * 1024
TIMEOUT = 120
CANCELLED = (
    "cancelled; the partial file is kept where the transport can resume it: "
    "run the same command again to resume (Ctrl-C)"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[LocalCluster]:
    async with LocalCluster(nodes=1, seed=16) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_fault_survives_a_test(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "cluster" in request.fixturenames:
        request.getfixturevalue("cluster").faults.clear_all()


def partial_bytes(directory: Path, name: str) -> int:
    """Bytes in the partial files of ``name`` in ``directory`` (0: none)."""
    total = 0
    for path in directory.glob(f".{name}.nfpart*"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            pass
    return total


async def start(cluster: LocalCluster, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "netfault.simulator.cli",
        *args,
        "--hosts",
        str(cluster.hosts_file),
        "--transports",
        "ssh",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )


async def interrupt_once_partial(
    proc: asyncio.subprocess.Process, directory: Path, name: str
) -> tuple[str, str]:
    """SIGINT ``proc`` once a tenth of the file sits in its partial; (stdout, stderr)."""
    async with asyncio.timeout(TIMEOUT):
        for _ in range(TIMEOUT * 20):  # bounded: 20 polls a second
            if await asyncio.to_thread(partial_bytes, directory, name) >= SIZE // 10:
                break
            assert proc.returncode is None, "the transfer ended before it could be interrupted"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = await proc.communicate()
    return out.decode(), err.decode()


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def moved(out: str, verb: str) -> int:
    """The byte count of the success line: what this run moved, not the file's size."""
    found = re.search(rf"^{verb} (\d+) bytes via ssh ", out, re.M)
    assert found, out
    return int(found.group(1))


async def test_ctrl_c_during_push_says_the_partial_is_kept_and_a_rerun_resumes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    remote_dir = cluster.home_path(NODE, "big.bin").parent
    cluster.faults.apply("bandwidth", NODE, rate_kbps=800)

    proc = await start(cluster, "push", str(src), f"{NODE}:big.bin")
    out, err = await interrupt_once_partial(proc, remote_dir, "big.bin")

    assert proc.returncode == 130, out + err
    assert f"push {CANCELLED}" in err
    assert "Traceback" not in err
    assert err.count("push cancelled") == 1
    kept = await asyncio.to_thread(partial_bytes, remote_dir, "big.bin")
    assert 0 < kept < SIZE
    assert not (remote_dir / "big.bin").exists()

    cluster.faults.clear_all()
    code, out, err = await finish(await start(cluster, "push", str(src), f"{NODE}:big.bin"))

    assert code == 0, out + err
    assert moved(out, "pushed") <= SIZE - kept  # resumed: only what the partial lacked
    assert await cluster.read_remote(NODE, "big.bin") == data
    assert await asyncio.to_thread(partial_bytes, remote_dir, "big.bin") == 0


async def test_ctrl_c_during_pull_says_the_partial_is_kept_and_a_rerun_resumes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    data = os.urandom(SIZE)
    remote = cluster.home_path(NODE, "pulled.bin")
    await asyncio.to_thread(remote.parent.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(remote.write_bytes, data)
    dest = tmp_path / "pulled.bin"
    cluster.faults.apply("bandwidth", NODE, rate_kbps=800)

    proc = await start(cluster, "pull", f"{NODE}:pulled.bin", str(dest))
    out, err = await interrupt_once_partial(proc, tmp_path, "pulled.bin")

    assert proc.returncode == 130, out + err
    assert f"pull {CANCELLED}" in err
    assert "Traceback" not in err
    kept = partial_bytes(tmp_path, "pulled.bin")
    assert 0 < kept < SIZE
    assert not dest.exists()

    cluster.faults.clear_all()
    code, out, err = await finish(await start(cluster, "pull", f"{NODE}:pulled.bin", str(dest)))

    assert code == 0, out + err
    assert moved(out, "pulled") <= SIZE - kept  # resumed: only what the partial lacked
    assert dest.read_bytes() == data
    assert partial_bytes(tmp_path, "pulled.bin") == 0
