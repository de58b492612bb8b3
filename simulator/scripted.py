"""In-memory transports whose outcomes are scripted: failover logic without sockets.

Useful for property tests of failover, breaker and escalation logic: each call pops the
next scripted outcome (``None`` = success, an exception = that failure) for the node, or
asks a policy function. Pushed bytes land in ``files`` keyed by (node, remote path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netfault.engine import NodeConfig, Progress, Transport, TransportConfig

Outcome = BaseException | None
Policy = Callable[[str, str], Outcome]
"""policy(node name, operation) -> outcome for that call."""


@dataclass(frozen=True)
class Call:
    transport: str
    node: str
    operation: str
    remote_path: str


class ScriptedTransport(Transport):
    """A transport that succeeds or fails as scripted, and records every call."""

    def __init__(
        self,
        name: str,
        *,
        script: dict[str, list[Outcome]] | None = None,
        policy: Policy | None = None,
        available: bool | Callable[[NodeConfig], bool] = True,
        delay: float = 0.0,
        files: dict[tuple[str, str], bytes] | None = None,
        calls: list[Call] | None = None,
    ) -> None:
        self.name = name
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.policy = policy
        self._available = available
        self.delay = delay
        self.files = files if files is not None else {}
        self.calls = calls if calls is not None else []

    def available(self, node: NodeConfig) -> bool:
        if callable(self._available):
            return self._available(node)
        return self._available

    def _outcome(self, node: NodeConfig, operation: str, remote_path: str) -> None:
        self.calls.append(Call(self.name, node.name, operation, remote_path))
        queue = self.script.get(node.name)
        if queue:
            outcome = queue.pop(0)
        elif self.policy is not None:
            outcome = self.policy(node.name, operation)
        else:
            outcome = None
        if outcome is not None:
            raise outcome

    async def push(
        self,
        node: NodeConfig,
        local_path: Path,
        remote_path: str,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        if self.delay:
            await asyncio.sleep(self.delay)
        self._outcome(node, "push", remote_path)
        data = await asyncio.to_thread(local_path.read_bytes)
        self.files[(node.name, remote_path)] = data
        if progress:
            progress(len(data), len(data))
        return len(data)

    async def pull(
        self,
        node: NodeConfig,
        remote_path: str,
        local_path: Path,
        config: TransportConfig,
        progress: Progress | None = None,
    ) -> int:
        if self.delay:
            await asyncio.sleep(self.delay)
        self._outcome(node, "pull", remote_path)
        data = self.files.get((node.name, remote_path), b"")
        await asyncio.to_thread(local_path.write_bytes, data)
        return len(data)

    async def probe(self, node: NodeConfig, config: TransportConfig) -> str:
        self._outcome(node, "probe", "")
        return f"{self.name} ok"


def scripted_transports(names: list[str], **kwargs: object) -> dict[str, ScriptedTransport]:
    """One ScriptedTransport per name, sharing one file store and one call log."""
    files: dict[tuple[str, str], bytes] = {}
    calls: list[Call] = []
    return {
        n: ScriptedTransport(n, files=files, calls=calls, **kwargs)  # type: ignore[arg-type]
        for n in names
    }
