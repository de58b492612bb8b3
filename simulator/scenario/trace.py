"""The fault trace: every fault decision of a scenario, beside the engine's own events.

A ``FaultEvent`` is a fault applied, resized to an operation (``after_bytes: N%``), cleared,
expired (``for_operations``, ``for_connections``), or fired inside a node (an exec channel
reset or mangled); a ``for_connections`` expiry and a firing are recorded from the proxy's
or the node's thread the moment they happen.
``seq`` is the number of engine events emitted before it, so the two streams merge in the
order things happened. ``exact`` names the fields that are the same on every run with the
same seed; a byte offset at which a node fault fired depends on how the kernel and SSH cut
the stream into chunks, so it is recorded but not exact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from netfault.engine import Event

DECISION_FIELDS = ("kind", "fault", "node", "t", "seq")


@dataclass(frozen=True)
class FaultEvent:
    kind: str  # applied | resized | cleared | expired | fired
    fault: str
    node: str | None
    t: float
    seq: int
    data: dict[str, Any] = field(default_factory=dict)
    inexact: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        record = {k: v for k, v in asdict(self).items() if v not in ((), {}, None)}
        record["type"] = "FAULT_" + self.kind.upper()
        return record

    def decision(self) -> tuple[Any, ...]:
        """What must repeat with the same seed: the fields outside ``inexact``."""
        exact = {k: v for k, v in self.data.items() if k not in self.inexact}
        return (*(getattr(self, f) for f in DECISION_FIELDS), sorted(exact.items()))


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
