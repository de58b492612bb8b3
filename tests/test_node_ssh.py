"""The fake node's SSH server against real clients: OpenSSH ssh/scp/sftp, rsync, asyncssh."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest
from node_clients import connect

from netfault.simulator.node import FakeNode

TIMEOUT = 30.0


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    async with FakeNode("ssh-node", host="127.0.0.21") as n:
        yield n


async def run(*argv: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out, err


def ssh_argv(node: FakeNode, command: str) -> list[str]:
    return ["ssh", *node.openssh_options(), "-p", str(node.ssh_port), node.host, command]


async def test_openssh_exec_runs_in_home_with_exit_status(node: FakeNode) -> None:
    (node.home / "f.txt").write_bytes(b"hello\n")
    rc, out, err = await run(*ssh_argv(node, "sha256sum f.txt; echo $HOME; pwd; exit 7"))
    assert rc == 7, err
    lines = out.decode().splitlines()
    assert lines[0].split()[0] == hashlib.sha256(b"hello\n").hexdigest()
    assert lines[1] == lines[2] == str(node.home)


async def test_openssh_cat_upload_of_several_mb_is_byte_identical_ten_times(
    node: FakeNode,
) -> None:
    for i in range(10):
        payload = os.urandom(3 * 1024 * 1024 + 12345 * i)
        rc, _, err = await run(*ssh_argv(node, f"cat > up{i}.bin"), stdin=payload)
        assert rc == 0, err
        assert (node.home / f"up{i}.bin").read_bytes() == payload, f"upload {i} truncated"


async def test_rsync_push_and_pull_are_byte_identical(node: FakeNode, tmp_path: Path) -> None:
    payload = os.urandom(2 * 1024 * 1024 + 7)
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    shell = " ".join(["ssh", *node.openssh_options(), "-p", str(node.ssh_port)])
    rc, _, err = await run(
        "rsync", "-a", "--partial", "-e", shell, str(src), f"{node.host}:data/pushed.bin"
    )
    assert rc == 0, err
    assert (node.home / "data" / "pushed.bin").read_bytes() == payload
    rc, _, err = await run(
        "rsync", "-a", "-e", shell, f"{node.host}:data/pushed.bin", str(tmp_path / "pulled.bin")
    )
    assert rc == 0, err
    assert (tmp_path / "pulled.bin").read_bytes() == payload


@pytest.mark.parametrize(
    "legacy_scp", [pytest.param(False, id="scp-sftp"), pytest.param(True, id="scp-legacy")]
)
async def test_openssh_scp_exits_zero_with_identical_bytes(
    node: FakeNode, tmp_path: Path, legacy_scp: bool
) -> None:
    payload = os.urandom(300_000)
    (tmp_path / "a.bin").write_bytes(payload)
    flags = ["-O"] if legacy_scp else []
    rc, _, err = await run(
        "scp",
        *flags,
        *node.openssh_options(),
        "-P",
        str(node.ssh_port),
        str(tmp_path / "a.bin"),
        f"{node.host}:data/a.bin",
    )
    assert rc == 0, err
    assert (node.home / "data" / "a.bin").read_bytes() == payload


async def test_openssh_sftp_batch_exits_zero_and_stays_in_home(
    node: FakeNode, tmp_path: Path
) -> None:
    payload = os.urandom(100_000)
    (tmp_path / "b.bin").write_bytes(payload)
    batch = tmp_path / "batch"
    batch.write_text(f"put {tmp_path / 'b.bin'} data/b.bin\nget data/b.bin {tmp_path}/c.bin\n")
    rc, _, err = await run(
        "sftp", "-b", str(batch), *node.openssh_options(), "-P", str(node.ssh_port), node.host
    )
    assert rc == 0, err
    assert (node.home / "data" / "b.bin").read_bytes() == payload
    assert (tmp_path / "c.bin").read_bytes() == payload


async def test_asyncssh_exec_streams_stdin_and_reports_exit(node: FakeNode) -> None:
    payload = bytes(range(256)) * 4096
    async with connect(node) as conn:
        result = await conn.run(
            "cat > x.bin && sha256sum x.bin", input=payload, encoding=None, timeout=TIMEOUT
        )
        failed = await conn.run("echo oops >&2; exit 42", encoding=None, timeout=TIMEOUT)
    assert result.exit_status == 0
    assert isinstance(result.stdout, bytes)
    assert result.stdout.split()[0].decode() == hashlib.sha256(payload).hexdigest()
    assert (node.home / "x.bin").read_bytes() == payload
    assert failed.exit_status == 42 and failed.stderr == b"oops\n"


async def test_asyncssh_sftp_round_trip_and_chroot(node: FakeNode, tmp_path: Path) -> None:
    payload = os.urandom(500_000)
    (tmp_path / "s.bin").write_bytes(payload)
    outside = tmp_path / "outside"
    outside.mkdir()
    (node.home / "escape").symlink_to(outside)
    async with connect(node) as conn, conn.start_sftp_client() as sftp:
        await sftp.put(str(tmp_path / "s.bin"), "data/s.bin")
        await sftp.get("data/s.bin", str(tmp_path / "back.bin"))
        assert await sftp.realpath("../../..") == "/"
        assert "s.bin" in await sftp.listdir("/data")
        with pytest.raises(asyncssh.SFTPError):
            await sftp.put(str(tmp_path / "s.bin"), "escape/leak.bin")
    assert (tmp_path / "back.bin").read_bytes() == payload
    assert (node.home / "data" / "s.bin").read_bytes() == payload
    assert list(outside.iterdir()) == []
