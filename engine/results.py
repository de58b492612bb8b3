"""What an operation reports back: one record per attempt and a result per operation."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attempt:
    """One try of one transport (or one route for HTTP)."""

    transport: str
    success: bool
    duration_ms: float
    error_kind: str | None = None
    message: str | None = None
    bytes: int = 0  # moved by this attempt itself
    resumed_from: int = 0  # where it started: what a partial already held (0: from scratch)

    @property
    def resumed(self) -> bool:
        """Whether it carried on from a partial an earlier attempt left."""
        return self.resumed_from > 0


@dataclass
class TransferResult:
    success: bool
    node: str
    direction: str
    transport_used: str | None = None
    latency_ms: float = 0.0
    bytes_transferred: int = 0
    error: str | None = None
    error_kind: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def transports_tried(self) -> list[str]:
        return [a.transport for a in self.attempts]


@dataclass
class HttpResult:
    success: bool
    node: str
    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    transport_used: str | None = None
    latency_ms: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of ``test_transport``: the runbook's ``result.success`` / ``result.message``."""

    node: str
    transport: str
    success: bool
    message: str
    latency_ms: float
    error_kind: str | None = None
