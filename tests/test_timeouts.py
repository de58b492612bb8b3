"""Timeouts are enforced on every transport (issue 12, section 5): under a bandwidth fault no
attempt outlives its operation timeout by more than a second, and none of its child
processes (ssh, rsync, scp, base64, or their own children) outlives it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from netfault.engine.config import TransportConfig
from netfault.engine.errors import TransportTimeout
from netfault.engine.transports import Transport, default_transports
from netfault.engine.transports.scp import ScpTransport
from netfault.simulator.cluster import LocalCluster

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT = 2.0
CONFIG = TransportConfig(connect_timeout=1.0, operation_timeout=TIMEOUT, http_timeout=TIMEOUT)
SIZE = 4 * 1024 * 1024  # 80 s at the fault's 50 KB/s
NODE = "node-1"
SIGKILL_BIT = 1 << (9 - 1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[LocalCluster]:
    async with LocalCluster(nodes=1, seed=5) as c:
        c.faults.apply("bandwidth", NODE, rate_kbps=50)
        yield c


def transport(name: str) -> Transport:
    return ScpTransport() if name == "scp" else default_transports()[name]


def live_clients_naming(marker: str, node_root: Path) -> list[str]:
    """Command lines of client-side processes (not run by the node, in its home) that mention
    ``marker`` and are neither zombies nor hit by a SIGKILL they have yet to act on."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            status = Path(f"/proc/{pid}/status").read_text()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue  # it ended while we looked
        if marker.encode() not in cmdline or cwd.startswith(str(node_root)):
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        pending = int(fields.get("ShdPnd", "0"), 16) | int(fields.get("SigPnd", "0"), 16)
        if not fields.get("State", "").startswith("Z") and not pending & SIGKILL_BIT:
            found.append(cmdline.decode(errors="replace"))
    return found


NAMES = ["ssh", "tailscale", "base64", "rsync", "http", "scp"]


@pytest.mark.parametrize("direction", ["push", "pull"])
@pytest.mark.parametrize("name", NAMES)
async def test_attempt_under_a_bandwidth_fault_ends_within_a_second_of_its_timeout(
    cluster: LocalCluster, tmp_path: Path, name: str, direction: str
) -> None:
    marker = f"slow-{uuid.uuid4().hex}.bin"
    node = cluster.node(NODE)
    local = tmp_path / marker
    if direction == "push":
        local.write_bytes(os.urandom(SIZE))
    else:
        cluster.home_path(NODE, marker).parent.mkdir(parents=True, exist_ok=True)
        cluster.home_path(NODE, marker).write_bytes(os.urandom(SIZE))
    t = transport(name)
    started = time.monotonic()
    with pytest.raises(TransportTimeout):
        if direction == "push":
            await t.push(node, local, marker, CONFIG)
        else:
            await t.pull(node, marker, local, CONFIG)
    elapsed = time.monotonic() - started
    assert elapsed <= TIMEOUT + 1.0, f"{name} {direction} ran {elapsed:.2f} s"
    # Client-side processes name the file (ssh's remote command, rsync's and scp's argv).
    assert live_clients_naming(marker, cluster.fake(NODE).home) == []
