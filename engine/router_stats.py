"""Router metrics over the clock's recent past, and the runbook's alert thresholds."""

from __future__ import annotations

from collections import deque
from typing import Any

from netfault.engine.clock import Clock
from netfault.engine.events import EventBus, EventType

HOUR = 3600.0
DAY = 24 * HOUR
NODE_FAILURES_PER_HOUR_ALERT = 5
DISABLED_FRACTION_ALERT = 0.20
ESCALATIONS_PER_HOUR_ALERT = 10


class RouterStats:
    """Time-stamped failures and escalations; alerts raised once per crossing."""

    def __init__(self, clock: Clock, events: EventBus) -> None:
        self.clock = clock
        self.events = events
        self._failures: dict[str, deque[float]] = {}
        self._escalations: deque[float] = deque()
        self._active_alerts: set[str] = set()

    def record_failure(self, node: str) -> None:
        self._failures.setdefault(node, deque()).append(self.clock.monotonic())

    def record_escalation(self, node: str) -> None:
        self._escalations.append(self.clock.monotonic())

    def _since(self, stamps: deque[float], window: float) -> int:
        cutoff = self.clock.monotonic() - window
        while stamps and stamps[0] <= cutoff - DAY:  # keep a day, drop older
            stamps.popleft()
        return sum(1 for t in stamps if t > cutoff)

    def failures_last_hour(self) -> dict[str, int]:
        return {n: self._since(s, HOUR) for n, s in self._failures.items()}

    def alerts(self, total_nodes: int, disabled: int) -> list[dict[str, Any]]:
        """The runbook's alerts that hold right now."""
        found = []
        for node, count in sorted(self.failures_last_hour().items()):
            if count > NODE_FAILURES_PER_HOUR_ALERT:
                found.append(
                    {
                        "metric": "transport_failures",
                        "node": node,
                        "value": count,
                        "threshold": NODE_FAILURES_PER_HOUR_ALERT,
                    }
                )
        if total_nodes and disabled / total_nodes > DISABLED_FRACTION_ALERT:
            found.append(
                {
                    "metric": "disabled_nodes",
                    "value": disabled / total_nodes,
                    "threshold": DISABLED_FRACTION_ALERT,
                }
            )
        escalations = self._since(self._escalations, HOUR)
        if escalations > ESCALATIONS_PER_HOUR_ALERT:
            found.append(
                {
                    "metric": "escalation_count",
                    "value": escalations,
                    "threshold": ESCALATIONS_PER_HOUR_ALERT,
                }
            )
        return found

    def check_alerts(self, total_nodes: int, disabled: int) -> None:
        """Emit an ALERT event for each alert that starts holding."""
        current = {}
        for alert in self.alerts(total_nodes, disabled):
            current[f"{alert['metric']}:{alert.get('node', '')}"] = alert
        for key, alert in current.items():
            if key not in self._active_alerts:
                self.events.emit(
                    EventType.ALERT, node=alert.get("node"), outcome=alert["metric"], data=alert
                )
        self._active_alerts = set(current)

    def snapshot(self, active: dict[str, int], total_nodes: int, disabled: int) -> dict[str, Any]:
        return {
            "active_transports": active,
            "total_nodes": total_nodes,
            "disabled_node_count": disabled,
            "escalations_today": self._since(self._escalations, DAY),
            "escalations_last_hour": self._since(self._escalations, HOUR),
            "transport_failures_last_hour": self.failures_last_hour(),
            "alerts": self.alerts(total_nodes, disabled),
        }
