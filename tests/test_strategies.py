"""fault_schedules(): valid schedules, and a one-line reproducer that reads back."""

from __future__ import annotations

from hypothesis import given, settings

from netfault.simulator.cluster.faults import check_params, node_level
from netfault.simulator.strategies import FaultSchedule, fault_schedules

NODES = ("node-1", "node-2")


@settings(max_examples=200, deadline=None)
@given(fault_schedules(NODES, operations=5))
def test_every_drawn_fault_is_one_the_controller_accepts(schedule: FaultSchedule) -> None:
    for fault in schedule.faults:
        filled = check_params(fault.kind, fault.params)  # raises on anything invalid
        assert filled.items() >= fault.params.items()
        assert 0 <= fault.start < fault.stop <= 5
        assert fault.node in NODES
        if node_level(fault.kind, fault.params):
            assert fault.route is None and fault.service is None


@settings(max_examples=100, deadline=None)
@given(fault_schedules(NODES))
def test_one_line_reproducer_reads_back_to_the_same_schedule(schedule: FaultSchedule) -> None:
    line = schedule.one_line()
    assert "\n" not in line and line.startswith("netfault-schedule ")
    assert repr(schedule) == line  # what Hypothesis prints for a falsifying example
    assert FaultSchedule.from_line(line) == schedule


def test_active_faults_follow_start_and_stop() -> None:
    schedule = FaultSchedule.from_line(
        'netfault-schedule {"seed":1,"faults":[{"start":1,"stop":3,"kind":"down","node":"node-1"}]}'
    )
    assert [len(schedule.active(op)) for op in range(4)] == [0, 1, 1, 0]
    assert schedule.starting(1)[0].kind == "down"
    assert schedule.stopping(3)[0].node == "node-1"
