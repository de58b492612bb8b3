"""The fault trace: every fault decision of a scenario, beside the engine's own events.

A ``FaultEvent`` is one fault decision, whichever part made it: the scenario applying a
fault, resizing it to an operation (``after_bytes: N%``), clearing it or letting it expire
(``for_operations``, ``for_connections``); a proxy toxic firing (a reset, a bit flipped, a
limit reached, a toxicity draw that left a connection alone); a node's channel fault firing
(an exec channel reset or mangled). Firings and expiries are recorded from the proxy's or
the node's thread the moment they happen. It is a ``FaultFiring``, the record the fault
proxy's own events are too: a proxy event's fields (``firing()``) pass into it unchanged,
and both serialise and compare those fields one way.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from netfault.engine import Event
from netfault.simulator.proxy.trace import FaultFiring

Inexact = Literal["offset", "direction", "occurrence"]  # what ``inexact`` may name


class FaultKind(enum.StrEnum):
    """What happened to a fault; the trace record's ``type`` is ``FAULT_<KIND>``."""

    APPLIED = "applied"  # switched on by a step
    RESIZED = "resized"  # re-applied at an operation's size (after_bytes: N%)
    CLEARED = "cleared"  # switched off by a step or its scope
    EXPIRED = "expired"  # its for_operations / for_connections ran out
    FIRED = "fired"  # it acted on a connection or channel (``action`` says how)
    SKIPPED = "skipped"  # a toxicity draw left this connection and direction alone


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultEvent(FaultFiring):
    """One fault decision of a scenario: what the fault did and where in the byte stream
    (the fields it shares with the proxy's events), on which node, route and service, under
    which scenario fault, and when (``t``, ``seq``)."""

    kind: FaultKind
    fault: str  # the scenario's fault kind (reset, corrupt_binary, ...) or "all"
    node: str | None
    t: float  # virtual seconds
    seq: int  # engine events emitted before this one
    name: str | None = None  # the name it was applied under (``as:``), "as" in JSON
    route: str | None = None
    service: str | None = None
    channel: str | None = None  # a node's exec channel, by the transport it carries
    count: int | None = None  # bytes_mangled by a node's terminal: how many it changed
    for_connections: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inexact: tuple[Inexact, ...] = ()  # what the seed does not fix

    @property
    def offset_exact(self) -> bool:
        return "offset" not in self.inexact

    def undecided(self) -> frozenset[str] | None:
        """Every field outside ``inexact``; None when the event's occurrence is not fixed."""
        if "occurrence" in self.inexact:
            return None
        # A fault's toxics are one per direction (``..._upstream``, ``..._downstream``): when
        # the direction is not fixed, neither is which of them fired.
        return frozenset(self.inexact) | ({"toxic"} if "direction" in self.inexact else set())

    def record(self) -> dict[str, Any]:
        """The JSON-lines record: ``type``, every field that is set, and ``offset_exact``
        beside an offset."""
        record: dict[str, Any] = {"type": "FAULT_" + self.kind.upper()}
        for key, value in self.json_fields().items():
            if value is None or value in ({}, []):
                continue
            record["as" if key == "name" else key] = value
            if key == "offset":
                record["offset_exact"] = self.offset_exact
        return record


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
