"""The containerised cluster's layout, rendered as a compose file or as Docker SDK calls.

Toxiproxy (the official image) and N node containers share a private network; only Toxiproxy's
API, the proxy listen ports and each node's admin port (the fault API, never faulted) are
published, on 127.0.0.1. Each node container runs the same FakeNode as LocalCluster, with its
token, authorized key and host key under ``/etc/netfault``.

``python -m netfault.simulator.cluster.compose --nodes 3 --out docker`` writes
``compose.yaml`` and ``toxiproxy.json`` (and, with ``--secrets``, keys, tokens and a hosts
file for the published ports).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from netfault.simulator.cluster.faults import ROUTES
from netfault.simulator.cluster.routes import (
    config_fields,
    route_entries,
    route_ports,
    split_listen,
)
from netfault.simulator.cluster.spec import SERVICES, NodeSpec, normalise_specs
from netfault.simulator.node.faults import SSH_SERVERS

TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
NODE_IMAGE = "netfault-node:0.1.0"
NODE_DOCKERFILE = "docker/node.Dockerfile"
NETWORK = "netfault"
LOOPBACK = "127.0.0.1"
TOXIPROXY_API_PORT = 8474
PROXY_PORT_BASE = 20000  # proxy listen ports inside the Toxiproxy container (and on the host)
ADMIN_HOST_PORT_BASE = 19000  # compose only: node i's admin port on the host is this + i
NODE_SSH_PORT, NODE_HTTP_PORT, NODE_ADMIN_PORT = 22, 8080, 8081
SECRETS_DIR = "/etc/netfault"
NODE_UID = 1000  # the image's `netfault` user
# Port 22 without root: Docker >= 20.10 sets this already; say it so older engines agree.
NODE_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "0"}
_SLOTS = 6  # proxy ports per node: 2 routes x 3 services


def validate_specs(
    nodes: int | Sequence[NodeSpec | str], tailscale: bool, ssh_server: str = "asyncssh"
) -> list[NodeSpec]:
    """Node specs usable as service and container names next to ``toxiproxy``."""
    specs = normalise_specs(nodes, tailscale, ssh_server)
    for spec in specs:
        if spec.name == "toxiproxy" or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", spec.name):
            raise ValueError(
                f"node name {spec.name!r} cannot name a container: use lowercase letters, "
                "digits, '-' and '_', and not 'toxiproxy'"
            )
    return specs


def proxy_port(index: int, route: str, service: str) -> int:
    """The fixed port the proxy for node ``index``'s route and service listens on."""
    return PROXY_PORT_BASE + index * _SLOTS + ROUTES.index(route) * 3 + SERVICES.index(service)


def node_port(service: str) -> int:
    return NODE_SSH_PORT if service == "ssh" else NODE_HTTP_PORT


