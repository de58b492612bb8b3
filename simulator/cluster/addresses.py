"""Loopback addresses for fake nodes: one per node and route where the OS allows it.

Linux routes all of 127.0.0.0/8, so each cluster takes its own /24 block and every node
route gets its own address. Where only 127.0.0.1 exists (macOS), everything shares it and
ports keep routes apart. Ports are always ephemeral, so two clusters never collide.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from functools import cache

_lock = threading.Lock()
_blocks = itertools.count()


@cache
def many_loopback_addresses() -> bool:
    """Whether addresses other than 127.0.0.1 can be bound here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.2", 0))
        except OSError:
            return False
    return True


class AddressPlan:
    """Hands out addresses for one cluster: backends, hostname routes, tailscale routes."""

    ROLES = {"backend": 0, "hostname": 1, "tailscale": 2}

    def __init__(self) -> None:
        with _lock:
            block = next(_blocks)
        # spread blocks by pid so parallel test processes use different addresses too
        self.second_octet = 100 + (os.getpid() + block * 3) % 100
        self.multi = many_loopback_addresses()

    def address(self, role: str, index: int) -> str:
        """Address of node ``index`` (0-based, < 250) for ``role``."""
        if not self.multi:
            return "127.0.0.1"
        if not 0 <= index < 250:
            raise ValueError("a local cluster holds at most 250 nodes")
        third = self.ROLES[role] * 3 + index // 250
        return f"127.{self.second_octet}.{third}.{index % 250 + 2}"
