"""Node-level faults: binary mangling, refused auth, changed host key, full disk, HTTP modes."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncssh
import pytest
from node_clients import connect

from netfault.simulator.node import FakeNode, mangle

TIMEOUT = 30.0
EVERY_BYTE = bytes(range(256)) * 64


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("fault-node", host="127.0.0.23") as n:
        yield n


def test_mangle_rule_strips_high_bit_and_maps_cr_but_keeps_base64_text() -> None:
    text = base64.encodebytes(EVERY_BYTE)
    assert mangle(text) == text
    assert mangle(b"\x80\xff\r\n\x00") == b"\x00\x7f\n\n\x00"


async def test_mangling_corrupts_binary_cat_but_base64_round_trips(node: FakeNode) -> None:
    node.faults.binary_mangling = True
    encoded = base64.encodebytes(EVERY_BYTE)
    (node.home / "src.bin").write_bytes(EVERY_BYTE)
    async with connect(node) as conn:
        raw = await conn.run("cat > raw.bin", input=EVERY_BYTE, encoding=None, timeout=TIMEOUT)
        up = await conn.run("base64 -d > b64.bin", input=encoded, encoding=None, timeout=TIMEOUT)
        down = await conn.run("base64 src.bin", encoding=None, timeout=TIMEOUT)
        cat_down = await conn.run("cat src.bin", encoding=None, timeout=TIMEOUT)
    assert raw.exit_status == 0 and up.exit_status == 0 and down.exit_status == 0
    assert (node.home / "raw.bin").read_bytes() != EVERY_BYTE
    assert (node.home / "b64.bin").read_bytes() == EVERY_BYTE
    assert isinstance(down.stdout, bytes) and base64.b64decode(down.stdout) == EVERY_BYTE
    assert cat_down.stdout != EVERY_BYTE


async def test_mangling_breaks_sftp_and_clearing_restores_it(
    node: FakeNode, tmp_path: Path
) -> None:
    (tmp_path / "f.bin").write_bytes(EVERY_BYTE)
    node.faults.binary_mangling = True
    # Depending on which length byte gets mangled first: a decode error or a failed request.
    with pytest.raises((asyncssh.Error, OSError, ValueError)):
        async with connect(node) as conn, conn.start_sftp_client() as sftp:
            async with asyncio.timeout(10):
                await sftp.put(str(tmp_path / "f.bin"), "f.bin")
    node.faults.clear()
    async with connect(node) as conn, conn.start_sftp_client() as sftp:
        await sftp.put(str(tmp_path / "f.bin"), "f.bin")
    assert (node.home / "f.bin").read_bytes() == EVERY_BYTE


async def test_auth_refused_rejects_asyncssh_and_openssh(node: FakeNode) -> None:
    node.faults.auth_refused = True
    with pytest.raises(asyncssh.PermissionDenied):
        async with connect(node):
            pass
    proc = await asyncio.create_subprocess_exec(
        "ssh",
        *node.openssh_options(),
        "-p",
        str(node.ssh_port),
        node.host,
        "true",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        _, err = await proc.communicate()
    assert proc.returncode == 255 and b"Permission denied" in err


async def test_changed_host_key_fails_verification_until_cleared(node: FakeNode) -> None:
    old_known_hosts = node.known_hosts_path.read_bytes()
    node.faults.host_key_changed = True
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with connect(node):
            pass
    proc = await asyncio.create_subprocess_exec(
        "ssh",
        *node.openssh_options(),
        "-p",
        str(node.ssh_port),
        node.host,
        "true",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        _, err = await proc.communicate()
    assert proc.returncode == 255 and b"Host key verification failed" in err
    assert node.known_hosts_path.read_bytes() == old_known_hosts
    node.faults.host_key_changed = False
    async with connect(node) as conn:
        assert (await conn.run("true", timeout=TIMEOUT)).exit_status == 0


async def test_disk_full_fails_sftp_exec_and_http_cleanly(node: FakeNode, tmp_path: Path) -> None:
    node.faults.disk_quota = 10_000
    reports: list[dict[str, object]] = []
    node.faults.on_fired(reports.append)
    (tmp_path / "big.bin").write_bytes(os.urandom(50_000))
    async with connect(node) as conn:
        small = await conn.run("echo ok > data/small.txt", timeout=TIMEOUT)
        cat = await conn.run("cat > data/cat.bin", input="x" * 50_000, timeout=TIMEOUT)
        result = await conn.run("head -c 50000 /dev/zero > data/exec.bin", timeout=TIMEOUT)
        async with conn.start_sftp_client() as sftp:
            with pytest.raises(asyncssh.SFTPError, match="No space left"):
                await sftp.put(str(tmp_path / "big.bin"), "data/big.bin")
    assert small.exit_status == 0
    assert cat.exit_status == 1 and "No space left on device" in str(cat.stderr)
    assert result.exit_status == 153  # SIGXFSZ, as the shell reports it
    assert (node.home / "data" / "exec.bin").stat().st_size < 10_000
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        url = f"http://{node.host}:{node.http_port}/files/data/http.bin"
        async with http.put(url, data=os.urandom(50_000)) as resp:
            assert resp.status == 507
        async with http.get(f"http://{node.host}:{node.http_port}/status") as resp:
            assert (await resp.json())["faults"] == {"disk_quota": 10_000}
    names = sorted(p.name for p in (node.home / "data").iterdir())
    assert "http.bin" not in names and ".http.bin.netfault-partial" not in names
    # Each stopped write is reported as it happens: the stdin byte a full disk refused (3
    # bytes of small.txt were already used), the command the file-size limit killed, the
    # SFTP upload with no byte left, the HTTP upload answered 507.
    assert reports == [
        {"fault": "disk_full", "action": "no_space", "channel": "ssh"}
        | {"offset": 9_997, "offset_exact": True},
        {"fault": "disk_full", "action": "file_too_large", "channel": None},
        {"fault": "disk_full", "action": "no_space", "channel": "sftp"}
        | {"offset": 0, "offset_exact": True},
        {"fault": "disk_full", "action": "no_space", "channel": None, "service": "http"},
    ]


async def test_http_modes_down_5xx_hang_and_back_up(node: FakeNode) -> None:
    url = f"http://{node.host}:{node.http_port}/health"
    timeout = aiohttp.ClientTimeout(total=0.5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        node.faults.http_mode = "down"
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.get(url)
        node.faults.http_mode = "5xx"
        async with http.get(url) as resp:
            assert resp.status == 503 and "error" in await resp.json()
        node.faults.http_mode = "hang"
        with pytest.raises(asyncio.TimeoutError):
            await http.get(url)
        node.faults.clear()
        async with http.get(url) as resp:
            assert resp.status == 200
