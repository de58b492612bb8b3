"""Fake cluster nodes: a sandbox home, an SSH server and an HTTP agent per node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netfault.engine import lazy_exports

if TYPE_CHECKING:
    from netfault.simulator.node.errors import NodeError, NodeStartError, PathOutsideHome
    from netfault.simulator.node.faults import HTTP_MODES, NodeFaults, mangle
    from netfault.simulator.node.keys import ClientKey
    from netfault.simulator.node.node import FakeNode

# Each name is imported from its module on first use, so importing one submodule (the
# command line, for `netfault --help`) does not pay for asyncssh and aiohttp.
_EXPORTS = {
    "NodeError": "netfault.simulator.node.errors",
    "NodeStartError": "netfault.simulator.node.errors",
    "PathOutsideHome": "netfault.simulator.node.errors",
    "HTTP_MODES": "netfault.simulator.node.faults",
    "NodeFaults": "netfault.simulator.node.faults",
    "mangle": "netfault.simulator.node.faults",
    "ClientKey": "netfault.simulator.node.keys",
    "FakeNode": "netfault.simulator.node.node",
}


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


__all__ = [
    "HTTP_MODES",
    "ClientKey",
    "FakeNode",
    "NodeError",
    "NodeFaults",
    "NodeStartError",
    "PathOutsideHome",
    "mangle",
]