def toxiproxy_config(
    specs: Sequence[NodeSpec], upstream_host: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """Every proxy (Toxiproxy's -config and /populate format); upstreams by container name."""
    hosts = upstream_host or {s.name: s.name for s in specs}
    return route_entries(
        specs,
        lambda i, route, service: f"0.0.0.0:{proxy_port(i, route, service)}",
        lambda i, service: f"{hosts[specs[i].name]}:{node_port(service)}",
    )


def node_command(name: str, ssh_server: str = "asyncssh") -> list[str]:
    """Arguments appended to the node image's ENTRYPOINT (the image has both SSH servers;
    an OpenSSH node's sshd runs as the image's user, the one its clients log in as)."""
    server = [] if ssh_server == "asyncssh" else ["--ssh-server", ssh_server]
    return ["--name", name, *server]


def toxiproxy_command(seed: int | None = None, config: str | None = None) -> list[str]:
    args = ["-host=0.0.0.0", f"-port={TOXIPROXY_API_PORT}"]
    if seed is not None:
        args.append(f"-seed={seed}")
    if config is not None:
        args.append(f"-config={config}")
    return args


def published_proxy_ports(specs: Sequence[NodeSpec]) -> dict[str, int]:
    """Proxy name -> its listen port (published on the host under the same number)."""
    return {e["name"]: split_listen(e["listen"])[1] for e in toxiproxy_config(specs)}


def compose_config(
    nodes: int | Sequence[NodeSpec | str] = 3,
    *,
    tailscale: bool = True,
    node_image: str = NODE_IMAGE,
    build_context: str = "..",
    ssh_server: str = "asyncssh",
) -> dict[str, Any]:
    """The compose file for ``nodes`` (relative paths resolve from the compose file's folder;
    ``ssh_server`` applies to nodes given by count or name, a NodeSpec keeps its own)."""
    specs = validate_specs(nodes, tailscale, ssh_server)
    ports = [TOXIPROXY_API_PORT, *published_proxy_ports(specs).values()]
    services: dict[str, Any] = {
        "toxiproxy": {
            "image": TOXIPROXY_IMAGE,
            "command": toxiproxy_command(config="/config/toxiproxy.json"),
            "ports": [f"{LOOPBACK}:{p}:{p}" for p in ports],
            "volumes": ["./toxiproxy.json:/config/toxiproxy.json:ro"],
            "networks": [NETWORK],
            "depends_on": [s.name for s in specs],
        }
    }
    for i, spec in enumerate(specs):
        services[spec.name] = {
            "image": node_image,
            "build": {"context": build_context, "dockerfile": NODE_DOCKERFILE},
            "command": node_command(spec.name, spec.ssh_server),
            "hostname": spec.name,
            "ports": [f"{LOOPBACK}:{ADMIN_HOST_PORT_BASE + i}:{NODE_ADMIN_PORT}"],
            "volumes": [f"./secrets/{spec.name}:{SECRETS_DIR}:ro"],
            "networks": [NETWORK],
            "sysctls": dict(NODE_SYSCTLS),
        }
    return {"services": services, "networks": {NETWORK: {"driver": "bridge"}}}


def dump_yaml(config: dict[str, Any]) -> str:
    header = "# Generated by `python -m netfault.simulator.cluster.compose`; do not edit.\n"
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def write_compose(
    directory: Path,
    nodes: int | Sequence[NodeSpec | str] = 3,
    *,
    with_secrets: bool = False,
    ssh_server: str = "asyncssh",
) -> Path:
    """Write compose.yaml and toxiproxy.json (plus keys and hosts.yaml) into ``directory``."""
    specs = validate_specs(nodes, True, ssh_server)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "compose.yaml"
    path.write_text(dump_yaml(compose_config(specs)))
    config = json.dumps(toxiproxy_config(specs), indent=2) + "\n"
    (directory / "toxiproxy.json").write_text(config)
    if with_secrets:
        write_secrets(directory, specs)
    return path


def write_secrets(directory: Path, specs: Sequence[NodeSpec]) -> None:
    """Client key, per-node token and host key (kept if present), known_hosts, hosts.yaml."""
    from netfault.engine import NodeConfig
    from netfault.simulator.cluster.routes import write_hosts_file
    from netfault.simulator.node.keys import ClientKey, HostKeys, load_or_create_host_key

    root = directory / "secrets"
    client_dir = root / "client"
    key_path = client_dir / "id_ed25519"
    client = ClientKey.generate(client_dir) if not key_path.exists() else None
    public = client.public_key if client else key_path.with_suffix(".pub").read_text().strip()
    published = published_proxy_ports(specs)
    known, configs = [], {}
    for spec in specs:
        node_dir = root / spec.name
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / "authorized_keys").write_text(public + "\n")
        token_path = node_dir / "token"
        if not token_path.exists():
            token_path.write_text(secrets.token_urlsafe(24) + "\n")
        host_key = load_or_create_host_key(node_dir)
        # the node container's user (another uid than yours) reads these through the mount
        for item in node_dir.iterdir():
            item.chmod(0o644)
        node_dir.chmod(0o755)
        ports = route_ports(
            spec.name, lambda name: (LOOPBACK, published[name]) if name in published else None
        )
        ssh_routes = [v for (_r, s), v in ports.items() if s == "ssh"]
        known.append(HostKeys(host_key).known_hosts_lines(ssh_routes))
        configs[spec.name] = NodeConfig(
            name=spec.name,
            ssh_user="netfault",
            ssh_key=key_path.absolute(),
            known_hosts=(root / "known_hosts").absolute(),
            http_token=token_path.read_text().strip(),
            base_path="data",
            transports=spec.transports,
            **config_fields(ports),
        )
    (root / "known_hosts").write_text("".join(known))
    write_hosts_file(directory / "hosts.yaml", configs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the containerised cluster's compose file")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docker"))
    parser.add_argument("--secrets", action="store_true", help="also create keys and tokens")
    parser.add_argument(
        "--ssh-server",
        choices=SSH_SERVERS,
        default="asyncssh",
        help="every node's SSH server: asyncssh, or openssh (the real sshd, in the image)",
    )
    args = parser.parse_args(argv)
    path = write_compose(
        args.out, args.nodes, with_secrets=args.secrets, ssh_server=args.ssh_server
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
