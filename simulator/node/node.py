"""FakeNode: a sandbox home plus an SSH server and an HTTP agent on one loopback address.

The SSH server is asyncssh (``ssh_server="asyncssh"``, every node fault) or the real OpenSSH
``sshd`` (``ssh_server="openssh"``, see :mod:`netfault.simulator.node.sshd`).

The node keeps its keys, known_hosts and (unless given) its home in a private directory (a
temporary one made at construction unless ``root`` is given, which ``start()`` makes) until
:meth:`FakeNode.stop`; a later ``start()`` recreates it with the same keys and paths. Fault
switches (``node.faults``) must be flipped from the thread running the node's event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from netfault.simulator.node.errors import NodeStartError
from netfault.simulator.node.faults import SSH_SERVERS, NodeFaults
from netfault.simulator.node.http_agent import HttpAgent
from netfault.simulator.node.keys import ClientKey, HostKeys
from netfault.simulator.node.ssh_server import NodeSSHServer
from netfault.simulator.node.sshd import OpenSSHServer, SshdFaults
from netfault.simulator.node.sshd_files import current_user

if TYPE_CHECKING:
    import asyncssh

    from netfault.engine import NodeConfig

DEFAULT_BASE_PATH = "data"
DEFAULT_USER = "netfault"


class FakeNode:
    """One fake cluster node; use ``async with FakeNode("node-1") as node:``."""

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        ssh_port: int = 0,
        http_port: int = 0,
        home: Path | None = None,
        client_keys: list[ClientKey] | None = None,
        token: str | None = None,
        user: str | None = None,
        admin_port: int | None = None,
        p2p_port: int | None = None,
        authorized_keys: Sequence[asyncssh.SSHKey] = (),
        host_key: asyncssh.SSHKey | None = None,
        ssh_server: str = "asyncssh",
        root: Path | None = None,
    ) -> None:
        """``admin_port`` (None: none) serves the never-faulted admin API (see HttpAgent);
        ``p2p_port`` (None: none) serves the HTTP agent a second time, as the p2p endpoint;
        ``authorized_keys`` are accepted besides ``client_keys``; ``host_key`` fixes the key;
        ``user`` defaults to "netfault" on asyncssh and must be the current user on openssh;
        ``root`` (default: a new temporary directory) is a directory of the node's own, created
        by ``start()`` if missing and removed by ``stop()``."""
        user = _check_server(name, ssh_server, user)
        self.ssh_server = ssh_server
        self.name = name
        self.host = host
        self.ssh_port = ssh_port
        self.http_port = http_port
        self.admin_port = admin_port
        self.p2p_port = p2p_port
        self.user = user
        self.token = token or secrets.token_urlsafe(24)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self._root = root or Path(tempfile.mkdtemp(prefix=f"netfault-{safe}-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._root), True)
        self.home = (home if home is not None else self._root / "home").absolute()
        self._key_dir = self._root / "ssh"
        self._generated: dict[Path, bytes] = {}
        if client_keys is None:
            key = ClientKey.generate(self._key_dir)
            self._generated[key.private_path] = key.private_path.read_bytes()
            client_keys = [key]
        self.client_keys = list(client_keys)
        self.client_key = self.client_keys[0]
        self.known_hosts_path = self._key_dir / "known_hosts"
        self.faults = SshdFaults() if ssh_server == "openssh" else NodeFaults()
        self.faults.on_change(self._fault_changed)
        self._host_keys = HostKeys(host_key)
        self._extra_routes: list[tuple[str, int]] = []
        authorized = [k.load_public() for k in self.client_keys] + list(authorized_keys)
        self._ssh: NodeSSHServer | OpenSSHServer
        if ssh_server == "openssh":
            self._ssh = OpenSSHServer(
                name=name,
                directory=self._root / "sshd",
                home=self.home,
                user=user,
                faults=self.faults,
                host_keys=self._host_keys,
                authorized=authorized,
            )
        else:
            self._ssh = NodeSSHServer(
                home=self.home,
                user=user,
                faults=self.faults,
                host_keys=self._host_keys,
                authorized=authorized,
            )
        self._http = HttpAgent(name=name, home=self.home, token=self.token, faults=self.faults)
        self._running = False

    async def __aenter__(self) -> FakeNode:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start both servers; ports given as 0 are replaced by the real ones."""
        if self._running:
            return
        # File system calls run on a worker thread: on a loaded disk a mkdir or a small write
        # takes 0.05-0.7 ms, and a cluster starting 200 nodes at once overlaps them there.
        await asyncio.to_thread(self._prepare_dirs)
        service, port = "SSH", self.ssh_port
        try:
            self.ssh_port = await self._ssh.start(self.host, port)
            service, port = "HTTP", self.http_port
            self.http_port = await self._http.start(self.host, port)
            if self.admin_port is not None:
                service, port = "admin", self.admin_port
                self.admin_port = await self._http.start_admin(self.host, port)
            if self.p2p_port is not None:
                service, port = "p2p", self.p2p_port
                self.p2p_port = await self._http.start_p2p(self.host, port)
        except OSError as exc:
            await self._stop_servers()
            raise NodeStartError(
                f"node {self.name}: cannot listen for {service} on {self.host} port {port} "
                f"({exc.strerror or exc}); choose another address or port (0: any free port)",
                node=self.name,
            ) from exc
        self._running = True
        await asyncio.to_thread(self._write_known_hosts)

    async def stop(self) -> None:
        """Stop both servers, kill exec processes and remove the node's temporary directory."""
        await self._stop_servers()
        self._running = False
        await asyncio.to_thread(shutil.rmtree, self._root, True)

    async def _stop_servers(self) -> None:
        try:
            await self._http.stop()
        finally:
            await self._ssh.stop()

    def _prepare_dirs(self) -> None:
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._key_dir.mkdir(mode=0o700, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / DEFAULT_BASE_PATH).mkdir(exist_ok=True)
        for path, data in self._generated.items():
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)

    def _write_known_hosts(self) -> None:
        routes = ([(self.host, self.ssh_port)] if self.ssh_port else []) + self._extra_routes
        tmp = self.known_hosts_path.with_name(self.known_hosts_path.name + ".tmp")
        tmp.write_text(self._host_keys.known_hosts_lines(routes))
        os.replace(tmp, self.known_hosts_path)

    def add_route_to_known_hosts(self, host: str, port: int) -> None:
        """Trust this node's host key on another address/port (a proxied route)."""
        if (host, port) not in self._extra_routes:
            self._extra_routes.append((host, port))
        if self._key_dir.is_dir():
            self._write_known_hosts()

    def known_hosts_lines(self, routes: Sequence[tuple[str, int]]) -> str:
        """known_hosts lines trusting this node's host key on these (host, port) routes, for
        a known_hosts file shared by several nodes."""
        return self._host_keys.known_hosts_lines(list(routes))

    def openssh_options(self) -> list[str]:
        """``ssh``/``scp``/``sftp`` options reaching this node directly (port as ``-P``/``-p``
        is left to the caller since scp and ssh spell it differently)."""
        return [
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts_path}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"User={self.user}",
            "-i",
            str(self.client_key.private_path),
        ]

    def node_config(self, **overrides: object) -> NodeConfig:
        """A NodeConfig reaching this node directly; ``overrides`` replace fields."""
        # Imported here so the simulator's servers start even while the engine is broken.
        from netfault.engine import NodeConfig

        config = NodeConfig(
            hostname=self.host,
            name=self.name,
            ssh_port=self.ssh_port,
            http_port=self.http_port,
            ssh_user=self.user,
            ssh_key=self.client_key.private_path,
            known_hosts=self.known_hosts_path,
            http_token=self.token,
            base_path=DEFAULT_BASE_PATH,
        )
        if self.p2p_port:
            config = config.with_changes(p2p_port=self.p2p_port)
        return config.with_changes(**overrides) if overrides else config

    @property
    def ssh_log(self) -> Path | None:
        """The sshd log of an OpenSSH node (None on asyncssh, which logs through Python)."""
        return self._ssh.log_path if isinstance(self._ssh, OpenSSHServer) else None

    def _fault_changed(self, name: str) -> None:
        if name == "http_mode":
            self._http.apply_mode()
        elif isinstance(self._ssh, OpenSSHServer):
            self._ssh.apply_fault(name)
        elif name == "host_key_changed":
            self._ssh.refresh_host_key()


def _check_server(node: str, ssh_server: str, user: str | None) -> str:
    """The SSH user of a node running ``ssh_server``; ValueError for an impossible choice."""
    if ssh_server not in SSH_SERVERS:
        raise ValueError(
            f"node {node}: ssh_server must be one of {', '.join(SSH_SERVERS)}, not {ssh_server!r}"
        )
    if ssh_server == "asyncssh":
        return user or DEFAULT_USER
    me = current_user()
    if user not in (None, me):
        raise ValueError(
            f"node {node}: an sshd started as {me!r} can only log in {me!r}, not {user!r}; "
            f"leave the user unset or use ssh_server 'asyncssh'"
        )
    return me
