"""The pure escalation machine against a tiny model, step by step (Hypothesis stateful).

The model states the runbook's rule directly, per operation: walk the order; retry a
transport on an integrity failure while resends are left, and until it has failed
``failover_threshold`` times; then it stalls (counted, failed for the node) and the next
transport is tried; a transport the node cannot use is passed over without counting.
A success clears the failed set. A node is disabled when an operation ends without
success, or a stall is reported from outside, while every chain transport has failed.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from netfault.engine.clock import ManualClock
from netfault.engine.escalation import EXHAUSTED, NodeEscalation, Policy

CHAIN = ("p2p", "http", "rsync", "base64")
NAMES = (*CHAIN, "ssh")  # "ssh" is not usable by this node: always passed over
HISTORY = 6
OUTCOMES = ["ok", "connect", "integrity"]


@dataclass
class Model:
    threshold: int
    backup: str | None
    resends: int
    preferred: str | None = None
    failed: set[str] = field(default_factory=set)
    failures: Counter[str] = field(default_factory=Counter)
    disabled_at: float | None = None
    history: deque[tuple[str, bool]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def order(self, forced: str | None) -> list[str]:
        if forced:
            return [forced]
        front = [t for t in (self.preferred or CHAIN[0], self.backup) if t]
        return list(dict.fromkeys(front + list(CHAIN)))

    def stall(self, transport: str) -> None:
        self.failed.add(transport)
        self.failures[transport] += 1

    def exhausted(self) -> bool:
        return set(CHAIN) <= self.failed

    def run(self, order: list[str], outcomes: Iterator[str], wall: float) -> list[str]:
        """Calls made, in order; updates the model's state."""
        calls: list[str] = []
        for t in order:
            if t not in CHAIN:
                continue
            tries, resends = 0, self.resends
            while True:
                outcome = next(outcomes)
                calls.append(t)
                self.history.append((t, outcome == "ok"))
                if outcome == "ok":
                    self.failed.clear()
                    return calls
                if outcome == "integrity" and resends:
                    resends -= 1
                    continue
                tries += 1
                if tries >= self.threshold:
                    break
            self.stall(t)
        if calls and self.exhausted() and self.disabled_at is None:
            self.disabled_at = wall
        return calls


class EscalationMachine(RuleBasedStateMachine):
    """One node's machine and the model, fed the same operations and reports."""

    @initialize(
        threshold=st.sampled_from([1, 2]),
        backup=st.sampled_from([None, "rsync", "ssh"]),
        resends=st.sampled_from([0, 1]),
    )
    def build(self, threshold: int, backup: str | None, resends: int) -> None:
        self.clock = ManualClock()
        policy = Policy(failover_threshold=threshold, backup_transport=backup, history_size=HISTORY)
        self.machine = NodeEscalation("n1", CHAIN, policy, self.clock)
        self.model = Model(threshold, backup, resends)

    @rule(
        forced=st.sampled_from([None, None, *NAMES]),
        outcomes=st.lists(st.sampled_from(OUTCOMES), min_size=1, max_size=12),
    )
    def operation(self, forced: str | None, outcomes: list[str]) -> None:
        if self.machine.disabled is not None:
            return  # the router refuses a disabled node before any operation starts
        m = self.model
        op = self.machine.begin(forced, m.resends)
        assert list(op.order) == m.order(forced)
        script = iter(outcomes * 20)
        calls: list[str] = []
        name: str | None = op.order[0]
        while name is not None:
            if name not in CHAIN:
                name = op.failed(name, "unavailable", "not configured").next_transport
                continue
            calls.append(name)
            outcome = next(script)
            if outcome == "ok":
                self.machine.succeeded(name)
                break
            decision = op.failed(name, outcome, f"{name}: {outcome}")
            assert decision.escalated is (decision.stalled and decision.next_transport is not None)
            name = decision.next_transport
        assert calls == m.run(m.order(forced), iter(outcomes * 20), self.clock.wall())

    @rule(transport=st.sampled_from(NAMES))
    def reported_stall(self, transport: str) -> None:
        decision = self.machine.stalled(transport, "stalled")
        m = self.model
        was_disabled = m.disabled_at is not None
        m.history.append((transport, False))
        m.stall(transport)
        remaining = [t for t in CHAIN if t not in m.failed]
        newly = not was_disabled and not remaining
        if newly:
            m.disabled_at = self.clock.wall()
        assert decision.stalled
        assert (decision.disabled is not None) is newly
        assert decision.next_transport == (remaining[0] if remaining and not was_disabled else None)
        assert decision.escalated is (not was_disabled and bool(remaining))

    @rule(transport=st.sampled_from([*NAMES, None]))
    def prefer(self, transport: str | None) -> None:
        self.machine.preferred = transport
        self.model.preferred = transport

    @rule()
    def reenable(self) -> None:
        was = self.model.disabled_at is not None
        assert self.machine.reenable() is was
        if was:
            self.model.disabled_at = None
            self.model.failed.clear()

    @rule()
    def reset_failures(self) -> None:
        self.machine.reset_failures()
        self.model.failed.clear()
        self.model.failures.clear()

    @rule(seconds=st.sampled_from([0.5, 1.0, 3600.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agree(self) -> None:
        m, machine = self.model, self.machine
        if m.disabled_at is None:
            assert machine.disabled is None
            assert machine.active() == tuple(t for t in CHAIN if t not in m.failed)
        else:
            assert machine.disabled is not None
            assert machine.disabled.as_dict() == {
                "disabled_at": m.disabled_at,
                "reason": EXHAUSTED,
                "failed_transports": list(CHAIN),
            }
            assert machine.active() == ()
        assert dict(machine.failures) == {t: c for t, c in m.failures.items() if c}
        assert [(e.transport, e.success) for e in machine.history] == list(m.history)


EscalationMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
TestEscalationAgainstModel = EscalationMachine.TestCase
