"""Router metrics kept as running counters, and the runbook's alert thresholds.

Every counter is updated when its event happens, so an event costs O(1) whatever the
cluster size (amortised: a sliding window drops expired stamps as it is read):

- disabled nodes: an integer moved by disable / re-enable;
- active transports: a count per transport of enabled nodes that have not failed it;
- escalations: two sliding windows (hour, day) of monotonic stamps, cluster-wide, whose
  stamps are coalesced to 1 s and 60 s so their memory is bounded at any rate;
- failures: one sliding window (hour) per node, capped at ``failure_cap`` stamps, so a
  node's counter costs at most ``failure_cap`` floats; a count at the cap reads "at least".

Alerts are raised once per crossing: a node's failure alert is checked when that node
fails, the cluster-wide ones after every router event. ``snapshot()`` is O(nodes).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from netfault.engine.clock import Clock
from netfault.engine.events import EventBus, EventType

HOUR = 3600.0
DAY = 24 * HOUR
NODE_FAILURES_PER_HOUR_ALERT = 5
DISABLED_FRACTION_ALERT = 0.20
ESCALATIONS_PER_HOUR_ALERT = 10
HOUR_RESOLUTION = 1.0  # seconds: the hourly escalation window keeps <= 3,601 stamps
DAY_RESOLUTION = 60.0  # seconds: the daily one <= 1,441
TRANSPORT_FAILURES = "transport_failures"
DISABLED_NODES = "disabled_nodes"
ESCALATION_COUNT = "escalation_count"


class SlidingCount:
    """How many events fall in the last ``window`` seconds (an event exactly ``window`` old
    has dropped out).

    Events less than ``resolution`` seconds after the newest kept stamp share its stamp
    (so they may leave the window up to ``resolution`` early): the window then holds at
    most ``window / resolution + 1`` stamps however many events arrive. With ``cap``, at
    most ``cap`` stamps are kept and older ones forgotten (the count then reads "at least").
    """

    __slots__ = ("_counts", "_stamps", "cap", "resolution", "total", "window")

    def __init__(self, window: float, cap: int | None = None, resolution: float = 0.0) -> None:
        self.window = window
        self.cap = cap
        self.resolution = resolution
        self.total = 0
        self._stamps: deque[float] = deque()
        self._counts: deque[int] = deque()

    def add(self, now: float) -> None:
        self.total += 1
        if self._stamps and now - self._stamps[-1] < self.resolution:
            self._counts[-1] += 1
            return
        if self.cap is not None and len(self._stamps) >= self.cap:
            self._stamps.popleft()
            self.total -= self._counts.popleft()
        self._stamps.append(now)
        self._counts.append(1)

    def count(self, now: float) -> int:
        cutoff = now - self.window
        stamps = self._stamps
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
            self.total -= self._counts.popleft()
        return self.total

    def __len__(self) -> int:
        """Stamps held (the memory used), not events counted."""
        return len(self._stamps)


@dataclass(frozen=True, slots=True)
class Alert:
    """One of the runbook's alerts that holds."""

    metric: str
    value: float
    threshold: float
    node: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.metric, self.node

    def as_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"metric": self.metric}
        if self.node is not None:
            record["node"] = self.node
        record.update(value=self.value, threshold=self.threshold)
        return record


class StatsSnapshot(TypedDict):
    """The runbook's ``get_stats()``."""

    active_transports: dict[str, int]
    total_nodes: int
    disabled_node_count: int
    escalations_today: int
    escalations_last_hour: int
    transport_failures_last_hour: dict[str, int]
    alerts: list[dict[str, Any]]


