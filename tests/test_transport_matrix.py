"""Every SSH-based transport x push/pull x sizes, names, resume and cancel, on both SSH servers.

One node per server for the whole module (an OpenSSH login costs a few hundred ms, so the
matrix shares it), run on its own thread and loop like a cluster's nodes; each test starts from
an empty ``data`` directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from node_clients import node_on_thread
from open_files import until_no_process_holds

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.transports import Transport, default_transports
from netfault.simulator.node import FakeNode

CONFIG = TransportConfig(connect_timeout=10.0, operation_timeout=120.0, http_timeout=10.0)
SERVERS = ["asyncssh", "openssh"]
SSH_TRANSPORTS = ["ssh", "tailscale", "rsync", "base64"]
# Transports whose push resumes from the partial a cancelled push left on the node.
PUSH_RESUMES = ["ssh", "tailscale", "base64"]
MIB = 1024 * 1024
NASTY = 'sub dir/it\'s "q" $(touch pwned); `touch pwned2` & x.bin'
NAMES = [
    pytest.param("with  two spaces.bin", id="spaces"),
    pytest.param("it's \"double\" 'single'.bin", id="quotes"),
    pytest.param("$(touch pwned);`touch pwned2`&|<>*?[x]{a,b}!#~.bin", id="metachars"),
    pytest.param("-dash dir/ünïcödé\\back.bin", id="dash-unicode-backslash"),
]
SIZES = [
    pytest.param(0, id="0B"),
    pytest.param(1, id="1B"),
    pytest.param(256, id="every-byte-value"),
    pytest.param(MIB + 1, id="1MiB+1"),
]
BIG = 64 * MIB


@pytest.fixture(scope="module", params=SERVERS)
def node(request: pytest.FixtureRequest) -> Iterator[FakeNode]:
    """A node running the given SSH server on its own loop thread."""
    server = str(request.param)
    with node_on_thread(f"matrix-{server}", "127.0.0.41", server) as fake:
        yield fake


@pytest.fixture(autouse=True)
def empty_data(node: FakeNode) -> None:
    data = node.home / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()


@pytest.fixture(scope="module")
def big_data() -> bytes:
    return payload(BIG)


def cfg(node: FakeNode) -> NodeConfig:
    return node.node_config(tailscale_ip=node.host)


def transport(name: str) -> Transport:
    return default_transports()[name]


def payload(size: int) -> bytes:
    """Every byte value first (each twice, CR LF and 0x80+ included), then random bytes."""
    head = bytes(range(256)) * 2
    return (head + os.urandom(max(0, size - len(head))))[:size]


def remote(node: FakeNode, name: str) -> Path:
    return node.home / "data" / name


def leftovers(root: Path) -> list[str]:
    """Partial files and anything a shell injection created."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.endswith((".nfpart", ".netfault-partial")) or p.name.startswith("pwned")
    )


def put_remote(node: FakeNode, name: str, data: bytes) -> None:
    path = remote(node, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def push_and_check(node: FakeNode, tmp: Path, name: str, path: str, data: bytes) -> None:
    src = tmp / "src.bin"
    src.write_bytes(data)
    sent = await transport(name).push(cfg(node), src, path, CONFIG)
    assert sent == len(data)
    assert remote(node, path).read_bytes() == data
    assert leftovers(node.home) == [] and leftovers(tmp) == []


async def pull_and_check(node: FakeNode, tmp: Path, name: str, path: str, data: bytes) -> None:
    back = tmp / "back.bin"
    received = await transport(name).pull(cfg(node), path, back, CONFIG)
    assert received == len(data)
    assert back.read_bytes() == data
    assert leftovers(node.home) == [] and leftovers(tmp) == []


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SSH_TRANSPORTS)
async def test_push_delivers_identical_bytes(
    node: FakeNode, tmp_path: Path, name: str, size: int
) -> None:
    await push_and_check(node, tmp_path, name, NASTY, payload(size))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SSH_TRANSPORTS)
async def test_pull_delivers_identical_bytes(
    node: FakeNode, tmp_path: Path, name: str, size: int
) -> None:
    data = payload(size)
    put_remote(node, NASTY, data)
    await pull_and_check(node, tmp_path, name, NASTY, data)


@pytest.mark.parametrize("name", SSH_TRANSPORTS)
async def test_64_mib_push_and_pull(
    node: FakeNode, tmp_path: Path, big_data: bytes, name: str
) -> None:
    await push_and_check(node, tmp_path, name, "big.bin", big_data)
    await pull_and_check(node, tmp_path, name, "big.bin", big_data)


