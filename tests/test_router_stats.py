"""Running counters fire the runbook's alerts at exactly its numbers, on a ManualClock."""

from __future__ import annotations

import pytest

from netfault.engine.clock import ManualClock
from netfault.engine.events import EventBus, EventRecorder, EventType
from netfault.engine.router_stats import HOUR, RouterStats, SlidingCount


class Stats:
    def __init__(self, nodes: int = 1, failure_cap: int = 200) -> None:
        self.clock = ManualClock()
        bus = EventBus(self.clock)
        self.recorder = EventRecorder()
        bus.subscribe(self.recorder)
        self.stats = RouterStats(self.clock, bus, failure_cap)
        for _ in range(nodes):
            self.stats.add_node(("p2p", "http"))

    def fail(self, node: str = "n1", times: int = 1) -> None:
        for _ in range(times):
            self.stats.record_failure(node)
            self.stats.check_alerts(node)

    def escalate(self, times: int = 1) -> None:
        for _ in range(times):
            self.stats.record_escalation()
            self.stats.check_alerts()

    def disable(self, times: int = 1) -> None:
        for _ in range(times):
            self.stats.move(("p2p", "http"), (), +1)
            self.stats.check_alerts()

    def alerts(self, metric: str) -> list[dict[str, object]]:
        return [e.data for e in self.recorder.of_type(EventType.ALERT) if e.outcome == metric]


@pytest.mark.parametrize(
    ("failures", "alerted"),
    [pytest.param(5, False, id="5-per-hour-is-quiet"), pytest.param(6, True, id="6-alerts")],
)
def test_node_failure_alert_fires_above_five_in_an_hour(failures: int, alerted: bool) -> None:
    s = Stats()
    s.fail(times=failures)

    expected = [{"metric": "transport_failures", "node": "n1", "value": 6, "threshold": 5}]
    assert s.alerts("transport_failures") == (expected if alerted else [])
    assert s.stats.snapshot()["transport_failures_last_hour"] == {"n1": failures}


@pytest.mark.parametrize(
    ("disabled", "alerted"),
    [pytest.param(2, False, id="2-of-10-is-20pct-quiet"), pytest.param(3, True, id="3-of-10")],
)
def test_disabled_nodes_alert_fires_above_a_fifth(disabled: int, alerted: bool) -> None:
    s = Stats(nodes=10)
    s.disable(disabled)

    assert [a["value"] for a in s.alerts("disabled_nodes")] == ([0.3] if alerted else [])
    assert s.stats.snapshot()["disabled_node_count"] == disabled
    assert s.stats.snapshot()["active_transports"] == {"p2p": 10 - disabled, "http": 10 - disabled}


@pytest.mark.parametrize(
    ("escalations", "alerted"),
    [pytest.param(10, False, id="10-per-hour-quiet"), pytest.param(11, True, id="11-alerts")],
)
def test_escalation_alert_fires_above_ten_in_an_hour(escalations: int, alerted: bool) -> None:
    s = Stats()
    s.escalate(escalations)

    assert [a["value"] for a in s.alerts("escalation_count")] == ([11] if alerted else [])


@pytest.mark.parametrize(
    ("elapsed", "counted"),
    [
        pytest.param(HOUR - 1, 5, id="3599s-old-still-counts"),
        pytest.param(HOUR, 0, id="3600s-old-drops-out"),
    ],
)
def test_failures_leave_the_window_exactly_an_hour_later(elapsed: float, counted: int) -> None:
    s = Stats()
    s.fail(times=5)
    s.clock.advance(elapsed)

    s.fail()

    assert s.stats.snapshot()["transport_failures_last_hour"] == {"n1": counted + 1}
    assert len(s.alerts("transport_failures")) == (1 if counted == 5 else 0)


def test_an_alert_fires_again_only_after_it_stopped_holding() -> None:
    s = Stats()
    s.fail(times=8)
    assert len(s.alerts("transport_failures")) == 1

    s.clock.advance(HOUR)
    s.fail(times=5)  # back under the threshold: the alert re-arms
    s.fail()

    assert [a["value"] for a in s.alerts("transport_failures")] == [6, 6]


def test_a_node_failure_window_is_capped_so_its_memory_is_bounded() -> None:
    window = SlidingCount(HOUR, cap=50)
    for _ in range(1000):
        window.add(0.0)

    assert window.count(1.0) == 50
    assert window.count(HOUR) == 0


def test_escalation_windows_hold_bounded_stamps_at_any_rate() -> None:
    s = Stats()
    for _ in range(28_800):  # eight escalations a second (exact binary steps) for an hour
        s.stats.record_escalation()
        s.clock.advance(0.125)

    snapshot = s.stats.snapshot()

    assert snapshot["escalations_today"] == 28_800
    assert snapshot["escalations_last_hour"] == 28_800 - 8  # the first second has dropped out
    assert s.stats.stamps_held() <= 3_601 + 61  # one per second for an hour, per minute for a day
