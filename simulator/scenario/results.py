"""What running a scenario produced: step outcomes, failures, timeline, event trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netfault.engine import Event
from netfault.simulator.scenario.model import Scenario, Where
from netfault.simulator.scenario.trace import FaultEvent


@dataclass
class StepOutcome:
    index: int
    description: str
    where: Where
    ok: bool
    virtual_time: float
    seconds: float
    detail: str = ""


@dataclass
class Failure:
    where: Where
    what: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.message}"


@dataclass
class ScenarioResult:
    scenario: Scenario
    seed: int
    steps: list[StepOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    fault_trace: list[FaultEvent] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    @property
    def name(self) -> str:
        return self.scenario.name

    def decisions(self) -> list[tuple[Any, ...]]:
        """Fault decisions and engine decisions: equal for equal seeds (see ``trace``).

        Fault decisions are a set in a fixed order: the two sides of a connection fire
        in whichever order their bytes arrive, and a cut whose side is not fixed may be
        recorded on each side."""
        decided = {d for d in (f.decision() for f in self.fault_trace) if d is not None}
        return sorted(decided, key=repr) + self.trace()

    def trace(self) -> list[tuple[Any, ...]]:
        """The engine's event trace without timings: equal for equal seeds."""
        return [
            (
                str(e.type),
                e.node,
                e.transport,
                e.operation,
                e.outcome,
                e.error_kind,
                e.monotonic,
                e.data.get("to") if e.type == "BREAKER_TRANSITION" else None,
            )
            for e in self.events
        ]

    def timeline(self) -> list[dict[str, Any]]:
        """Attempts, outcomes, breaker transitions and route demotions on the virtual clock."""
        keep = {
            "ATTEMPT_SUCCEEDED",
            "ATTEMPT_FAILED",
            "ATTEMPT_CANCELLED",
            "ROUTE_DEMOTED",
            "ROUTE_RESTORED",
            "BREAKER_TRANSITION",
            "NODE_DISABLED",
            "NODE_REENABLED",
            "SYNC_STALLED",
            "OPERATION_FAILED",
            "ALERT",
        }
        return [
            {
                "t": e.monotonic,
                "type": str(e.type),
                "node": e.node,
                "transport": e.transport,
                "outcome": e.outcome,
                "error_kind": e.error_kind,
                **({"to": e.data.get("to")} if e.type == "BREAKER_TRANSITION" else {}),
                **({"route": e.data.get("route")} if "route" in e.data else {}),
            }
            for e in self.events
            if str(e.type) in keep
        ]

    def report(self) -> str:
        """A readable failure report: the failing step, expected vs seen, the timeline."""
        lines = [f"scenario {self.name} ({self.scenario.path}, seed {self.seed})"]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  FAILED {f}" for f in self.failures]
        lines.append("  steps:")
        for s in self.steps:
            mark = "ok " if s.ok else "BAD"
            lines.append(
                f"    [{mark}] t={s.virtual_time:>7.1f}s {s.description}"
                + (f" -> {s.detail}" if s.detail else "")
            )
        lines.append("  timeline (virtual seconds):")
        for entry in self.timeline()[-40:]:
            extra = entry.get("to") or entry.get("error_kind") or entry.get("outcome") or ""
            lines.append(
                f"    t={entry['t']:>7.1f} {entry['type']:<20} {entry['node'] or '':<10}"
                f" {entry['transport'] or entry.get('route') or '':<14} {extra}"
            )
        return "\n".join(lines)
