"""Every real transport against a FakeNode over loopback: bytes, names, resume, faults."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import (
    AuthenticationError,
    ConnectError,
    IntegrityError,
    RemoteStorageError,
    ServerError,
    TransportError,
)
from netfault.engine.transports import Transport, default_transports
from netfault.simulator.node import FakeNode

CONFIG = TransportConfig(connect_timeout=5.0, operation_timeout=30.0, http_timeout=10.0)
NASTY = 'sub dir/it\'s "q" $(touch pwned); `touch pwned2` & x.bin'
ALL = ["ssh", "rsync", "base64", "http", "tailscale"]
SSH_LIKE = ["ssh", "rsync", "base64"]
RESUMABLE = ["ssh", "base64", "http"]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[FakeNode]:
    async with FakeNode("node-t", host="127.0.0.11") as fake:
        yield fake


def cfg(node: FakeNode) -> NodeConfig:
    return node.node_config(tailscale_ip=node.host)


def transport(name: str) -> Transport:
    return default_transports()[name]


def payload(size: int) -> bytes:
    """Every byte value, then random bytes."""
    head = bytes(range(256)) * (min(size, 1024) // 256 + 1)
    return (head + os.urandom(max(0, size - len(head))))[:size]


def remote(node: FakeNode, name: str) -> Path:
    return node.home / "data" / name


def leftovers(root: Path) -> list[str]:
    """Partial files (ours and the HTTP agent's) and anything a shell injection created."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if ".nfpart" in p.name or p.name.endswith(".netfault-partial") or p.name.startswith("pwned")
    )


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024 + 1], ids=["0B", "1B", "1MiB+1"])
@pytest.mark.parametrize("name", ALL)
async def test_push_then_pull_gives_identical_bytes_under_a_literal_nasty_name(
    node: FakeNode, tmp_path: Path, name: str, size: int
) -> None:
    data = payload(size)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    t = transport(name)
    await t.push(cfg(node), src, NASTY, CONFIG)
    assert remote(node, NASTY).read_bytes() == data
    await t.pull(cfg(node), NASTY, back, CONFIG)
    assert back.read_bytes() == data
    assert leftovers(node.home) == [] and leftovers(tmp_path) == []
    assert not (Path.cwd() / "pwned").exists()


@pytest.mark.parametrize("name", ALL)
async def test_several_megabytes_round_trip(node: FakeNode, tmp_path: Path, name: str) -> None:
    data = os.urandom(6 * 1024 * 1024 + 3)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    sent = await transport(name).push(cfg(node), src, "big/f.bin", CONFIG)
    assert sent == len(data)
    assert remote(node, "big/f.bin").read_bytes() == data
    await transport(name).pull(cfg(node), "big/f.bin", back, CONFIG)
    assert back.read_bytes() == data


