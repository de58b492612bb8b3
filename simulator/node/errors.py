"""Errors of the fake node.

NodeError              base of every error the fake node raises on purpose
├── NodeStartError     a server could not start (address in use, bad address)
└── PathOutsideHome    a client path escapes the node's home (HTTP answers 403)
"""

from __future__ import annotations


class NodeError(Exception):
    """Base class of the fake node's errors."""

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


class NodeStartError(NodeError):
    """A server of the node could not start; the message names the address."""


class PathOutsideHome(NodeError):
    """A client path is absolute, has a ``..`` component, or leads out through a symlink."""
