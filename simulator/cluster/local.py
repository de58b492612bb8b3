"""LocalCluster: fake nodes behind the fault proxy, all on loopback, started in one call.

The proxy and the nodes run on their own thread and event loop, so the engine under test
never shares a loop with the network it is tested against, and toxiproxy-python (a blocking
client) can drive the proxy from the engine's loop without a deadlock.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from netfault.engine import NodeConfig
from netfault.simulator.cluster.addresses import AddressPlan
from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.cluster.faults import FaultError
from netfault.simulator.cluster.loop_thread import LoopThread
from netfault.simulator.cluster.routes import (
    config_fields,
    populate,
    route_entries,
    route_ports,
    split_listen,
    ssh_routes,
    write_hosts_file,
)
from netfault.simulator.cluster.spec import ClusterBase, NodeSpec, normalise_specs, proxy_name
from netfault.simulator.node import ClientKey, FakeNode
from netfault.simulator.node.keys import KEY_ALGORITHM
from netfault.simulator.proxy import ProxyServer
from netfault.simulator.proxy.trace import FaultEvent

START_TIMEOUT = 30.0
FAULT_EVENTS = 100_000  # the proxy's fault events kept for fault_events()
KNOWN_HOSTS = "known_hosts"  # in the work directory: every node's ssh routes, one file


_gc_lock = threading.Lock()
_gc_holders = 0


def _gc_hold(hold: bool) -> None:
    """While a cluster starts and runs, the objects that exist once it is ready (its servers,
    apps and proxies: about 600 per node, and whatever the process held before) stay out of
    the garbage collector's full passes (``gc.freeze``), which took about 100 ms each at 200
    nodes and stalled every thread of the process. The last cluster to stop hands them back
    (``gc.unfreeze``); until then reference cycles among them are not collected."""
    global _gc_holders
    with _gc_lock:
        _gc_holders += 1 if hold else -1
        if hold:
            gc.freeze()
        elif _gc_holders == 0:
            gc.unfreeze()


class LocalCluster(ClusterBase):
    """``async with LocalCluster(nodes=5, seed=1) as cluster:`` — nodes, faults, hosts file."""

    def __init__(
        self,
        nodes: int | Sequence[NodeSpec | str] = 3,
        *,
        seed: int = 0,
        tailscale: bool = True,
        base_path: str = "data",
        ssh_server: str = "asyncssh",
    ) -> None:
        """``ssh_server`` ("asyncssh" or "openssh") is for nodes given as a count or names;
        a NodeSpec carries its own."""
        self.specs = normalise_specs(nodes, tailscale, ssh_server)
        self.seed = seed
        self.base_path = base_path
        self.plan = AddressPlan()
        self.nodes: dict[str, NodeConfig] = {}
        self.fakes: dict[str, FakeNode] = {}
        self.proxies: dict[tuple[str, str, str], str] = {}
        self.workdir: Path | None = None
        self.hosts_file = Path()
        self._thread = LoopThread(f"netfault-cluster-{self.plan.second_octet}")
        self._proxy: ProxyServer | None = None
        self._faults: FaultController | None = None
        self._gc_held = False

    def fake(self, name: str) -> FakeNode:
        return self.fakes[name]

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="netfault-cluster-"))
        self._thread.start()
        try:
            _gc_hold(True)  # what exists already (and, at the end, the cluster) is frozen
            self._gc_held = True
            await self._thread.arun(self._start_servers(), START_TIMEOUT)
            await self._create_routes()
        except BaseException:
            await self.stop()
            raise
        assert self._proxy is not None
        self._faults = FaultController(
            self._proxy.host,
            self._proxy.port,
            self._proxy_names,
            self._switch,
            lambda: list(self.nodes),
            seed=self.seed,
        )
        self.hosts_file = self.workdir / "hosts.yaml"
        await asyncio.to_thread(self._write_hosts_file)
        gc.freeze()

    async def _start_servers(self) -> None:
        assert self.workdir is not None
        host = self.plan.address("hostname", 0)
        self._proxy = ProxyServer(host, 0, seed=self.seed, events=FAULT_EVENTS)
        key = await asyncio.to_thread(ClientKey.generate, self.workdir)
        # One host key for every node (each still has its own replacement for the
        # host_key_changed fault, made when first needed): two keys per node took 80 ms of a
        # 200-node start.
        host_key = asyncssh.generate_private_key(KEY_ALGORITHM)
        for i, spec in enumerate(self.specs):
            host = self.plan.address("backend", i)
            self.fakes[spec.name] = FakeNode(
                spec.name,
                host=host,
                client_keys=[key],
                host_key=host_key,
                ssh_server=spec.ssh_server,
                root=self.workdir / "nodes" / str(i + 1),  # made by start(), off the loop
            )
        await asyncio.gather(self._proxy.start(), *(n.start() for n in self.fakes.values()))

    async def _create_routes(self) -> None:
        """One proxy per node, route and service, created with a single /populate call."""
        assert self._proxy is not None
        fakes = [self.fakes[spec.name] for spec in self.specs]

        def upstream(i: int, service: str) -> str:
            port = fakes[i].ssh_port if service == "ssh" else fakes[i].http_port
            return f"{fakes[i].host}:{port}"

        entries = route_entries(
            self.specs, lambda i, route, _s: f"{self.plan.address(route, i)}:0", upstream
        )
        listen = await populate(self._proxy.host, self._proxy.port, entries, START_TIMEOUT)
        configs = await self._thread.arun(self._configure_all(listen), START_TIMEOUT)
        self.nodes.update(configs)

    async def _configure_all(self, listen: dict[str, str]) -> dict[str, NodeConfig]:
        """Every node's NodeConfig, in one hop to the cluster's loop (not one per node)."""
        return {spec.name: self._configure(spec, listen) for spec in self.specs}

    def _configure(self, spec: NodeSpec, listen: dict[str, str]) -> NodeConfig:
        """The NodeConfig the engine uses: every address and port is a proxy route, and the
        cluster's known_hosts trusts the node's host key on its ssh routes."""
        assert self.workdir is not None
        fake = self.fakes[spec.name]
        ports = route_ports(spec.name, lambda n: split_listen(listen[n]) if n in listen else None)
        for route, service in ports:
            self.proxies[(spec.name, route, service)] = proxy_name(spec.name, route, service)
        return fake.node_config(
            name=spec.name,
            base_path=self.base_path,
            transports=spec.transports,
            known_hosts=self.workdir / KNOWN_HOSTS,
            **config_fields(ports),
        )

    def _write_hosts_file(self) -> None:
        assert self.workdir is not None
        lines = [
            self.fakes[name].known_hosts_lines(ssh_routes(c)) for name, c in self.nodes.items()
        ]
        (self.workdir / KNOWN_HOSTS).write_text("".join(lines))
        write_hosts_file(self.hosts_file, self.nodes)

    async def stop(self) -> None:
        """Clear every fault, stop nodes and proxy, remove the work directory."""
        try:
            if self._faults is not None:
                await asyncio.to_thread(self._faults.clear_all)
        finally:
            self._faults = None
            if self._thread.loop is not None:
                await self._thread.arun(self._stop_servers(), START_TIMEOUT)
                self._thread.stop()
            if self.workdir is not None:
                await asyncio.to_thread(shutil.rmtree, self.workdir, True)
                self.workdir = None
            if self._gc_held:
                self._gc_held = False
                _gc_hold(False)

    async def _stop_servers(self) -> None:
        stops = [n.stop() for n in self.fakes.values()]
        if self._proxy is not None:
            stops.append(self._proxy.aclose())
        await asyncio.gather(*stops, return_exceptions=True)

    # -- faults and files --------------------------------------------------------

    def _switch(self, node: str, fn: Callable[[Any], Any]) -> Any:
        fake = self.fakes[node]
        try:
            return self._thread.call(lambda: fn(fake.faults))
        except FaultError:
            raise
        except ValueError as exc:  # a fault this node's SSH server cannot express
            raise FaultError(f"node {node}: {exc}") from exc

    def fault_events(self, cursor: int = 0) -> list[FaultEvent]:
        """The proxy's fault events numbered above ``cursor`` (callable from any thread)."""
        return [] if self._proxy is None else self._proxy.collection.fault_events(cursor)

    def subscribe_fault_events(self, listener: Callable[[FaultEvent], None]) -> Callable[[], None]:
        """Call ``listener`` on the proxy's thread with each fault event; returns the stop."""
        assert self._proxy is not None, "the cluster is not running"
        return self._proxy.collection.subscribe(listener)

    def subscribe_node_faults(
        self, listener: Callable[[str, dict[str, object]], None]
    ) -> Callable[[], None]:
        """Call ``listener(node, record)`` on the nodes' thread as a node reports a fault."""
        stops = [
            fake.faults.on_fired(functools.partial(listener, name))
            for name, fake in self.fakes.items()
        ]

        def stop() -> None:
            for each in stops:
                each()

        return stop

    def home_path(self, name: str, remote_path: str) -> Path:
        return self.fakes[name].home / self.node(name).base_path / remote_path

    async def read_remote(self, name: str, remote_path: str) -> bytes | None:
        path = self.home_path(name, remote_path)
        return await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)
