"""One OpenSSH connection per attempt: every step of a transfer rides the attempt's master.

A counting TCP relay sits between the engine and the node (its own known_hosts entry names
the relay's address), so the tests see how many connections a transfer really opened.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_clients import node_on_thread

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.errors import ConnectionReset
from netfault.engine.transports import default_transports
from netfault.engine.transports.failures import Tracker
from netfault.engine.transports.scp import ScpTransport
from netfault.engine.transports.sshconn import SshEndpoint
from netfault.engine.transports.sshmux import DIR_PREFIX, OpenSshMaster
from netfault.simulator.node import FakeNode

CONFIG = TransportConfig(connect_timeout=10.0, operation_timeout=60.0)
RELAY_HOST = "127.0.0.1"


class _Pipe(socketserver.BaseRequestHandler):
    server: _Relay

    def handle(self) -> None:
        with self.server.lock:
            self.server.accepted += 1
        upstream = socket.create_connection(self.server.target, timeout=30)
        done = threading.Event()

        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                done.set()

        threading.Thread(target=copy, args=(upstream, self.request), daemon=True).start()
        copy(self.request, upstream)
        done.wait(30)
        upstream.close()


class _Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__((RELAY_HOST, 0), _Pipe)
        self.target = target
        self.accepted = 0
        self.lock = threading.Lock()


@pytest.fixture(scope="module", params=["asyncssh", "openssh"])
def node(request: pytest.FixtureRequest) -> Iterator[FakeNode]:
    server = str(request.param)
    with node_on_thread(f"sshmux-{server}", "127.0.0.45", server) as fake:
        yield fake


@pytest.fixture
def relay(node: FakeNode) -> Iterator[_Relay]:
    server = _Relay((node.host, node.ssh_port))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def via_relay(node: FakeNode, relay: _Relay, tmp: Path) -> NodeConfig:
    """The node reached through the relay, its host key known under the relay's address."""
    config = node.node_config(base_path="data")
    assert config.known_hosts is not None
    key = config.known_hosts.read_text().split(None, 1)[1]
    port = relay.server_address[1]
    known = tmp / "known_hosts"
    known.write_text(f"[{RELAY_HOST}]:{port} {key}")
    return node.node_config(base_path="data", hostname=RELAY_HOST, ssh_port=port, known_hosts=known)


@pytest.mark.parametrize("name", ["ssh", "base64", "rsync", "scp"])
async def test_each_push_and_pull_opens_exactly_one_connection(
    node: FakeNode, relay: _Relay, tmp_path: Path, name: str
) -> None:
    data = os.urandom(1024 * 1024 + 1)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    config = via_relay(node, relay, tmp_path)
    t = ScpTransport() if name == "scp" else default_transports()[name]
    assert await t.push(config, src, f"{name}.bin", CONFIG) == len(data)
    assert (node.home / "data" / f"{name}.bin").read_bytes() == data
    assert relay.accepted == 1
    assert await t.pull(config, f"{name}.bin", back, CONFIG) == len(data)
    assert back.read_bytes() == data
    assert relay.accepted == 2


async def test_a_session_fails_instead_of_dialling_again_once_the_master_is_gone(
    node: FakeNode, relay: _Relay, tmp_path: Path
) -> None:
    config = via_relay(node, relay, tmp_path)
    master = await OpenSshMaster.open(SshEndpoint.direct(config), CONFIG, Tracker(config, "ssh"))
    try:
        assert (await master.run("echo up")).stdout == "up\n"
        os.kill(master.pid, signal.SIGKILL)  # the connection dies with its master
        with pytest.raises(ConnectionReset):
            await master.run("echo again")
    finally:
        await master.close()
    assert relay.accepted == 1
    assert not await asyncio.to_thread(master.control_dir.exists)


async def test_opening_a_master_sweeps_control_directories_a_killed_engine_left(
    node: FakeNode, relay: _Relay, tmp_path: Path
) -> None:
    """A dead engine's master died with it (parent-death signal); its socket refuses."""
    dead = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(dead / "c"))  # closed without unlinking: nothing listens any more
    live = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listening.bind(str(live / "c"))
        listening.listen()
        config = via_relay(node, relay, tmp_path)
        endpoint = SshEndpoint.direct(config)
        master = await OpenSshMaster.open(endpoint, CONFIG, Tracker(config, "ssh"))
        await master.close()
        assert not await asyncio.to_thread(dead.exists)
        assert await asyncio.to_thread((live / "c").exists)
    finally:
        listening.close()
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(dead, ignore_errors=True)
