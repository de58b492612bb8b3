"""Fake cluster nodes: a sandbox home, an SSH server and an HTTP agent per node."""

from netfault.simulator.node.errors import NodeError, NodeStartError, PathOutsideHome
from netfault.simulator.node.faults import HTTP_MODES, NodeFaults, mangle
from netfault.simulator.node.keys import ClientKey
from netfault.simulator.node.node import FakeNode

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
