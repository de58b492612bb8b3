"""The engine's transports: one small class per way of moving a file to a node."""

from __future__ import annotations

from netfault.engine.transports.base import Direction, Progress, Transport
from netfault.engine.transports.base64 import Base64Transport
from netfault.engine.transports.http import HttpTransport
from netfault.engine.transports.rsync import RsyncTransport
from netfault.engine.transports.scp import ScpTransport
from netfault.engine.transports.ssh import SshTransport
from netfault.engine.transports.sshconn import SshEndpoint
from netfault.engine.transports.tailscale import TailscaleTransport


def default_transports() -> dict[str, Transport]:
    """One instance of every transport, keyed by the names hosts files and the router use."""
    return {
        "tailscale": TailscaleTransport(),
        "ssh": SshTransport(),
        "rsync": RsyncTransport(),
        "base64": Base64Transport(),
        "http": HttpTransport(),
        "p2p": HttpTransport(name="p2p", port_field="p2p_port"),
    }


__all__ = [
    "Base64Transport",
    "Direction",
    "HttpTransport",
    "Progress",
    "RsyncTransport",
    "ScpTransport",
    "SshEndpoint",
    "SshTransport",
    "TailscaleTransport",
    "Transport",
    "default_transports",
]
