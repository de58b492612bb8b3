"""Fake clusters: nodes behind the fault proxy, and named faults to apply to them."""

from netfault.simulator.cluster.controller import AppliedFault, FaultController
from netfault.simulator.cluster.docker import DockerCluster
from netfault.simulator.cluster.faults import FAULT_KINDS, FaultError
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.cluster.spec import Cluster, NodeSpec

__all__ = [
    "FAULT_KINDS",
    "AppliedFault",
    "Cluster",
    "DockerCluster",
    "FaultController",
    "FaultError",
    "LocalCluster",
    "NodeSpec",
]
