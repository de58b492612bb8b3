"""The tailscale transport: the ssh transport aimed at the node's Tailscale address."""

from __future__ import annotations

from netfault.engine.config import NodeConfig
from netfault.engine.transports.ssh import SshTransport
from netfault.engine.transports.sshconn import SshEndpoint


class TailscaleTransport(SshTransport):
    """SSH to ``node.tailscale_ip:(tailscale_ssh_port or ssh_port)``."""

    name = "tailscale"

    def available(self, node: NodeConfig) -> bool:
        return node.tailscale_ip is not None

    def endpoint(self, node: NodeConfig) -> SshEndpoint:
        return SshEndpoint.tailscale(node)
