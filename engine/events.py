"""Typed engine events, delivered to subscribers and optionally logged as JSON lines.

The JSON-lines log is the engine's record of what happened; the simulator checks
expectations against it and turns it back into a scenario (incident replay).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.errors import ConfigError

logger = logging.getLogger("netfault.events")


class EventType(StrEnum):
    ATTEMPT_STARTED = "ATTEMPT_STARTED"
    ATTEMPT_SUCCEEDED = "ATTEMPT_SUCCEEDED"
    ATTEMPT_FAILED = "ATTEMPT_FAILED"
    ATTEMPT_SKIPPED = "ATTEMPT_SKIPPED"
    OPERATION_SUCCEEDED = "OPERATION_SUCCEEDED"
    OPERATION_FAILED = "OPERATION_FAILED"
    BREAKER_TRANSITION = "BREAKER_TRANSITION"
    SYNC_STALLED = "SYNC_STALLED"
    NODE_DISABLED = "NODE_DISABLED"
    NODE_REENABLED = "NODE_REENABLED"
    ALERT = "ALERT"
    ATTEMPT_CANCELLED = "ATTEMPT_CANCELLED"
    ROUTE_DEMOTED = "ROUTE_DEMOTED"
    ROUTE_RESTORED = "ROUTE_RESTORED"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing the engine did or saw; fields that do not apply stay None."""

    type: EventType
    node: str | None = None
    transport: str | None = None
    operation: str | None = None
    outcome: str | None = None
    error_kind: str | None = None
    error: str | None = None
    bytes: int | None = None
    resumed_from: int | None = None  # an attempt that carried on from a partial: its offset
    duration_ms: float | None = None
    monotonic: float = 0.0
    wall: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        record = {k: v for k, v in asdict(self).items() if v is not None and v != {}}
        record["type"] = str(self.type)
        return json.dumps(record, sort_keys=True)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Event:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in record.items() if k in known}
        kwargs["type"] = EventType(record["type"])
        return cls(**kwargs)


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers; a failing subscriber is logged, never fatal."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def emit(self, type: EventType, **fields: Any) -> Event:
        event = Event(type=type, monotonic=self.clock.monotonic(), wall=self.clock.wall(), **fields)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                logger.exception("event subscriber %r failed on %s", callback, event.type)
        return event


class EventRecorder:
    """Keeps every event in memory; handy in tests and scenario checks."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, *types: EventType) -> list[Event]:
        return [e for e in self.events if e.type in types]


class JsonlEventLog:
    """Writes each event as one JSON line; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._file.write(event.to_json() + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_event_log(path: str | Path) -> list[Event]:
    """Load a JSON-lines event log written by ``JsonlEventLog``; ConfigError names the line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            "not a text file (invalid UTF-8); give a JSON-lines event log",
            file=str(path),
            line=line,
        ) from None
    events = []
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            continue
        try:
            record = json.loads(line_text)
            if not isinstance(record, dict):
                raise TypeError(f"expected a JSON object, got {type(record).__name__}")
            events.append(Event.from_dict(record))
        except (ValueError, TypeError, KeyError) as exc:
            reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(
                f"not an event record ({reason}); give a JSON-lines event log",
                file=str(path),
                line=number,
            ) from None
    return events
