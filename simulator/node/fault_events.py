"""The node's fault reports kept for a controller in another process: numbered, bounded,
and waited on (``GET /faults/events?since=N&wait=S`` long-polls, so a poller never spins).

Each record is what ``NodeFaults.report`` carried (a channel reset, bytes mangled, a write
the quota stopped, a ``for_connections`` scope expiring), numbered from 0 in the order the
node reported them. The log keeps the last ``KEPT``; a reader that fell further behind is told
how many it missed.
"""

from __future__ import annotations

import asyncio
from collections import deque

from netfault.simulator.node.faults import NodeFaults

KEPT = 10_000
MAX_WAIT = 30.0  # seconds a request may wait for the next record


class FaultEventLog:
    """Every fault report of one node since it started, the last ``kept`` of them kept."""

    def __init__(self, faults: NodeFaults, kept: int = KEPT) -> None:
        self._records: deque[dict[str, object]] = deque(maxlen=kept)
        self.total = 0  # records reported so far; the next one gets this number
        self._added = asyncio.Event()
        self._stop = faults.on_fired(self._add)

    def _add(self, record: dict[str, object]) -> None:
        self._records.append({"n": self.total, **record})
        self.total += 1
        self._added.set()

    def since(self, cursor: int) -> tuple[list[dict[str, object]], int]:
        """The records numbered ``cursor`` and later, and how many of those were dropped."""
        first = self.total - len(self._records)
        start = max(cursor, first)
        return list(self._records)[start - first :], max(0, first - cursor)

    async def wait_since(self, cursor: int, wait: float) -> tuple[list[dict[str, object]], int]:
        """As :meth:`since`, waiting up to ``wait`` seconds for a first record."""
        with_timeout = min(max(wait, 0.0), MAX_WAIT)
        try:
            async with asyncio.timeout(with_timeout):
                while self.total <= cursor:
                    self._added.clear()
                    await self._added.wait()
        except TimeoutError:
            pass
        return self.since(cursor)

    def close(self) -> None:
        self._stop()