@pytest.mark.parametrize("path", NAMES)
@pytest.mark.parametrize("name", SSH_TRANSPORTS)
async def test_names_are_literal_both_ways(
    node: FakeNode, tmp_path: Path, name: str, path: str
) -> None:
    data = payload(4096)
    await push_and_check(node, tmp_path, name, path, data)
    remote(node, path).write_bytes(data[::-1])
    await pull_and_check(node, tmp_path, name, path, data[::-1])
    assert not (Path.cwd() / "pwned").exists() and not (node.home / "pwned").exists()


async def cancel_half_way(
    start: Callable[[Callable[[int, int | None], None]], Coroutine[Any, Any, int]], size: int
) -> None:
    """Run a transfer whose progress callback cancels it once half the bytes went through."""
    task: asyncio.Task[int] | None = None

    def progress(done: int, total: int | None) -> None:
        if task is not None and done >= size // 2:
            task.cancel()

    task = asyncio.ensure_future(start(progress))
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("name", PUSH_RESUMES)
async def test_cancelled_push_keeps_the_old_file_and_the_next_push_resumes(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    data = os.urandom(16 * MIB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    put_remote(node, "resume.bin", b"old content")
    t, conf = transport(name), cfg(node)
    await cancel_half_way(lambda p: t.push(conf, src, "resume.bin", CONFIG, p), len(data))
    assert remote(node, "resume.bin").read_bytes() == b"old content"
    await until_no_process_holds(remote(node, ".resume.bin.nfpart"))
    sent = await t.push(conf, src, "resume.bin", CONFIG)
    assert 0 < sent < len(data)
    assert remote(node, "resume.bin").read_bytes() == data
    assert leftovers(node.home) == []


async def test_cancelled_rsync_push_keeps_the_old_file_and_the_next_push_completes(
    node: FakeNode, tmp_path: Path
) -> None:
    data = os.urandom(16 * MIB)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    put_remote(node, "resume.bin", b"old content")
    t, conf = transport("rsync"), cfg(node)
    await cancel_half_way(lambda p: t.push(conf, src, "resume.bin", CONFIG, p), len(data))
    assert remote(node, "resume.bin").read_bytes() == b"old content"
    await until_no_process_holds(remote(node, ".resume.bin.nfpart"))
    await t.push(conf, src, "resume.bin", CONFIG)
    assert remote(node, "resume.bin").read_bytes() == data
    assert leftovers(node.home) == []


@pytest.mark.parametrize("name", SSH_TRANSPORTS)
async def test_cancelled_pull_keeps_no_file_and_the_next_pull_resumes(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    data = os.urandom(16 * MIB)
    put_remote(node, "pull.bin", data)
    back = tmp_path / "back.bin"
    t, conf = transport(name), cfg(node)
    await cancel_half_way(lambda p: t.pull(conf, "pull.bin", back, CONFIG, p), len(data))
    assert not back.exists()
    received = await t.pull(conf, "pull.bin", back, CONFIG)
    if name != "rsync":  # rsync reports the whole file even when it reused the partial
        # resumed (0 when the cancelled pull's pipe had already filled the whole partial)
        assert received < len(data)
    assert back.read_bytes() == data
    assert leftovers(tmp_path) == []


async def scp(node: FakeNode, legacy: bool, source: str, target: str) -> None:
    argv = ["scp", *(["-O"] if legacy else []), "-P", str(node.ssh_port)]
    argv += [*node.openssh_options(), source, target]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(CONFIG.operation_timeout):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


@pytest.mark.parametrize("legacy", [False, True], ids=["scp-sftp", "scp-legacy"])
@pytest.mark.parametrize("size", [0, 1, MIB + 1], ids=["0B", "1B", "1MiB+1"])
async def test_scp_client_round_trip(
    node: FakeNode, tmp_path: Path, legacy: bool, size: int
) -> None:
    """OpenSSH's scp (SFTP mode, and the legacy protocol over an exec channel) both ways."""
    data = payload(size)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    # The legacy protocol sends the name through the remote shell: keep it plain there.
    name = "plain.bin" if legacy else "with space 'q'.bin"
    await scp(node, legacy, str(src), f"{node.host}:data/{name}")
    assert remote(node, name).read_bytes() == data
    await scp(node, legacy, f"{node.host}:data/{name}", str(back))
    assert back.read_bytes() == data
