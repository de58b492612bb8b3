"""The fake node's SSH server: key auth, exec as real processes, SFTP/SCP, channel faults."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from pathlib import Path
from typing import Any, cast

import asyncssh

from netfault.simulator.node.exec_session import ExecSession, ProcessRegistry, build_env
from netfault.simulator.node.faults import NodeFaults, mangle
from netfault.simulator.node.keys import HostKeys
from netfault.simulator.node.paths import disk_usage
from netfault.simulator.node.sftp import NodeSFTPServer

CLOSE_TIMEOUT = 5.0
LOGIN_TIMEOUT = 30.0


class ManglingChannel(asyncssh.SSHServerChannel[bytes]):
    """A session channel that applies the node's channel faults to its data.

    ``binary_mangling`` rewrites bytes with :func:`mangle`; ``binary_reset_after`` resets the
    TCP connection (RST) once the channel has carried that many bytes and some of them were
    binary (>= 0x80), like a middlebox that kills binary SSH streams; base64 text passes.
    """

    netfault_faults: NodeFaults
    netfault_seen = 0
    netfault_binary = False
    netfault_inbound = 0  # bytes delivered to the command so far
    netfault_outbound = 0  # bytes the command wrote so far
    netfault_mangled = False  # the first change is reported, once per channel
    netfault_was_reset = False

    def _deliver_data(self, data: bytes, datatype: Any) -> None:
        if isinstance(data, bytes) and self._netfault_reset(data):
            return
        if self.netfault_faults.binary_mangling and isinstance(data, bytes):
            data = self._netfault_mangle("inbound", data, self.netfault_inbound)
        self.netfault_inbound += len(data)
        super()._deliver_data(data, datatype)

    def write(self, data: bytes, datatype: Any = None) -> None:
        if isinstance(data, bytes | bytearray) and self._netfault_reset(bytes(data)):
            return
        if self.netfault_faults.binary_mangling and isinstance(data, bytes | bytearray):
            data = self._netfault_mangle("outbound", bytes(data), self.netfault_outbound)
        self.netfault_outbound += len(data)
        super().write(data, datatype)

    def _netfault_mangle(self, direction: str, data: bytes, offset: int) -> bytes:
        """``data`` mangled; the first byte changed on this channel is reported at once."""
        out = mangle(data)
        if not self.netfault_mangled and out != data:
            self.netfault_mangled = True
            pairs = enumerate(zip(data, out, strict=False))
            first = next((i for i, (a, b) in pairs if a != b), min(len(data), len(out)))
            self.netfault_faults.report(
                {"fault": "corrupt_binary", "mode": "strip_high_bit", "direction": direction}
                # every byte is mangled the same way: the first change is fixed by the data
                | {"offset": offset + first, "offset_exact": True}
            )
        return out

    def _netfault_reset(self, data: bytes) -> bool:
        if self.netfault_was_reset:  # data still queued when it was cut: gone with it
            return True
        limit = self.netfault_faults.binary_reset_after
        if limit is None:
            return False
        self.netfault_seen += len(data)
        self.netfault_binary = self.netfault_binary or max(data, default=0) >= 0x80
        if not (self.netfault_binary and self.netfault_seen > limit):
            return False
        self.netfault_was_reset = True
        self.netfault_faults.report({"fault": "reset", "offset": self.netfault_seen})
        conn = self.get_connection()
        sock = conn.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.abort()
        return True


class _NodeSSHServer(asyncssh.SSHServer):
    """Per-connection auth policy; swaps session channels for mangling ones."""

    def __init__(self, owner: NodeSSHServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None
        self._faults = owner.faults

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner.connections.add(conn)
        create = conn.create_server_channel
        # counted at accept; the connection that uses a scoped fault up keeps it
        faults = self._faults = self._owner.faults.admit("ssh")

        def create_mangling_channel(*args: Any, **kwargs: Any) -> ManglingChannel:
            chan = create(*args, **kwargs)
            # Same layout, extra behaviour: asyncssh offers no hook to choose the channel class.
            chan.__class__ = ManglingChannel
            mangling = cast(ManglingChannel, chan)
            mangling.netfault_faults = faults
            return mangling

        setattr(conn, "create_server_channel", create_mangling_channel)  # noqa: B010

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self._owner.accepts(username, key, self._faults)


class NodeSSHServer:
    """Listens on one address; runs exec requests in ``home`` as real processes."""

    def __init__(
        self,
        *,
        home: Path,
        user: str,
        faults: NodeFaults,
        host_keys: HostKeys,
        authorized: list[asyncssh.SSHKey],
    ) -> None:
        self.home = home
        self.user = user
        self.faults = faults
        self.host_keys = host_keys
        self.authorized = authorized
        self.connections: set[asyncssh.SSHServerConnection] = set()
        self.processes = ProcessRegistry()
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def accepts(self, username: str, key: asyncssh.SSHKey, faults: NodeFaults) -> bool:
        """Whether ``key`` logs ``username`` in on a connection meeting ``faults``."""
        if faults.auth_refused or username != self.user:
            return False
        wanted = key.public_data
        return any(k.public_data == wanted for k in self.authorized)

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port) and return the real port."""
        self._acceptor = await asyncssh.listen(
            host,
            port,
            server_factory=lambda: _NodeSSHServer(self),
            server_host_keys=[self.host_keys.current(self.faults.host_key_changed)],
            process_factory=self._handle_process,
            sftp_factory=lambda chan: NodeSFTPServer(chan, self.home, _faults_of(chan)),
            allow_scp=True,
            encoding=None,
            reuse_address=True,
            login_timeout=LOGIN_TIMEOUT,
            agent_forwarding=False,
            x11_forwarding=False,
        )
        real_port: int = self._acceptor.get_port()
        return real_port

    def refresh_host_key(self) -> None:
        """Present the key matching ``faults.host_key_changed`` to connections from now on."""
        if self._acceptor is not None:
            key = self.host_keys.current(self.faults.host_key_changed)
            self._acceptor.update(server_host_keys=[key])

    async def _handle_process(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        quota = _faults_of(process.channel).disk_quota
        limit = None
        if quota is not None:
            limit = quota - await asyncio.to_thread(disk_usage, self.home)
        session = ExecSession(
            process,
            home=self.home,
            env=build_env(self.home, self.user, process),
            registry=self.processes,
            fsize_limit=limit,
        )
        await session.run()

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        await self.processes.kill_all()
        for conn in conns:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await conn.wait_closed()
        self.connections.clear()


def _faults_of(chan: object) -> NodeFaults:
    """The faults a session channel's connection meets (set when the channel was made)."""
    faults: NodeFaults = getattr(chan, "netfault_faults")  # noqa: B009
    return faults
