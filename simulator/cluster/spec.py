"""What a cluster is made of: node specs, and the shared interface of every backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from netfault.engine import NodeConfig, TransportSpec
from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.node.faults import SSH_SERVERS
from netfault.simulator.proxy.trace import FaultEvent

SERVICES = ("ssh", "http", "p2p")


@dataclass(frozen=True)
class NodeSpec:
    """One node of a fake cluster; ``ssh_server`` is "asyncssh" or "openssh" (the real sshd)."""

    name: str
    tailscale: bool = True
    transports: tuple[TransportSpec, ...] = ()
    ssh_server: str = "asyncssh"

    def __post_init__(self) -> None:
        if self.ssh_server not in SSH_SERVERS:
            raise ValueError(
                f"node {self.name}: ssh_server must be one of {', '.join(SSH_SERVERS)}, "
                f"not {self.ssh_server!r}"
            )


def normalise_specs(
    nodes: int | Sequence[NodeSpec | str], tailscale: bool, ssh_server: str = "asyncssh"
) -> list[NodeSpec]:
    """NodeSpecs for a node count or names; ``tailscale``/``ssh_server`` apply to those two."""
    if isinstance(nodes, int):
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        return [
            NodeSpec(f"node-{i + 1}", tailscale=tailscale, ssh_server=ssh_server)
            for i in range(nodes)
        ]
    specs = [
        NodeSpec(n, tailscale=tailscale, ssh_server=ssh_server) if isinstance(n, str) else n
        for n in nodes
    ]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"node names must be unique: {names}")
    return specs


def proxy_name(node: str, route: str, service: str) -> str:
    return f"{node}-{route}-{service}"


class Cluster(Protocol):
    """What a scenario or test gets, whichever backend runs the nodes."""

    seed: int
    nodes: dict[str, NodeConfig]
    hosts_file: Path

    @property
    def faults(self) -> FaultController: ...

    def node(self, name: str) -> NodeConfig: ...

    def home_path(self, name: str, remote_path: str) -> Path | None:
        """Where ``remote_path`` (under base_path) lands on the node, when readable here."""
        ...

    async def read_remote(self, name: str, remote_path: str) -> bytes | None: ...

    def fault_events(self, cursor: int = 0) -> list[FaultEvent]:
        """The fault proxy's decisions numbered above ``cursor``, oldest first."""
        ...

    def subscribe_node_faults(
        self, listener: Callable[[str, dict[str, object]], None]
    ) -> Callable[[], None]:
        """Call ``listener(node, record)`` (from another thread) each time a node reports a
        fault acting (``NodeFaults.report``); returns the function that stops it."""
        ...


class ClusterBase:
    """What LocalCluster and DockerCluster share: node lookup, faults, routes, async with."""

    nodes: dict[str, NodeConfig]
    proxies: dict[tuple[str, str, str], str]
    _faults: FaultController | None

    @property
    def faults(self) -> FaultController:
        if self._faults is None:
            raise RuntimeError(
                f"the cluster is not running; use 'async with {type(self).__name__}()'"
            )
        return self._faults

    def node(self, name: str) -> NodeConfig:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r} in this cluster ({sorted(self.nodes)})") from None

    def _proxy_names(self, node: str, route: str | None, service: str | None) -> list[str]:
        """The proxies a fault on (node, route, service) acts on; None means every one."""
        return [
            name
            for (n, r, s), name in self.proxies.items()
            if n == node and route in (None, r) and service in (None, s)
        ]

    def fault_events(self, cursor: int = 0) -> list[FaultEvent]:
        return []  # the Docker backend runs Toxiproxy itself, which records none

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
