"""Node faults that end by themselves after the next N connections (``for_connections``).

A scoped fault counts what reaches the node's service while it is on: an SSH fault counts
SSH connections as the server accepts them, an HTTP agent fault (``http_mode``) counts
requests as the agent receives them (keep-alive puts several requests on one connection,
and a request is what a 5xx or a hang answers). The connection (or request) that uses the
last count keeps the fault until it closes, as a proxy's connection keeps its toxics: the
switch goes back at once for everything that comes after, and the scope reports its expiry
through ``NodeFaults.report`` with ``expired: True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# the switches a request to the HTTP agent meets; every other one acts on SSH connections
HTTP_SWITCHES = ("http_mode",)


def service_of(attr: str) -> str:
    """The service whose connections (or requests) a scoped switch counts."""
    return "http" if attr in HTTP_SWITCHES else "ssh"


@dataclass
class ConnectionScope:
    """One switch set by a fault for the next ``left`` connections to ``service``."""

    attr: str
    value: object  # what the fault set: the last connection keeps it
    connections: int
    restore: Callable[[], None]  # the fault's own undo
    record: dict[str, object]  # what its expiry report carries (fault kind, id)
    left: int = 0

    def __post_init__(self) -> None:
        self.left = self.connections

    @property
    def service(self) -> str:
        return service_of(self.attr)
