"""Fault events: every decision the proxy's toxics make, as typed records.

A `FaultTrace` belongs to a `ProxyCollection`; its toxics report through it. Recording is
off until someone listens: `record(capacity)` keeps the last `capacity` events in a ring
buffer (read with `since(cursor)`), `subscribe(callback)` hands each event to a callback as
it happens. While nobody listens, a toxic checks one flag and builds nothing.

Events are recorded on the proxy's event loop; reading and subscribing are thread-safe
(a cluster runs the proxy on a thread of its own). Callbacks run on the proxy's loop and
must return at once.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 100_000


class FaultAction(enum.StrEnum):
    """What a toxic decided."""

    TOXIC_ADDED = "toxic_added"  # on the proxy (connection is None)
    TOXIC_UPDATED = "toxic_updated"
    TOXIC_REMOVED = "toxic_removed"
    TOXIC_EXPIRED = "toxic_expired"  # joined its last `connections`: gone after `connection`
    TOXIC_SKIPPED = "toxic_skipped"  # toxicity draw: inactive on this connection and stream
    BIT_FLIPPED = "bit_flipped"  # corrupt: `bit` of the byte at `offset`
    BYTE_REWRITTEN = "byte_rewritten"  # corrupt: byte at `offset` set to `value`
    BYTES_MANGLED = "bytes_mangled"  # corrupt: `mode` first changed the byte at `offset`
    LIMIT_REACHED = "limit_reached"  # limit_data: closed after `offset` bytes
    RESET_ARMED = "reset_armed"  # reset_peer: first data seen, reset due `delay_ms` later
    RESET = "reset"  # reset_peer: connection reset (RST)
    TIMEOUT_ARMED = "timeout_armed"  # timeout: data dropped, close due `delay_ms` later
    TIMEOUT_CLOSED = "timeout_closed"  # timeout: connection closed (timer or removal)
    EOF_DELAYED = "eof_delayed"  # slow_close: end of stream after `offset` bytes, delayed
    REFUSED = "refused"  # flap: a down spell; reset before a byte passed, upstream not dialled
    CUT = "cut"  # flap: the last connection of an up spell, reset after `offset` bytes
    # The proxy switched off / on through the API (no toxic): whoever asked decided when.
    PROXY_DISABLED = "proxy_disabled"
    PROXY_ENABLED = "proxy_enabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultFiring:
    """What a fault did and where: the fields every fault event shares, whichever part
    decided. The proxy's `FaultEvent` is one with the proxy's clock and order; a
    scenario's trace record (`netfault.simulator.scenario.trace.FaultEvent`) is one placed
    among the engine's events, with the node, route and scenario fault it belongs to.

    `offset` is the byte offset in the toxic's stream on that connection and direction.
    """

    action: str | None = None  # a FaultAction (a node's channel fault: reset, bytes_mangled)
    proxy: str | None = None
    toxic: str | None = None
    toxic_type: str | None = None
    direction: str | None = None  # "upstream" | "downstream" (a node: inbound | outbound)
    connection: int | None = None  # the proxy's connection number
    offset: int | None = None
    bit: int | None = None  # BIT_FLIPPED: 0..7
    value: int | None = None  # BYTE_REWRITTEN: the new byte
    mode: str | None = None  # BYTES_MANGLED: strip_high_bit | lf_to_crlf (a node: pty too)
    delay_ms: int | None = None  # RESET_ARMED, TIMEOUT_ARMED, EOF_DELAYED

    def firing(self) -> dict[str, Any]:
        """The shared fields by name: what another kind of event is built from."""
        return {f.name: getattr(self, f.name) for f in fields(FaultFiring)}

    def json_fields(self) -> dict[str, Any]:
        """Every field of the event, as JSON values (enums by value, tuples as lists)."""
        return {f.name: _json_value(getattr(self, f.name)) for f in fields(self)}

    def undecided(self) -> frozenset[str] | None:
        """The fields a seed does not fix for this event; None if not even its occurrence."""
        return frozenset()

    def decision(self) -> tuple[tuple[str, Any], ...] | None:
        """What repeats with the same seed: (field, value) for every decided field; None
        when whether the event happens at all is not fixed."""
        undecided = self.undecided()
        if undecided is None:
            return None
        return tuple(
            (f.name, _frozen(getattr(self, f.name)))
            for f in fields(self)
            if f.name not in undecided
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultEvent(FaultFiring):
    """One decision of the proxy's toxics.

    `offset_exact` says whether the offset is fixed by the seed and the bytes (the same on
    every run) or depends on timing (how much data was in flight when a timer fired).
    `time` (the proxy loop's clock) and `seq` (order in this trace) are never part of a
    decision.
    """

    action: FaultAction
    proxy: str
    connection: int | None  # None for changes to the proxy
    offset_exact: bool = True
    time: float
    seq: int = 0

    def undecided(self) -> frozenset[str]:
        return _CLOCK if self.offset_exact else _CLOCK | {"offset"}

    def to_json(self) -> dict[str, Any]:
        """One line of GET /events."""
        return self.json_fields()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultEvent:
        """The event `to_json` wrote (a line of GET /events); KeyError/ValueError if not one."""
        return cls(
            action=FaultAction(data["action"]),
            proxy=str(data["proxy"]),
            toxic=_str_or_none(data["toxic"]),
            toxic_type=_str_or_none(data["toxic_type"]),
            direction=_str_or_none(data["direction"]),
            connection=_int_or_none(data["connection"]),
            offset=_int_or_none(data["offset"]),
            offset_exact=bool(data["offset_exact"]),
            time=float(data["time"]),
            bit=_int_or_none(data.get("bit")),
            value=_int_or_none(data.get("value")),
            mode=_str_or_none(data.get("mode")),
            delay_ms=_int_or_none(data.get("delay_ms")),
            seq=int(data["seq"]),
        )


_CLOCK = frozenset({"time", "seq"})


def _json_value(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected a whole number or null, not {value!r}")
    return value


def toxic_event(
    action: FaultAction,
    proxy: str,
    toxic: str,
    toxic_type: str,
    direction: str,
    connection: int | None,
    time: float,
) -> FaultEvent:
    """A decision about a toxic itself (added, updated, removed, skipped): no byte offset."""
    return FaultEvent(
        action=action,
        proxy=proxy,
        toxic=toxic,
        toxic_type=toxic_type,
        direction=direction,
        connection=connection,
        time=time,
    )


def proxy_event(action: FaultAction, proxy: str, time: float) -> FaultEvent:
    """A change to the proxy itself (switched off or on): no toxic, stream or connection."""
    return FaultEvent(action=action, proxy=proxy, connection=None, time=time)


Listener = Callable[[FaultEvent], None]


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events after a cursor; `dropped` counts those the ring overwrote before this read."""

    events: list[FaultEvent]
    cursor: int  # pass back to `since` for the events after these
    dropped: int


class FaultTrace:
    """The fault events of one proxy server."""

    def __init__(self) -> None:
        self.active = False  # checked by toxics before building an event
        self._lock = threading.Lock()
        self._ring: deque[FaultEvent] | None = None
        self._listeners: tuple[Listener, ...] = ()
        self._seq = 0

    @property
    def recording(self) -> bool:
        return self._ring is not None

    def record(self, capacity: int = DEFAULT_CAPACITY) -> None:
        """Keep the last `capacity` events (0 stops recording and forgets them)."""
        if capacity < 0:
            raise ValueError(f"event capacity must be >= 0, not {capacity}")
        with self._lock:
            if capacity == 0:
                self._ring = None
            else:
                old = self._ring if self._ring is not None else ()
                self._ring = deque(old, maxlen=capacity)
            self._retune()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each event from now on; returns the unsubscribe function."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
            self._retune()

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)
                self._retune()

        return unsubscribe

    def _retune(self) -> None:
        self.active = self._ring is not None or bool(self._listeners)

    def emit(self, *made: FaultEvent) -> None:
        """Number the events, keep them, hand each to every listener."""
        with self._lock:
            events = [replace(event, seq=self._seq + n) for n, event in enumerate(made, 1)]
            self._seq += len(events)
            if self._ring is not None:
                self._ring.extend(events)
            listeners = self._listeners
        for listener in listeners:
            for event in events:
                try:
                    listener(event)
                except Exception:
                    # A listener's bug must not break the connection whose toxic fired.
                    logger.exception(
                        "fault event listener %r failed on event %d", listener, event.seq
                    )

    def since(self, cursor: int = 0) -> EventPage:
        """The kept events numbered above `cursor`, oldest first."""
        with self._lock:
            if self._ring is None or not self._ring:
                return EventPage([], max(cursor, self._seq), 0)
            first = self._ring[0].seq
            skip = max(0, cursor - first + 1)
            events = list(itertools.islice(self._ring, skip, None))
            dropped = max(0, first - cursor - 1)
            return EventPage(events, max(cursor, self._seq), dropped)
