"""An OpenSSH node reports the faults its sessions met, as the asyncssh node's channels do:
what the forced terminal changed, per direction, and a write the disk quota stopped."""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from netfault.engine.config import TransportConfig
from netfault.engine.errors import RemoteStorageError
from netfault.engine.transports import default_transports, remote
from netfault.simulator.node import FakeNode, pty_session
from netfault.simulator.node.faults import channel_transport
from netfault.simulator.node.sshd_events import fault_reports
from netfault.simulator.scenario.loader import load_scenario
from netfault.simulator.scenario.runner import run_scenario
from netfault.simulator.scenario.trace import merged

TIMEOUT = 30.0
LIBRARY = Path(__file__).resolve().parent.parent / "scenarios"
CONFIG = TransportConfig(connect_timeout=10.0, operation_timeout=60.0, http_timeout=10.0)


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


def test_a_write_past_the_limit_is_a_disk_full_report_only_while_a_quota_is_on() -> None:
    line: dict[str, object] = {"session": "plain", "command": "cat > f", "exit": 153}
    assert fault_reports(line | {"file_too_large": True}, quota=False) == []
    assert fault_reports(line | {"file_too_large": False}, quota=True) == []
    assert fault_reports(line | {"file_too_large": True}, quota=True) == [
        {"fault": "disk_full", "action": "file_too_large", "channel": "ssh"}
    ]


def test_a_session_report_keeps_the_command_that_names_the_transport_in_one_atomic_line() -> None:
    # A fresh push's one command (prepare, then the writer) is over 1 KB; its report must
    # still name the writer, and a report must stay one FIFO write (PIPE_BUF bytes).
    fresh = remote.cmd_fresh_write("data/x.bin", "tok", 100, 5.0, "base64 -d")
    line = json.loads(pty_session.encoded({"session": "plain", "command": fresh, "exit": 1}))
    assert line["command"] == fresh and channel_transport(line["command"]) == "base64"
    huge = remote.cmd_fresh_write("data/" + "\u00e9" * 400 + ".bin", "tok", 100, 5.0)
    data = pty_session.encoded({"session": "plain", "command": huge, "exit": 1})
    assert len(data) <= select.PIPE_BUF and data.endswith(b"\n")
    command = json.loads(data)["command"]
    assert command.startswith(huge[:40]) and " ... " in command
    assert command.endswith(huge[-40:])


async def test_an_engine_push_into_a_full_disk_is_reported_from_its_efbig(
    node: FakeNode, tmp_path: Path
) -> None:
    """The engine's writers ignore SIGXFSZ: the limit shows as EFBIG, exit 1."""
    reports = Reports(node)
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * (256 * 1024))
    node.faults.set_disk_full(64 * 1024)
    with pytest.raises(RemoteStorageError):
        await default_transports()["base64"].push(node.node_config(), src, "f.bin", CONFIG)
    records = await reports.wait(1)
    assert {"fault": "disk_full", "action": "file_too_large", "channel": "base64"} in records


def attempt_of(records: list[dict[str, Any]], index: int) -> tuple[str, str]:
    """The attempt a fault record fell in: the last ATTEMPT_STARTED before it."""
    started = [r for r in records[:index] if r["type"] == "ATTEMPT_STARTED"]
    return started[-1]["operation"], started[-1]["transport"]


async def test_scenario_trace_gets_the_openssh_node_firings_inside_their_attempts() -> None:
    tty = await run_scenario(
        load_scenario(LIBRARY / "forced-tty-on-openssh-breaks-binary-and-base64-wins.yaml")
    )
    disk_full = "disk-full-on-openssh-target-fails-cleanly-and-keeps-the-old-file.yaml"
    full = await run_scenario(load_scenario(LIBRARY / disk_full))
    assert tty.passed and full.passed, tty.report() + full.report()
    records = merged(tty.events, tty.fault_trace)
    fired = [(i, r) for i, r in enumerate(records) if r["type"] == "FAULT_FIRED"]
    push = next(
        r
        for i, r in fired
        if r.get("channel") == "ssh" and attempt_of(records, i) == ("push", "ssh")
    )
    assert {k: push[k] for k in ("fault", "as", "mode", "action", "service", "offset_exact")} == {
        "fault": "corrupt_binary",
        "as": "text-only-channel",
        "mode": "pty",
        "action": "bytes_mangled",
        "service": "ssh",
        "offset_exact": True,
    }
    assert push["direction"] == "inbound" and push["count"] > 0 and push["offset"] >= 0
    base64 = [r for i, r in fired if r.get("channel") == "base64"]
    assert base64 and all(r["direction"] == "outbound" for r in base64)  # only CRs added
    records = merged(full.events, full.fault_trace)
    quota = [
        (attempt_of(records, i), r.get("channel"))
        for i, r in enumerate(records)
        if r["type"] == "FAULT_FIRED" and r["fault"] == "disk_full"
    ]
    assert quota == [
        (("push", "ssh"), "ssh"),
        (("push", "base64"), "base64"),
        (("push", "http"), None),
    ]
