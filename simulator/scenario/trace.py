"""The fault trace: every fault decision of a scenario, beside the engine's own events.

A ``FaultEvent`` is one fault decision, whichever part made it: the scenario applying a
fault, resizing it to an operation (``after_bytes: N%``), clearing it or letting it expire
(``for_operations``, ``for_connections``); a proxy toxic firing (a reset, a bit flipped, a
limit reached, a toxicity draw that left a connection alone); a node's channel fault firing
(an exec channel reset or mangled). Firings and expiries are recorded from the proxy's or
the node's thread the moment they happen.

``seq`` is the number of engine events emitted before it, so the two streams merge in the
order things happened. ``inexact`` names what a seed does not fix about the event:
``offset`` (where a reset landed or a node saw a byte depends on how much data was in
flight and how the kernel cut the stream), ``direction`` (which side of a connection a
timer-driven cut happened to land on first) and ``occurrence`` (whether the event happens
at all: a reset armed on one side races the reset already cutting the other). ``decision``
leaves those out, so two runs with the same seed have equal decisions.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from netfault.engine import Event

Inexact = Literal["offset", "direction", "occurrence"]  # what ``inexact`` may name


class FaultKind(enum.StrEnum):
    """What happened to a fault; the trace record's ``type`` is ``FAULT_<KIND>``."""

    APPLIED = "applied"  # switched on by a step
    RESIZED = "resized"  # re-applied at an operation's size (after_bytes: N%)
    CLEARED = "cleared"  # switched off by a step or its scope
    EXPIRED = "expired"  # its for_operations / for_connections ran out
    FIRED = "fired"  # it acted on a connection or channel (``action`` says how)
    SKIPPED = "skipped"  # a toxicity draw left this connection and direction alone


@dataclass(frozen=True)
class FaultEvent:
    """One fault decision: what, where (node, route, service, proxy, connection, direction),
    at which byte offset and whether that offset is exact, and when (``t``, ``seq``)."""

    kind: FaultKind
    fault: str  # the scenario's fault kind (reset, corrupt_binary, ...) or "all"
    node: str | None
    t: float  # virtual seconds
    seq: int  # engine events emitted before this one
    name: str | None = None  # the name it was applied under (``as:``), "as" in JSON
    route: str | None = None
    service: str | None = None
    proxy: str | None = None
    toxic: str | None = None  # the name of the proxy's toxic that decided
    toxic_type: str | None = None  # its type (corrupt, limit_data, reset_peer, ...)
    action: str | None = None  # FIRED: what it did (bit_flipped, reset, bytes_mangled, ...)
    connection: int | None = None  # the proxy's connection number
    direction: str | None = None  # upstream | downstream (proxy); inbound | outbound (node)
    channel: str | None = None  # a node's exec channel, by the transport it carries
    offset: int | None = None  # byte offset in that connection's direction's stream
    bit: int | None = None  # bit_flipped: 0..7
    value: int | None = None  # byte_rewritten: the new byte
    mode: str | None = None  # how bytes were mangled (strip_high_bit, lf_to_crlf, pty)
    delay_ms: int | None = None  # reset_armed, timeout_armed, eof_delayed
    for_connections: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inexact: tuple[Inexact, ...] = ()  # what the seed does not fix

    @property
    def offset_exact(self) -> bool:
        return "offset" not in self.inexact

    def record(self) -> dict[str, Any]:
        """The JSON-lines record: ``type``, every field that is set, and ``offset_exact``
        beside an offset."""
        record: dict[str, Any] = {"type": "FAULT_" + self.kind.upper()}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value in ({}, ()):
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, enum.Enum):
                value = str(value)
            record["as" if f.name == "name" else f.name] = value
            if f.name == "offset":
                record["offset_exact"] = self.offset_exact
        return record

    def decision(self) -> tuple[Any, ...] | None:
        """What must repeat with the same seed: every field outside ``inexact``; None when
        the event's occurrence itself is not fixed."""
        if "occurrence" in self.inexact:
            return None
        return tuple(
            (f.name, _frozen(getattr(self, f.name)))
            for f in fields(self)
            if f.name not in self.inexact
        )


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def merged(events: list[Event], faults: list[FaultEvent]) -> list[dict[str, Any]]:
    """Engine and fault events as JSON-able records, in the order they happened."""
    out: list[dict[str, Any]] = []
    pending = sorted(faults, key=lambda f: f.seq)
    i = 0
    for n, event in enumerate(events):
        while i < len(pending) and pending[i].seq <= n:
            out.append(pending[i].record())
            i += 1
        out.append(json.loads(event.to_json()))
    out += [f.record() for f in pending[i:]]
    return out


def write_trace(path: Path, events: list[Event], faults: list[FaultEvent]) -> Path:
    """The full trace as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(r, sort_keys=True, default=str) for r in merged(events, faults))
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
