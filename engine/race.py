"""Staggered racing of connection set-up across a node's routes (RFC 8305, "Happy Eyeballs").

``race(starters, delay)`` starts the first starter; when the latest one started has neither
finished nor failed ``delay`` seconds later, or fails sooner, the next one starts alongside.
The first starter to return wins; the rest are cancelled, and one that returned anyway in the
meantime is handed to ``close`` so no connection leaks. ``delay=None`` runs the starters
strictly one after another. Cancelling the race cancels every starter still running. A
starter only sets a connection up: whatever it returns is then used by one caller alone, so
the bytes of one operation never travel two connections at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger("netfault.race")

Starter = Callable[[], Awaitable[T]]
Closer = Callable[[T], Awaitable[None]]


class RaceOutcome(StrEnum):
    WON = "won"
    FAILED = "failed"
    CANCELLED = "cancelled"  # lost the race (or the race was cancelled): never a failure
    NOT_STARTED = "not_started"


@dataclass(slots=True)
class RaceEntry:
    """What became of one starter; times are the event loop's clock."""

    outcome: RaceOutcome = RaceOutcome.NOT_STARTED
    connected: bool = False  # returned a connection (the winner, or one closed as spare)
    error: Exception | None = None
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(slots=True)
class RaceResult(Generic[T]):
    """The winner (None when every starter failed) and one entry per starter, in order."""

    winner: T | None
    winner_index: int | None
    entries: list[RaceEntry] = field(default_factory=list)


async def race(
    starters: Sequence[Starter[T]], delay: float | None, *, close: Closer[T] | None = None
) -> RaceResult[T]:
    """Run ``starters`` staggered by ``delay``; return the first to complete."""
    run = _Race(starters, delay, close)
    try:
        await run.play()
    finally:
        try:
            await run.stop()
        except BaseException:
            if run.winner_index is not None:  # nobody will receive it: close it
                await run.close_quietly(run.winner)  # type: ignore[arg-type]
            raise
    return RaceResult(run.winner, run.winner_index, run.entries)


def outpaced(result: RaceResult[T]) -> list[int]:
    """Starters that began before the winner and had not connected when it did.

    Each had at least the stagger delay to connect and did not: a route worth trying
    second next time, though its attempt counts as cancelled, never as failed.
    """
    if result.winner_index is None:
        return []
    won_at = result.entries[result.winner_index].started_at
    assert won_at is not None
    return [
        i
        for i, e in enumerate(result.entries)
        if e.outcome is RaceOutcome.CANCELLED
        and not e.connected
        and e.started_at is not None
        and e.started_at < won_at
    ]


class _Race(Generic[T]):
    def __init__(
        self, starters: Sequence[Starter[T]], delay: float | None, close: Closer[T] | None
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.starters = starters
        self.delay = delay
        self.close = close
        self.entries = [RaceEntry() for _ in starters]
        self.running: dict[asyncio.Task[T], int] = {}
        self.launched = 0
        self.next_at: float | None = None  # when the next starter starts if nothing happens
        self.winner: T | None = None
        self.winner_index: int | None = None
        self.spare: list[T] = []  # connections that completed after the winner

    async def play(self) -> None:
        if self.starters:
            self._launch()
        while self.running and self.winner_index is None:
            timeout = None if self.next_at is None else max(0.0, self.next_at - self.loop.time())
            done, _ = await asyncio.wait(
                self.running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            latest_failed = False
            for task in sorted(done, key=self.running.__getitem__):
                index = self.running.pop(task)
                latest_failed |= not self._settle(task, index) and index == self.launched - 1
            if self.winner_index is not None:
                return
            due = self.next_at is not None and self.loop.time() >= self.next_at
            if self.launched < len(self.starters) and (latest_failed or due or not self.running):
                self._launch()

    def _launch(self) -> None:
        index = self.launched
        self.launched += 1
        task = self.loop.create_task(_call(self.starters[index]))
        self.running[task] = index
        now = self.loop.time()
        self.entries[index].started_at = now
        more = self.launched < len(self.starters)
        self.next_at = now + self.delay if self.delay is not None and more else None

    def _settle(self, task: asyncio.Task[T], index: int) -> bool:
        """Record a finished starter; True when it returned a connection."""
        entry = self.entries[index]
        entry.ended_at = self.loop.time()
        if task.cancelled():
            entry.outcome = RaceOutcome.CANCELLED
            return False
        error = task.exception()
        if error is not None:
            if not isinstance(error, Exception):
                raise error  # KeyboardInterrupt, SystemExit: not ours to record
            entry.outcome, entry.error = RaceOutcome.FAILED, error
            return False
        entry.connected = True
        if self.winner_index is None:
            entry.outcome = RaceOutcome.WON
            self.winner, self.winner_index = task.result(), index
        else:
            entry.outcome = RaceOutcome.CANCELLED
            self.spare.append(task.result())
        return True

    async def stop(self) -> None:
        """Cancel every starter still running and close what they established anyway."""
        for task in self.running:
            task.cancel()
        leftovers = list(self.running.items())
        self.running.clear()
        if leftovers:
            await asyncio.wait([task for task, _ in leftovers])
        for task, index in leftovers:
            entry = self.entries[index]
            entry.outcome, entry.ended_at = RaceOutcome.CANCELLED, self.loop.time()
            if not task.cancelled() and task.exception() is None:
                entry.connected = True
                self.spare.append(task.result())  # finished as it was cancelled
        while self.spare:
            await self.close_quietly(self.spare.pop())

    async def close_quietly(self, connection: T) -> None:
        if self.close is None:
            return
        try:
            await self.close(connection)
        except Exception:
            logger.exception("closing a connection that lost the race failed")


async def _call(starter: Starter[T]) -> T:
    return await starter()


__all__ = ["RaceEntry", "RaceOutcome", "RaceResult", "outpaced", "race"]