class RouterStats:
    """Running counters of router events; alerts checked against them as events happen."""

    def __init__(self, clock: Clock, events: EventBus, failure_cap: int = 200) -> None:
        self.clock = clock
        self.events = events
        self.failure_cap = max(NODE_FAILURES_PER_HOUR_ALERT + 1, failure_cap)
        self.total_nodes = 0
        self.disabled = 0
        self.active: Counter[str] = Counter()
        self._failures: dict[str, SlidingCount] = {}
        self._escalations_hour = SlidingCount(HOUR, resolution=HOUR_RESOLUTION)
        self._escalations_day = SlidingCount(DAY, resolution=DAY_RESOLUTION)
        self._raised: set[tuple[str, str | None]] = set()

    # -- updates (O(1) each) -------------------------------------------------------------
    def add_node(self, active: Iterable[str]) -> None:
        self.total_nodes += 1
        self.active.update(active)

    def move(self, before: Iterable[str], after: Iterable[str], disabled_delta: int) -> None:
        """A node's active transports went from ``before`` to ``after``."""
        self.active.subtract(before)
        self.active.update(after)
        self.disabled += disabled_delta

    def record_failure(self, node: str) -> None:
        window = self._failures.get(node)
        if window is None:
            window = self._failures[node] = SlidingCount(HOUR, self.failure_cap)
        window.add(self.clock.monotonic())

    def record_escalation(self) -> None:
        now = self.clock.monotonic()
        self._escalations_hour.add(now)
        self._escalations_day.add(now)

    # -- alerts --------------------------------------------------------------------------
    def node_alert(self, node: str) -> Alert | None:
        window = self._failures.get(node)
        count = window.count(self.clock.monotonic()) if window else 0
        if count > NODE_FAILURES_PER_HOUR_ALERT:
            return Alert(TRANSPORT_FAILURES, count, NODE_FAILURES_PER_HOUR_ALERT, node)
        return None

    def cluster_alerts(self) -> list[Alert]:
        found = []
        if self.total_nodes and self.disabled / self.total_nodes > DISABLED_FRACTION_ALERT:
            fraction = self.disabled / self.total_nodes
            found.append(Alert(DISABLED_NODES, fraction, DISABLED_FRACTION_ALERT))
        escalations = self._escalations_hour.count(self.clock.monotonic())
        if escalations > ESCALATIONS_PER_HOUR_ALERT:
            found.append(Alert(ESCALATION_COUNT, escalations, ESCALATIONS_PER_HOUR_ALERT))
        return found

    def check_alerts(self, node: str | None = None) -> None:
        """Emit an ALERT for each alert that starts holding (``node``'s and cluster-wide)."""
        if node is not None:
            self._settle([(TRANSPORT_FAILURES, node)], [a for a in [self.node_alert(node)] if a])
        self._settle([(DISABLED_NODES, None), (ESCALATION_COUNT, None)], self.cluster_alerts())

    def _settle(self, keys: list[tuple[str, str | None]], holding: list[Alert]) -> None:
        now = {a.key: a for a in holding}
        for key in keys:
            if key not in now:
                self._raised.discard(key)
        for key, alert in now.items():
            if key not in self._raised:
                self._raised.add(key)
                self.events.emit(
                    EventType.ALERT, node=alert.node, outcome=alert.metric, data=alert.as_dict()
                )

    # -- views (O(nodes)) ----------------------------------------------------------------
    def stamps_held(self) -> int:
        """Time stamps kept by every window: what the counters cost in memory."""
        windows = [self._escalations_hour, self._escalations_day, *self._failures.values()]
        return sum(len(w) for w in windows)

    def failures_last_hour(self) -> dict[str, int]:
        now = self.clock.monotonic()
        counts = {}
        for node, window in self._failures.items():
            counts[node] = window.count(now)
        return counts

    def snapshot(self) -> StatsSnapshot:
        now = self.clock.monotonic()
        failures = self.failures_last_hour()
        over = [(n, c) for n, c in failures.items() if c > NODE_FAILURES_PER_HOUR_ALERT]
        node_alerts = [
            Alert(TRANSPORT_FAILURES, c, NODE_FAILURES_PER_HOUR_ALERT, n) for n, c in sorted(over)
        ]
        return {
            "active_transports": {t: c for t, c in self.active.items() if c > 0},
            "total_nodes": self.total_nodes,
            "disabled_node_count": self.disabled,
            "escalations_today": self._escalations_day.count(now),
            "escalations_last_hour": self._escalations_hour.count(now),
            "transport_failures_last_hour": failures,
            "alerts": [a.as_dict() for a in node_alerts + self.cluster_alerts()],
        }
