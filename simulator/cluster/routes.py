"""Proxy routes shared by every cluster backend: /populate entries, ports, the hosts file.

Every node gets one proxy per route (``hostname``, and ``tailscale`` when the spec has it) and
service (``ssh``, ``http``, ``p2p``; p2p goes to the HTTP agent), named by ``proxy_name``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from netfault.engine import NodeConfig
from netfault.simulator.cluster.faults import ROUTES
from netfault.simulator.cluster.spec import SERVICES, NodeSpec, proxy_name

# (node index, route, service) -> "host:port" the proxy listens on
ListenFor = Callable[[int, str, str], str]
# (node index, service) -> "host:port" of the node's server behind the proxy
UpstreamFor = Callable[[int, str], str]


def node_routes(spec: NodeSpec) -> list[str]:
    return list(ROUTES) if spec.tailscale else ["hostname"]


def route_entries(
    specs: Sequence[NodeSpec], listen: ListenFor, upstream: UpstreamFor
) -> list[dict[str, str]]:
    """One Toxiproxy proxy definition per node, route and service (the /populate format)."""
    return [
        {
            "name": proxy_name(spec.name, route, service),
            "listen": listen(i, route, service),
            "upstream": upstream(i, service),
        }
        for i, spec in enumerate(specs)
        for route in node_routes(spec)
        for service in SERVICES
    ]


async def populate(
    api_host: str, api_port: int, entries: list[dict[str, str]], limit: float
) -> dict[str, str]:
    """Create the proxies with one /populate call; returns proxy name -> resolved listen."""
    url = f"http://{api_host}:{api_port}/populate"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=entries, timeout=aiohttp.ClientTimeout(total=limit)) as response,
    ):
        body = await response.json(content_type=None)
        if response.status != 201:
            raise RuntimeError(f"creating the cluster's proxies at {url} failed: {body}")
    return {p["name"]: p["listen"] for p in body["proxies"]}


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def route_ports(
    node: str, address: Callable[[str], tuple[str, int] | None]
) -> dict[tuple[str, str], tuple[str, int]]:
    """(route, service) -> (host, port) the engine dials, for the routes that exist."""
    ports = {}
    for route in ROUTES:
        for service in SERVICES:
            found = address(proxy_name(node, route, service))
            if found is not None:
                ports[(route, service)] = found
    return ports


def config_fields(ports: dict[tuple[str, str], tuple[str, int]]) -> dict[str, Any]:
    """The NodeConfig fields that say where a node's routes are."""
    ts = ports.get(("tailscale", "ssh"))
    return {
        "hostname": ports[("hostname", "ssh")][0],
        "ssh_port": ports[("hostname", "ssh")][1],
        "http_port": ports[("hostname", "http")][1],
        "p2p_port": ports[("hostname", "p2p")][1],
        "tailscale_ip": ts[0] if ts else None,
        "tailscale_ssh_port": ts[1] if ts else None,
        "tailscale_http_port": ports[("tailscale", "http")][1] if ts else None,
    }


def ssh_routes(cfg: NodeConfig) -> list[tuple[str, int]]:
    """The (host, port) pairs a NodeConfig reaches its node's SSH server on."""
    routes = [(cfg.hostname, cfg.ssh_port)]
    if cfg.tailscale_ip and cfg.tailscale_ssh_port:
        routes.append((cfg.tailscale_ip, cfg.tailscale_ssh_port))
    return routes


def hosts_file_data(nodes: dict[str, NodeConfig]) -> dict[str, Any]:
    """The hosts file (``{"nodes": {name: fields}}``) the engine loads for these nodes."""
    out: dict[str, Any] = {}
    for name, cfg in nodes.items():
        entry: dict[str, Any] = {
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
    return {"nodes": out}


def write_hosts_file(path: Path, nodes: dict[str, NodeConfig]) -> None:
    # libyaml's dumper where installed: the pure-Python one took 70-190 ms for 200 nodes
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(hosts_file_data(nodes), Dumper=dumper, sort_keys=False))
