"""LocalCluster: fake nodes behind the fault proxy, all on loopback, started in one call.

The proxy and the nodes run on their own thread and event loop, so the engine under test
never shares a loop with the network it is tested against, and toxiproxy-python (a blocking
client) can drive the proxy from the engine's loop without a deadlock.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from netfault.engine.config import NodeConfig
from netfault.simulator.cluster.addresses import AddressPlan
from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.cluster.loop_thread import LoopThread
from netfault.simulator.cluster.spec import SERVICES, NodeSpec, normalise_specs, proxy_name
from netfault.simulator.node import ClientKey, FakeNode
from netfault.simulator.proxy import ProxyServer

START_TIMEOUT = 30.0


class LocalCluster:
    """``async with LocalCluster(nodes=5, seed=1) as cluster:`` — nodes, faults, hosts file."""

    def __init__(
        self,
        nodes: int | Sequence[NodeSpec | str] = 3,
        *,
        seed: int = 0,
        tailscale: bool = True,
        base_path: str = "data",
    ) -> None:
        self.specs = normalise_specs(nodes, tailscale)
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

    @property
    def faults(self) -> FaultController:
        if self._faults is None:
            raise RuntimeError("the cluster is not running; use 'async with LocalCluster()'")
        return self._faults

    def node(self, name: str) -> NodeConfig:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r} in this cluster ({sorted(self.nodes)})") from None

    def fake(self, name: str) -> FakeNode:
        return self.fakes[name]

    # -- lifecycle -------------------------------------------------------------
    async def __aenter__(self) -> LocalCluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="netfault-cluster-"))
        self._thread.start()
        try:
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

    async def _start_servers(self) -> None:
        assert self.workdir is not None
        self._proxy = ProxyServer(self.plan.address("hostname", 0), 0, seed=self.seed)
        key = await asyncio.to_thread(ClientKey.generate, self.workdir)
        for i, spec in enumerate(self.specs):
            host = self.plan.address("backend", i)
            self.fakes[spec.name] = FakeNode(spec.name, host=host, client_keys=[key])
        await asyncio.gather(self._proxy.start(), *(n.start() for n in self.fakes.values()))

    async def _create_routes(self) -> None:
        """One proxy per node, route and service, created with a single /populate call."""
        assert self._proxy is not None
        entries = []
        for i, spec in enumerate(self.specs):
            fake = self.fakes[spec.name]
            routes = ["hostname", "tailscale"] if spec.tailscale else ["hostname"]
            for route in routes:
                for service in SERVICES:
                    port = fake.ssh_port if service == "ssh" else fake.http_port
                    entries.append(
                        {
                            "name": proxy_name(spec.name, route, service),
                            "listen": f"{self.plan.address(route, i)}:0",
                            "upstream": f"{fake.host}:{port}",
                        }
                    )
        url = f"http://{self._proxy.host}:{self._proxy.port}/populate"
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url, json=entries, timeout=aiohttp.ClientTimeout(total=START_TIMEOUT)
            ) as response,
        ):
            body = await response.json(content_type=None)
            if response.status != 201:
                raise RuntimeError(f"creating the cluster's proxies failed: {body}")
        listen = {p["name"]: p["listen"] for p in body["proxies"]}
        for spec in self.specs:
            self.nodes[spec.name] = await self._thread.arun(self._configure(spec, listen))

    async def _configure(self, spec: NodeSpec, listen: dict[str, str]) -> NodeConfig:
        """The NodeConfig the engine uses: every address and port is a proxy route."""
        fake = self.fakes[spec.name]
        ports: dict[tuple[str, str], tuple[str, int]] = {}
        for route, service in [(r, s) for r in ("hostname", "tailscale") for s in SERVICES]:
            name = proxy_name(spec.name, route, service)
            if name in listen:
                host, _, port = listen[name].rpartition(":")
                ports[(route, service)] = (host, int(port))
                self.proxies[(spec.name, route, service)] = name
        for (_route, service), (host, port) in ports.items():
            if service == "ssh":
                fake.add_route_to_known_hosts(host, port)
        ts = ports.get(("tailscale", "ssh"))
        return fake.node_config(
            name=spec.name,
            hostname=ports[("hostname", "ssh")][0],
            ssh_port=ports[("hostname", "ssh")][1],
            http_port=ports[("hostname", "http")][1],
            p2p_port=ports[("hostname", "p2p")][1],
            tailscale_ip=ts[0] if ts else None,
            tailscale_ssh_port=ts[1] if ts else None,
            tailscale_http_port=ports[("tailscale", "http")][1] if ts else None,
            base_path=self.base_path,
            transports=spec.transports,
        )

    def _write_hosts_file(self) -> None:
        out: dict[str, Any] = {}
        for name, cfg in self.nodes.items():
            entry = {
                k: v
                for k, v in {
                    "hostname": cfg.hostname,
                    "tailscale_ip": cfg.tailscale_ip,
                    "ssh_port": cfg.ssh_port,
                    "http_port": cfg.http_port,
                    "p2p_port": cfg.p2p_port,
                    "tailscale_ssh_port": cfg.tailscale_ssh_port,
                    "tailscale_http_port": cfg.tailscale_http_port,
                    "ssh_user": cfg.ssh_user,
                    "ssh_key": str(cfg.ssh_key) if cfg.ssh_key else None,
                    "known_hosts": str(cfg.known_hosts) if cfg.known_hosts else None,
                    "http_token": cfg.http_token,
                    "base_path": cfg.base_path,
                }.items()
                if v is not None
            }
            if cfg.transports:
                entry["transports"] = [vars(t) for t in cfg.transports]
            out[name] = entry
        self.hosts_file.write_text(yaml.safe_dump({"nodes": out}, sort_keys=False))

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

    async def _stop_servers(self) -> None:
        stops = [n.stop() for n in self.fakes.values()]
        if self._proxy is not None:
            stops.append(self._proxy.aclose())
        await asyncio.gather(*stops, return_exceptions=True)

    # -- faults and files --------------------------------------------------------
    def _proxy_names(self, node: str, route: str | None, service: str | None) -> list[str]:
        return [
            name
            for (n, r, s), name in self.proxies.items()
            if n == node and route in (None, r) and service in (None, s)
        ]

    def _switch(self, node: str, fn: Callable[[Any], Any]) -> Any:
        fake = self.fakes[node]
        return self._thread.call(lambda: fn(fake.faults))

    def home_path(self, name: str, remote_path: str) -> Path:
        return self.fakes[name].home / self.node(name).base_path / remote_path

    async def read_remote(self, name: str, remote_path: str) -> bytes | None:
        path = self.home_path(name, remote_path)
        return await asyncio.to_thread(lambda: path.read_bytes() if path.exists() else None)
