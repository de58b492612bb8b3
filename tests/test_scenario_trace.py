"""The scenario's fault record and the proxy's event are one record: the shared fields
pass from one to the other unchanged, and each serialises them one way."""

from __future__ import annotations

import json
from dataclasses import fields, replace

from netfault.engine.events import Event, EventType
from netfault.simulator.proxy.trace import FaultAction, FaultFiring
from netfault.simulator.proxy.trace import FaultEvent as ProxyEvent
from netfault.simulator.scenario.trace import FaultEvent, FaultKind, Inexact, merged

FLIP = ProxyEvent(
    action=FaultAction.BIT_FLIPPED,
    proxy="node-1-hostname-http",
    toxic="nf1_corrupt_binary_upstream",
    toxic_type="corrupt",
    direction="upstream",
    connection=0,
    offset=70_123,
    bit=5,
    time=812.25,
    seq=9,
)


def fired(event: ProxyEvent, inexact: tuple[Inexact, ...] = ()) -> FaultEvent:
    return FaultEvent(
        kind=FaultKind.FIRED,
        fault="corrupt_binary",
        node="node-1",
        t=30.0,
        seq=4,
        name="corrupt_binary",
        route="hostname",
        service="http",
        inexact=inexact,
        **event.firing(),
    )


def test_both_events_share_one_set_of_fault_fields() -> None:
    shared = [f.name for f in fields(FaultFiring)]
    assert shared == [
        "action",
        "proxy",
        "toxic",
        "toxic_type",
        "direction",
        "connection",
        "offset",
        "bit",
        "value",
        "mode",
        "delay_ms",
    ]
    record = fired(FLIP)
    assert isinstance(record, FaultFiring) and isinstance(FLIP, FaultFiring)
    assert record.firing() == FLIP.firing()


def test_a_proxy_firing_becomes_a_trace_line_with_its_place_in_the_scenario() -> None:
    assert fired(FLIP).record() == {
        "type": "FAULT_FIRED",
        "kind": "fired",
        "fault": "corrupt_binary",
        "as": "corrupt_binary",
        "node": "node-1",
        "route": "hostname",
        "service": "http",
        "proxy": "node-1-hostname-http",
        "toxic": "nf1_corrupt_binary_upstream",
        "toxic_type": "corrupt",
        "action": "bit_flipped",
        "connection": 0,
        "direction": "upstream",
        "offset": 70_123,
        "offset_exact": True,
        "bit": 5,
        "t": 30.0,
        "seq": 4,
    }


def test_the_proxys_clock_and_order_stay_out_of_both_decisions() -> None:
    again = replace(FLIP, time=1.5, seq=77)
    assert again.decision() == FLIP.decision()
    assert fired(again).decision() == fired(FLIP).decision()
    assert dict(FLIP.decision() or ())["offset"] == 70_123


def test_what_a_record_calls_inexact_is_left_out_of_its_decision() -> None:
    cut = fired(FLIP, inexact=("offset", "direction"))
    assert cut.record()["offset_exact"] is False
    decision = dict(cut.decision() or ())
    assert "offset" not in decision and "direction" not in decision
    assert decision["connection"] == 0
    assert fired(FLIP, inexact=("occurrence",)).decision() is None


def test_a_cut_on_either_side_is_the_same_decision_when_the_side_is_not_fixed() -> None:
    # A reset fault has a toxic per direction; a timer decides which one cuts first.
    upstream = replace(FLIP, action=FaultAction.RESET, bit=None, toxic_type="reset_peer")
    downstream = replace(upstream, direction="downstream", toxic="nf1_corrupt_binary_downstream")
    inexact: tuple[Inexact, ...] = ("offset", "direction")
    assert fired(upstream, inexact).decision() == fired(downstream, inexact).decision()
    assert fired(upstream).decision() != fired(downstream).decision()
    assert dict(fired(upstream, inexact).decision() or ())["toxic_type"] == "reset_peer"


def test_fault_records_sit_after_the_engine_events_counted_before_them() -> None:
    events = [Event(EventType.ATTEMPT_STARTED, node="node-1"), Event(EventType.ATTEMPT_FAILED)]
    lines = merged(events, [replace(fired(FLIP), seq=1)])
    assert [line["type"] for line in lines] == ["ATTEMPT_STARTED", "FAULT_FIRED", "ATTEMPT_FAILED"]
    assert json.loads(json.dumps(lines)) == lines