async def test_exec_upload_repeated_never_truncates(node: FakeNode, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    for round_no in range(8):
        data = os.urandom(3 * 1024 * 1024 + round_no * 4099)
        src.write_bytes(data)
        await transport("ssh").push(cfg(node), src, "repeat.bin", CONFIG)
        assert remote(node, "repeat.bin").read_bytes() == data, f"round {round_no}"


@pytest.mark.parametrize("name", ["ssh", "base64"])
async def test_exec_path_through_openssh_repeated_never_truncates(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    """The OpenSSH data path (child processes joined by pipes), up and down, many times."""
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    t = transport(name)
    assert getattr(t, "openssh", False)
    for round_no in range(6):
        data = os.urandom(2 * 1024 * 1024 + round_no * 4099)
        src.write_bytes(data)
        await t.push(cfg(node), src, "rep.bin", CONFIG)
        assert remote(node, "rep.bin").read_bytes() == data, f"push round {round_no}"
        await t.pull(cfg(node), "rep.bin", back, CONFIG)
        assert back.read_bytes() == data, f"pull round {round_no}"
    assert leftovers(node.home) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("size", [0, 1024 * 1024 + 1, 5 * 1024 * 1024 + 7], ids=str)
@pytest.mark.parametrize("name", ["ssh", "base64"])
async def test_asyncssh_data_path_still_works_without_openssh(
    node: FakeNode, tmp_path: Path, name: str, size: int
) -> None:
    """With ``openssh`` off (or no ``ssh`` binary) the bytes go over the asyncssh channel."""
    data = payload(size)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    t = transport(name)
    t.openssh = False  # type: ignore[attr-defined]
    await t.push(cfg(node), src, NASTY, CONFIG)
    assert remote(node, NASTY).read_bytes() == data
    await t.pull(cfg(node), NASTY, back, CONFIG)
    assert back.read_bytes() == data
    assert leftovers(node.home) == [] and leftovers(tmp_path) == []


async def test_http_agent_rehashes_a_partial_changed_between_pieces(
    node: FakeNode, tmp_path: Path
) -> None:
    """The sha256 the agent carries from one PUT to the next is dropped when the partial file
    changed in between, so a tampered upload is refused (422), never renamed."""
    import aiohttp

    data = os.urandom(3 * 1024 * 1024)
    split = 2 * 1024 * 1024
    url = f"http://{node.host}:{node.http_port}/files/data/pieces.bin"
    auth = {"Authorization": f"Bearer {node.token}"}
    total = len(data)
    async with aiohttp.ClientSession(headers=auth) as s:
        head = {"Content-Range": f"bytes 0-{split - 1}/{total}"}
        async with s.put(url, data=data[:split], headers=head) as resp:
            assert resp.status == 202
        part = remote(node, ".pieces.bin.netfault-partial")
        with part.open("r+b") as fh:  # same size, other bytes
            fh.write(b"\0" * 16)
        digest = hashlib.sha256(data).hexdigest()
        tail = {"Content-Range": f"bytes {split}-{total - 1}/{total}", "X-Sha256": digest}
        async with s.put(url, data=data[split:], headers=tail) as resp:
            assert resp.status == 422
    assert not remote(node, "pieces.bin").exists()


async def _cancel_half_way(coro_factory: object, size: int) -> None:
    """Run a transfer whose progress callback cancels it after half the bytes."""
    task: asyncio.Task[int] | None = None

    def progress(done: int, total: int | None) -> None:
        if task is not None and done >= size // 2:
            task.cancel()

    task = asyncio.ensure_future(coro_factory(progress))  # type: ignore[operator]
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("name", RESUMABLE)
async def test_cancelled_push_leaves_no_final_file_and_the_next_push_resumes(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    data = os.urandom(24 * 1024 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    t, conf = transport(name), cfg(node)
    await _cancel_half_way(lambda p: t.push(conf, src, "resume.bin", CONFIG, p), len(data))
    assert not remote(node, "resume.bin").exists()
    # No wait for the node to notice the closed channel: the resume waits for the old
    # writer's lock on the partial, and re-reads the partial once it has it.
    sent = await t.push(conf, src, "resume.bin", CONFIG)
    assert 0 < sent < len(data)
    assert remote(node, "resume.bin").read_bytes() == data


@pytest.mark.parametrize("name", RESUMABLE + ["rsync"])
async def test_cancelled_pull_leaves_no_final_file_and_the_next_pull_resumes(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    data = os.urandom(24 * 1024 * 1024)
    remote(node, "pull.bin").write_bytes(data)
    back = tmp_path / "back.bin"
    t, conf = transport(name), cfg(node)
    await _cancel_half_way(lambda p: t.pull(conf, "pull.bin", back, CONFIG, p), len(data))
    assert not back.exists()
    sent = await t.pull(conf, "pull.bin", back, CONFIG)
    if name != "rsync":
        assert sent < len(data)
    assert back.read_bytes() == data


async def test_tampered_partial_is_not_reused(node: FakeNode, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    part = remote(node, ".t.bin.nfpart")
    part.write_bytes(b"X" + data[1 : 1024 * 1024])
    sent = await transport("ssh").push(cfg(node), src, "t.bin", CONFIG)
    assert sent == len(data)
    assert remote(node, "t.bin").read_bytes() == data


@pytest.mark.parametrize("direction", ["push", "pull"])
async def test_binary_mangling_fails_ssh_with_integrity_error_but_base64_survives(
    node: FakeNode, tmp_path: Path, direction: str
) -> None:
    data = payload(512 * 1024)
    old = b"previous content"
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    remote(node, "m.bin").write_bytes(old if direction == "push" else data)
    back.write_bytes(old)
    node.faults.binary_mangling = True
    with pytest.raises(IntegrityError):
        if direction == "push":
            await transport("ssh").push(cfg(node), src, "m.bin", CONFIG)
        else:
            await transport("ssh").pull(cfg(node), "m.bin", back, CONFIG)
    assert remote(node, "m.bin").read_bytes() == (old if direction == "push" else data)
    assert back.read_bytes() == old
    assert leftovers(node.home) == [] and leftovers(tmp_path) == []
    if direction == "push":
        await transport("base64").push(cfg(node), src, "m.bin", CONFIG)
        assert remote(node, "m.bin").read_bytes() == data
    else:
        await transport("base64").pull(cfg(node), "m.bin", back, CONFIG)
        assert back.read_bytes() == data


@pytest.mark.parametrize("fault", ["auth_refused", "host_key_changed"])
@pytest.mark.parametrize("name", SSH_LIKE)
async def test_ssh_auth_faults_raise_authentication_error(
    node: FakeNode, tmp_path: Path, name: str, fault: str
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    setattr(node.faults, fault, True)
    with pytest.raises(AuthenticationError):
        await transport(name).push(cfg(node), src, "auth.bin", CONFIG)
    assert not remote(node, "auth.bin").exists()


@pytest.mark.parametrize("name", SSH_LIKE + ["http"])
async def test_disk_full_raises_storage_error_and_leaves_no_file(
    node: FakeNode, tmp_path: Path, name: str
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(2 * 1024 * 1024))
    node.faults.set_disk_full(256 * 1024)
    with pytest.raises(RemoteStorageError):
        await transport(name).push(cfg(node), src, "full.bin", CONFIG)
    assert not remote(node, "full.bin").exists()
    assert leftovers(node.home) == []


@pytest.mark.parametrize(("mode", "error"), [("down", ConnectError), ("5xx", ServerError)])
async def test_http_agent_down_or_failing_raises_connect_or_server_error(
    node: FakeNode, tmp_path: Path, mode: str, error: type[TransportError]
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    node.faults.http_mode = mode
    with pytest.raises(error):
        await transport("http").push(cfg(node), src, "h.bin", CONFIG)
    with pytest.raises(error):
        await transport("http").probe(cfg(node), CONFIG)


async def test_every_transport_probes_ok_and_tailscale_needs_an_address(node: FakeNode) -> None:
    transports = default_transports()
    assert not transports["tailscale"].available(node.node_config())
    for name in ALL:
        assert await transports[name].probe(cfg(node), CONFIG)


def _flip(data: bytes, at: int = 1000) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 16]) + data[at + 16 :]


@pytest.mark.parametrize("change", ["rewritten", "rewritten-mtime-restored", "replaced", "grown"])
async def test_http_pull_after_the_file_changed_on_the_node_gets_its_bytes_now(
    node: FakeNode, tmp_path: Path, change: str
) -> None:
    """The agent keeps the digest of a pushed file for the pulls that follow; any change to
    the file afterwards (even same-size, even with its mtime put back) makes the next pull
    verify against the bytes as they are now."""
    t = transport("http")
    data = payload(2 * 1024 * 1024 + 7)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    await t.push(cfg(node), src, "cached.bin", CONFIG)
    await t.pull(cfg(node), "cached.bin", back, CONFIG)
    assert back.read_bytes() == data
    target = remote(node, "cached.bin")
    before = target.stat()
    if change.startswith("rewritten"):
        with target.open("r+b") as fh:
            fh.seek(1000)
            fh.write(_flip(data)[1000:1016])
        if change == "rewritten-mtime-restored":
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif change == "replaced":
        fresh = target.with_name("fresh.tmp")
        fresh.write_bytes(_flip(data))
        os.replace(fresh, target)
    else:
        with target.open("ab") as fh:
            fh.write(b"more")
    now = target.read_bytes()
    assert now != data
    await t.pull(cfg(node), "cached.bin", back, CONFIG)
    assert back.read_bytes() == now
    assert leftovers(node.home) == [] and leftovers(tmp_path) == []


async def test_http_pull_with_a_stale_agent_digest_fails_and_keeps_nothing(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worst case for the agent's digest cache: it cannot see a change (every stamp looks the
    same). The pull still compares the digest with the bytes it received, so it fails with
    IntegrityError and leaves neither a file nor a partial; a stale digest never passes."""
    from netfault.simulator.node import digests, http_files

    monkeypatch.setattr(digests, "stat_stamp", lambda path: (0, 0, 0, 0, 0))
    monkeypatch.setattr(http_files, "stat_stamp", lambda path: (0, 0, 0, 0, 0))
    t = transport("http")
    data = payload(1024 * 1024)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    await t.push(cfg(node), src, "stale.bin", CONFIG)
    remote(node, "stale.bin").write_bytes(_flip(data))
    with pytest.raises(IntegrityError):
        await t.pull(cfg(node), "stale.bin", back, CONFIG)
    assert not back.exists()
    assert leftovers(tmp_path) == []
