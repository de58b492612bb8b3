"""An OpenSSH node reports the faults its sessions met, as the asyncssh node's channels do:
what the forced terminal changed, per direction, and a write the disk quota stopped."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator

import pytest

from netfault.simulator.node import FakeNode
from netfault.simulator.node.sshd_events import fault_reports

TIMEOUT = 30.0


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("ossh-rep", host="127.0.0.44", ssh_server="openssh") as fake:
        yield fake


async def ssh(
    node: FakeNode, command: str, data: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    argv = ["ssh", "-p", str(node.ssh_port), *node.openssh_options(), node.host, command]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate(data)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


class Reports:
    """The node's fault reports, as its listeners get them."""

    def __init__(self, node: FakeNode) -> None:
        self.records: list[dict[str, object]] = []
        self._added = asyncio.Event()
        node.faults.on_fired(self._add)

    def _add(self, record: dict[str, object]) -> None:
        self.records.append(record)
        self._added.set()

    async def wait(self, count: int) -> list[dict[str, object]]:
        """The session's line reaches the node's loop a moment after ssh exits."""
        async with asyncio.timeout(TIMEOUT):
            while len(self.records) < count:
                self._added.clear()
                await self._added.wait()
        return self.records


async def test_forced_terminal_reports_what_it_changed_per_direction(node: FakeNode) -> None:
    reports = Reports(node)
    node.faults.binary_mangling = True
    # three bytes a terminal acts on (^S at 4, CR at 6, ^Q at 9); cat writes back four lines
    data = b"abcd\x13e\rfg\x11h\nij\nkl\n"
    done = await ssh(node, "cat > data/t.bin; printf 'x\\ny\\nz\\nw\\n'", data)
    assert done.returncode == 0, done.stderr
    inbound, outbound = await reports.wait(2)
    assert inbound == {
        "fault": "corrupt_binary",
        "mode": "pty",
        "direction": "inbound",
        "channel": "ssh",
        "offset": 4,
        "offset_exact": True,
        "count": 3,
    }
    # the echo of the input comes first: "abcde" then the CR that ICRNL made an LF, echoed
    # as CR LF; four lines in the echo (that one and three LFs) and four from printf
    assert outbound == inbound | {"direction": "outbound", "offset": 5, "count": 4 + 4}


async def test_a_write_stopped_by_the_disk_quota_is_reported(node: FakeNode) -> None:
    reports = Reports(node)
    node.faults.set_disk_full(64 * 1024)
    done = await ssh(node, "head -c 200000 /dev/zero > data/big.bin")
    assert done.returncode == 153
    records = await reports.wait(1)
    assert records == [{"fault": "disk_full", "action": "file_too_large", "channel": None}]
    await ssh(node, "rm data/big.bin")  # the 64 KiB it wrote used the quota up
    fits = await ssh(node, "head -c 1000 /dev/zero > data/small.bin")
    assert fits.returncode == 0 and len(records) == 1


async def test_quota_under_the_terminal_is_reported_from_the_pty_session(node: FakeNode) -> None:
    reports = Reports(node)
    node.faults.binary_mangling = True
    node.faults.set_disk_full(64 * 1024)
    done = await ssh(node, "head -c 200000 /dev/zero | cat > data/big.bin")
    assert done.returncode == 153
    records = await reports.wait(1)
    assert {"fault": "disk_full", "action": "file_too_large", "channel": "ssh"} in records


def test_exit_153_without_a_quota_is_the_command_own_status() -> None:
    line: dict[str, object] = {"session": "exit", "exit": 153, "command64": "Y2F0ID4gZg=="}
    assert fault_reports(line, quota=False) == []
    assert fault_reports(line, quota=True) == [
        {"fault": "disk_full", "action": "file_too_large", "channel": "ssh"}
    ]
