"""FakeNode start/stop: real ports, persistent host key, extra routes, clean teardown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

import asyncssh
import pytest
from node_clients import connect

from netfault.simulator.node import ClientKey, FakeNode, NodeStartError

TIMEOUT = 30.0


def refuses(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def own_children() -> set[int]:
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


async def test_stop_leaves_no_process_port_or_temp_dir() -> None:
    before = own_children()
    node = FakeNode("life", host="127.0.0.24")
    await node.start()
    root = node.known_hosts_path.parent.parent
    async with connect(node) as conn:
        proc = await conn.create_process("sleep 300 & echo $!; wait", encoding=None)
        async with asyncio.timeout(TIMEOUT):
            grandchild = int(await proc.stdout.readline())
        assert running(grandchild)
        await node.stop()
    assert not running(grandchild)
    assert own_children() <= before
    assert refuses(node.host, node.ssh_port) and refuses(node.host, node.http_port)
    assert not root.exists() and not node.home.exists()


async def test_restart_keeps_ports_and_host_key_and_given_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = ClientKey.generate(tmp_path / "keys")
    node = FakeNode("again", host="127.0.0.24", home=home, client_keys=[key], token="t0k")
    async with node:
        ports = (node.ssh_port, node.http_port)
        (home / "kept.txt").write_text("x")
    assert (home / "kept.txt").exists() and key.private_path.exists()
    async with node, connect(node) as conn:
        assert (node.ssh_port, node.http_port) == ports
        assert (await conn.run("cat kept.txt", timeout=TIMEOUT)).stdout == "x"


async def test_added_route_trusts_the_same_host_key(tmp_path: Path) -> None:
    async with FakeNode("routed", host="127.0.0.24") as node:

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_r, up_w = await asyncio.open_connection(node.host, node.ssh_port)

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer), return_exceptions=True)

        proxy = await asyncio.start_server(forward, "127.0.0.25", 0)
        port = proxy.sockets[0].getsockname()[1]
        try:
            with pytest.raises(asyncssh.HostKeyNotVerifiable):
                async with connect(node, host="127.0.0.25", port=port):
                    pass
            node.add_route_to_known_hosts("127.0.0.25", port)
            assert f"[127.0.0.25]:{port} ssh-ed25519 " in node.known_hosts_path.read_text()
            async with connect(node, host="127.0.0.25", port=port) as conn:
                assert (await conn.run("echo via-proxy", timeout=TIMEOUT)).stdout == "via-proxy\n"
        finally:
            proxy.close()
            await proxy.wait_closed()


async def test_port_in_use_raises_node_start_error() -> None:
    async with FakeNode("first", host="127.0.0.24") as first:
        second = FakeNode("second", host="127.0.0.24", http_port=first.http_port)
        with pytest.raises(NodeStartError, match="127.0.0.24"):
            await second.start()
        await second.stop()
        assert refuses("127.0.0.24", second.ssh_port) or second.ssh_port == 0


async def test_node_config_points_at_this_node() -> None:
    async with FakeNode("cfg", host="127.0.0.24", user="alice") as node:
        config = node.node_config(base_path="elsewhere")
        assert (config.hostname, config.ssh_port, config.http_port) == (
            node.host,
            node.ssh_port,
            node.http_port,
        )
        assert config.ssh_user == "alice" and config.http_token == node.token
        assert config.ssh_key == node.client_key.private_path
        assert config.known_hosts == node.known_hosts_path
        assert config.base_path == "elsewhere" and node.node_config().base_path == "data"
        assert os.stat(node.client_key.private_path).st_mode & 0o077 == 0
