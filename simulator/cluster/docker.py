"""DockerCluster: the fake nodes in containers behind the real Toxiproxy, same interface as
LocalCluster.

Layout (see :mod:`compose`): a private bridge network per cluster, one container per node
running the same FakeNode as LocalCluster, and the official Toxiproxy image in front of them.
Proxies are created with /populate; the engine dials the proxy ports Docker publishes on
127.0.0.1, the fault controller talks to Toxiproxy's published API (toxiproxy-python) and to
each node's published admin port for node-level faults. Needs ``pip install netfault[docker]``
and a Docker engine; the SDK is imported only when a cluster starts.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from netfault.engine import NodeConfig
from netfault.simulator.cluster.compose import (
    LOOPBACK,
    NODE_ADMIN_PORT,
    NODE_DOCKERFILE,
    NODE_IMAGE,
    NODE_SYSCTLS,
    SECRETS_DIR,
    TOXIPROXY_API_PORT,
    TOXIPROXY_IMAGE,
    node_command,
    published_proxy_ports,
    toxiproxy_command,
    toxiproxy_config,
    validate_specs,
)
from netfault.simulator.cluster.controller import FaultController
from netfault.simulator.cluster.docker_engine import (
    ENGINE_TIMEOUT,
    DockerBackendError,
    connect_engine,
    host_port,
    probe_until_up,
    secrets_tar,
)
from netfault.simulator.cluster.node_events import NodeEventPoller
from netfault.simulator.cluster.routes import config_fields, populate, route_ports
from netfault.simulator.cluster.routes import write_hosts_file as _write_hosts
from netfault.simulator.cluster.spec import ClusterBase, NodeSpec, proxy_name
from netfault.simulator.cluster.switchboard import AdminEndpoint, HttpSwitchboard
from netfault.simulator.node.keys import ClientKey, HostKeys, load_or_create_host_key

__all__ = ["DockerBackendError", "DockerCluster"]

START_TIMEOUT = 120.0
_clusters = itertools.count(1)


class DockerCluster(ClusterBase):
    """``async with DockerCluster(nodes=3, seed=1) as cluster:`` — as LocalCluster, in Docker."""

    def __init__(
        self,
        nodes: int | Sequence[NodeSpec | str] = 3,
        *,
        seed: int = 0,
        tailscale: bool = True,
        base_path: str = "data",
        node_image: str = NODE_IMAGE,
        build_context: Path | None = None,
        engine_timeout: float = ENGINE_TIMEOUT,
    ) -> None:
        self.specs = validate_specs(nodes, tailscale)
        self.seed = seed
        self.base_path = base_path
        self.node_image = node_image
        self.build_context = build_context
        self.engine_timeout = engine_timeout
        self.project = f"netfault-{os.getpid()}-{next(_clusters)}-{secrets.token_hex(2)}"
        self.nodes: dict[str, NodeConfig] = {}
        self.proxies: dict[tuple[str, str, str], str] = {}
        self.admin: dict[str, AdminEndpoint] = {}
        self.workdir: Path | None = None
        self.hosts_file = Path()
        self._client: Any = None
        self._network: Any = None
        self._containers: dict[str, Any] = {}  # node name -> container
        self._toxiproxy: Any = None
        self._client_key: ClientKey | None = None
        self._faults: FaultController | None = None

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="netfault-docker-"))
        try:
            async with asyncio.timeout(self.engine_timeout + 5):
                self._client = await asyncio.to_thread(connect_engine, self.engine_timeout)
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.to_thread(self._ensure_images)
                host_keys = await asyncio.to_thread(self._run_containers)
                await self._wait_ready()
                await self._create_routes()
            await asyncio.to_thread(self._write_files, host_keys)
        except BaseException:
            await self.stop()
            raise
        api = (LOOPBACK, host_port(self._toxiproxy, TOXIPROXY_API_PORT))
        self._faults = FaultController(
            *api,
            self._proxy_names,
            HttpSwitchboard(self.admin),
            lambda: list(self.nodes),
            seed=self.seed,
            counts_connections=False,  # the real Toxiproxy ignores a toxic's "connections"
        )

    def _ensure_images(self) -> None:
        images = self._client.images
        try:
            images.get(TOXIPROXY_IMAGE)
        except Exception:  # docker.errors.ImageNotFound; the SDK is imported lazily
            images.pull(TOXIPROXY_IMAGE)
        try:
            images.get(self.node_image)
            return
        except Exception:
            if self.build_context is None:
                raise DockerBackendError(
                    f"image {self.node_image} not found; build it from a netfault checkout: "
                    f"docker build -f {NODE_DOCKERFILE} -t {self.node_image} . "
                    "(or pass build_context=<checkout>)"
                ) from None
        images.build(path=str(self.build_context), dockerfile=NODE_DOCKERFILE, tag=self.node_image)

    def _run_containers(self) -> dict[str, HostKeys]:
        """Network, node containers with their secrets, then Toxiproxy (blocking)."""
        assert self.workdir is not None
        labels = {"netfault.project": self.project}
        self._network = self._client.networks.create(self.project, driver="bridge", labels=labels)
        key = ClientKey.generate(self.workdir / "client")
        host_keys: dict[str, HostKeys] = {}
        common = {"network": self.project, "labels": labels, "detach": True}
        for spec in self.specs:
            host_keys[spec.name] = self._start_node(spec, key, common)
        ports = [TOXIPROXY_API_PORT, *published_proxy_ports(self.specs).values()]
        toxiproxy = self._client.containers.create(
            TOXIPROXY_IMAGE,
            command=toxiproxy_command(seed=self.seed),
            name=f"{self.project}-toxiproxy",
            ports={f"{p}/tcp": (LOOPBACK, None) for p in ports},
            **common,
        )
        self._toxiproxy = toxiproxy
        toxiproxy.start()
        for container in [*self._containers.values(), toxiproxy]:
            container.reload()  # fills in the published ports
        for spec in self.specs:
            port = host_port(self._containers[spec.name], NODE_ADMIN_PORT)
            token = self.admin[spec.name].token
            self.admin[spec.name] = AdminEndpoint(f"http://{LOOPBACK}:{port}", token)
        self._client_key = key
        return host_keys

    def _start_node(self, spec: NodeSpec, key: ClientKey, common: dict[str, Any]) -> HostKeys:
        """Create the node's container, copy its secrets in, start it (blocking)."""
        assert self.workdir is not None
        token = secrets.token_urlsafe(24)
        node_dir = self.workdir / "nodes" / spec.name
        host_key = load_or_create_host_key(node_dir)
        container = self._client.containers.create(
            self.node_image,
            command=node_command(spec.name, spec.ssh_server),
            name=f"{self.project}-{spec.name}",
            hostname=spec.name,
            ports={f"{NODE_ADMIN_PORT}/tcp": (LOOPBACK, None)},
            sysctls=dict(NODE_SYSCTLS),
            **common,
        )
        self._containers[spec.name] = container
        files = {
            "token": token.encode() + b"\n",
            "authorized_keys": key.public_key.encode() + b"\n",
            "ssh_host_ed25519_key": (node_dir / "ssh_host_ed25519_key").read_bytes(),
        }
        container.put_archive(SECRETS_DIR, secrets_tar(files))
        container.start()
        self.admin[spec.name] = AdminEndpoint("", token)  # URL known once the port is published
        return HostKeys(host_key)

    async def _wait_ready(self) -> None:
        """Probe Toxiproxy's API and every node's admin /health until they answer."""
        api = host_port(self._toxiproxy, TOXIPROXY_API_PORT)
        targets = [(self._toxiproxy, f"http://{LOOPBACK}:{api}/version")]
        targets += [(self._containers[n], f"{e.url}/health") for n, e in self.admin.items()]
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(probe_until_up(session, c, u) for c, u in targets))

    async def _create_routes(self) -> None:
        names = {s.name: f"{self.project}-{s.name}" for s in self.specs}
        entries = toxiproxy_config(self.specs, upstream_host=names)
        api = host_port(self._toxiproxy, TOXIPROXY_API_PORT)
        await populate(LOOPBACK, api, entries, START_TIMEOUT)

    def _write_files(self, host_keys: dict[str, HostKeys]) -> None:
        assert self.workdir is not None and self._client_key is not None
        toxiproxy = self._toxiproxy
        published = {
            name: (LOOPBACK, host_port(toxiproxy, port))
            for name, port in published_proxy_ports(self.specs).items()
        }
        known_hosts = self.workdir / "known_hosts"
        lines = []
        for spec in self.specs:
            ports = route_ports(spec.name, published.get)
            for route, service in ports:
                self.proxies[(spec.name, route, service)] = proxy_name(spec.name, route, service)
            ssh = [addr for (_r, s), addr in ports.items() if s == "ssh"]
            lines.append(host_keys[spec.name].known_hosts_lines(ssh))
            self.nodes[spec.name] = NodeConfig(
                name=spec.name,
                ssh_user="netfault",
                ssh_key=self._client_key.private_path,
                known_hosts=known_hosts,
                http_token=self.admin[spec.name].token,
                base_path=self.base_path,
                transports=spec.transports,
                **config_fields(ports),
            )
        known_hosts.write_text("".join(lines))
        self.hosts_file = self.workdir / "hosts.yaml"
        _write_hosts(self.hosts_file, self.nodes)

    async def stop(self) -> None:
        """Clear every fault, remove the containers and network, remove the work directory."""
        try:
            if self._faults is not None:
                await asyncio.to_thread(self._faults.clear_all)
        finally:
            self._faults = None
            await asyncio.to_thread(self._remove_containers)
            if self.workdir is not None:
                await asyncio.to_thread(shutil.rmtree, self.workdir, True)
                self.workdir = None

    def _remove_containers(self) -> None:
        errors = []
        containers = [*self._containers.values(), self._toxiproxy]
        for container in [c for c in containers if c is not None]:
            try:
                container.remove(force=True)
            except Exception as exc:  # keep removing the rest; report at the end
                errors.append(exc)
        self._containers.clear()
        self._toxiproxy = None
        if self._network is not None:
            try:
                self._network.remove()
            except Exception as exc:
                errors.append(exc)
            self._network = None
        if errors:
            raise DockerBackendError(
                f"removing {self.project} left something behind ({errors[0]}); "
                f"see `docker ps -a --filter label=netfault.project={self.project}`"
            ) from errors[0]

    # -- faults and files --------------------------------------------------------

    def subscribe_node_faults(
        self, listener: Callable[[str, dict[str, object]], None]
    ) -> Callable[[], None]:
        """Call ``listener(node, record)`` from a poller thread per node as a node reports a
        fault (its admin API's ``/faults/events``, long-polled); blocks while it starts."""
        poller = NodeEventPoller(self.admin, listener)
        poller.start()
        return poller.stop

    def home_path(self, name: str, remote_path: str) -> Path | None:
        """Files live in the container; use :meth:`read_remote`."""
        return None

    async def read_remote(self, name: str, remote_path: str) -> bytes | None:
        """The file's bytes through the node's admin API (never faulted), None if absent."""
        self.node(name)
        endpoint = self.admin[name]
        url = f"{endpoint.url}/files/{self.base_path}/{remote_path.lstrip('/')}"
        headers = {"Authorization": f"Bearer {endpoint.token}"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.get(url, headers=headers) as resp,
        ):
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise DockerBackendError(f"{name}: GET {url} answered {resp.status}")
            return await resp.read()
