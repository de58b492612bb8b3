"""One escalation operation when failover races transports: failures charged to the
transport they name, and an order arranged per operation."""

from __future__ import annotations

import pytest

from netfault.engine.clock import ManualClock
from netfault.engine.escalation import EXHAUSTED, NodeEscalation, Policy

CHAIN = ["tailscale", "ssh", "base64"]


def machine(threshold: int = 1) -> NodeEscalation:
    return NodeEscalation("n1", CHAIN, Policy(failover_threshold=threshold), ManualClock())


def test_a_failure_out_of_turn_stalls_its_own_transport_and_keeps_the_current_in_line() -> None:
    node = machine()
    op = node.begin()
    raced = op.failed("ssh", "connect", "refused")  # raced while tailscale still connects
    assert (raced.transport, raced.stalled, raced.next_transport) == ("ssh", True, "tailscale")
    lead = op.failed("tailscale", "timeout", "no answer")
    assert (lead.transport, lead.next_transport) == ("tailscale", "base64")
    assert dict(node.failures) == {"ssh": 1, "tailscale": 1}
    assert op.failed("base64", "connect", "refused").disabled is not None
    assert node.disabled is not None and node.disabled.reason == EXHAUSTED


def test_out_of_turn_tries_are_counted_per_transport_against_the_threshold() -> None:
    op = machine(threshold=2).begin()
    assert op.failed("ssh", "connect", None).next_transport == "ssh"  # one try of two
    assert op.failed("tailscale", "connect", None).next_transport == "tailscale"
    assert op.failed("ssh", "connect", None).next_transport == "tailscale"  # ssh stalls
    assert op.pending() == ["tailscale", "base64"]


def test_arrange_reorders_one_operation_only() -> None:
    node = machine()
    op = node.begin(arrange=lambda order: [*order[1:], order[0]])
    assert op.order == ("ssh", "base64", "tailscale")
    assert node.begin().order == tuple(CHAIN)


def test_arrange_that_changes_the_transports_is_refused() -> None:
    with pytest.raises(ValueError, match="arrange changed the transports"):
        machine().begin(arrange=lambda order: order[1:])
