"""SyncRouter wired to ClusterTransport against a small model, step by step (Hypothesis stateful).

The model is the runbook's escalation rule plus the node's breaker as ClusterTransport's
docstring describes it (one outcome per operation, not per transport):

- a node is disabled once every transport of its chain has failed since its last success
  (or its last re-enable / failure reset), and stays disabled until ``reenable_node``;
  a sync that ends in success never leaves the node disabled;
- a disabled node's sync, and a sync the breaker refuses, call no transport and count nothing;
- the order of a sync is the forced transport alone, else the primary (preferred, or the
  chain's first), the backup, then the rest of the chain.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from netfault.engine.breaker import BreakerState
from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig
from netfault.engine.errors import ConnectError, ConnectionReset, TransportTimeout
from netfault.engine.events import EventBus
from netfault.engine.router import SyncRouter
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.scripted import Call, ScriptedTransport

CHAIN = ("p2p", "http", "rsync", "base64")
# "ssh" has no implementation here: preferring or forcing it skips it without a call.
NAMES = (*CHAIN, "ssh")
NODES = ("n1", "n2")
# n2 cannot use http, so its chain is p2p, rsync, base64.
UNAVAILABLE = {("n2", "http")}
RECOVERY = 300.0
HISTORY = 10
# Integer steps keep the clock exact, so the recovery timeout is straddled by one second.
DELTAS = [1.0, RECOVERY - 1, RECOVERY, RECOVERY + 1, 3600.0]
ERRORS = [ConnectError, ConnectionReset, TransportTimeout]


@dataclass
class BreakerModel:
    threshold: int
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0

    def advance(self, now: float) -> None:
        if self.state is BreakerState.OPEN and now >= self.opened_at + RECOVERY:
            self.state = BreakerState.HALF_OPEN

    def admits(self) -> bool:
        return self.state is not BreakerState.OPEN

    def success(self) -> None:
        self.state, self.failures = BreakerState.CLOSED, 0

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.state, self.opened_at = BreakerState.OPEN, now


@dataclass
class NodeModel:
    name: str
    breaker: BreakerModel
    failed: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    disabled_at: float | None = None
    preferred: str | None = None
    history: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    @property
    def chain(self) -> list[str]:
        return [t for t in CHAIN if (self.name, t) not in UNAVAILABLE]

    def callable(self, transport: str) -> bool:
        return transport in CHAIN and (self.name, transport) not in UNAVAILABLE

    def fail(self, transport: str, wall: float, may_disable: bool = True) -> None:
        self.failed.add(transport)
        self.failures[transport] = self.failures.get(transport, 0) + 1
        exhausted = set(self.chain) <= self.failed
        if may_disable and self.disabled_at is None and exhausted:
            self.disabled_at = wall


class RouterMachine(RuleBasedStateMachine):
    """One router, two nodes, scripted transports; the model decides what must happen."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        fd, name = tempfile.mkstemp(prefix="netfault-model-")
        os.write(fd, b"payload")
        os.close(fd)
        self.data = Path(name)

    def teardown(self) -> None:
        self.loop.close()
        self.data.unlink(missing_ok=True)

    @initialize(
        threshold=st.sampled_from([3, 1000]),
        backup=st.sampled_from([None, "rsync", "ssh"]),
    )
    def build(self, threshold: int, backup: str | None) -> None:
        self.clock = ManualClock()
        self.bus = EventBus(self.clock)
        calls: list[Call] = []
        self.transports = {
            t: ScriptedTransport(t, calls=calls, available=self.availability(t)) for t in CHAIN
        }
        self.backup = backup
        thresholds = Thresholds(
            breaker_failure_threshold=threshold,
            breaker_recovery_timeout=RECOVERY,
            sync_backup_transport=backup,
            transport_history_size=HISTORY,
        )
        ct = ClusterTransport(
            transports=self.transports, clock=self.clock, thresholds=thresholds, events=self.bus
        )
        nodes = [NodeConfig(hostname=n) for n in NODES]
        self.router = SyncRouter(ct, nodes=nodes, thresholds=thresholds)
        self.model = {n: NodeModel(n, BreakerModel(threshold)) for n in NODES}

    @staticmethod
    def availability(transport: str) -> Callable[[NodeConfig], bool]:
        return lambda node: (node.name, transport) not in UNAVAILABLE

    # -- syncs -------------------------------------------------------------------------------
    def expected_order(self, m: NodeModel, forced: str | None) -> list[str]:
        if forced:
            return [forced]
        primary = m.preferred or m.chain[0]
        front = [t for t in (primary, self.backup) if t]
        return list(dict.fromkeys(front + m.chain))

    def run_sync(self, node: str, succeeds: dict[str, bool], forced: str | None) -> None:
        m = self.model[node]
        for name, transport in self.transports.items():
            err = ERRORS[len(name) % len(ERRORS)](f"{name} down", node=node, transport=name)
            transport.script[node] = [None if succeeds[name] else err]
        calls = self.transports["p2p"].calls
        calls.clear()

        result = self.loop.run_until_complete(
            self.router.sync_to_node(node, self.data, force_transport=forced)
        )

        m.breaker.advance(self.clock.monotonic())
        expected: list[str] = []
        if m.disabled_at is None and m.breaker.admits():
            for t in self.expected_order(m, forced):
                if m.callable(t):
                    expected.append(t)
                    if succeeds[t]:
                        break
        assert [(c.transport, c.node) for c in calls] == [(t, node) for t in expected]
        ok = bool(expected) and succeeds[expected[-1]]
        assert result.success is ok
        if m.disabled_at is not None:
            assert result.error_kind == "node_disabled"
        elif not m.breaker.admits():
            assert result.error_kind == "breaker_open"

        for t in expected:
            m.history.append((t, "success" if succeeds[t] else "failure"))
            if succeeds[t]:
                m.failed.clear()
            else:
                m.fail(t, self.clock.wall(), may_disable=not ok)
        if ok:
            m.breaker.success()
        elif expected:
            m.breaker.failure(self.clock.monotonic())

    @rule(
        node=st.sampled_from(NODES),
        succeeds=st.fixed_dictionaries({t: st.booleans() for t in CHAIN}),
    )
    def sync(self, node: str, succeeds: dict[str, bool]) -> None:
        self.run_sync(node, succeeds, None)

    @rule(
        node=st.sampled_from(NODES),
        forced=st.sampled_from(NAMES),
        succeeds=st.fixed_dictionaries({t: st.booleans() for t in CHAIN}),
    )
    def forced_sync(self, node: str, forced: str, succeeds: dict[str, bool]) -> None:
        self.run_sync(node, succeeds, forced)

    # -- operator actions --------------------------------------------------------------------
    @rule(node=st.sampled_from(NODES), transport=st.sampled_from([*NAMES, None]))
    def set_preferred(self, node: str, transport: str | None) -> None:
        self.router.set_preferred_transport(node, transport)
        self.model[node].preferred = transport

    @rule(node=st.sampled_from(NODES))
    def reenable(self, node: str) -> None:
        self.router.reenable_node(node)
        m = self.model[node]
        if m.disabled_at is not None:
            m.disabled_at = None
            m.failed.clear()

    @rule(node=st.sampled_from(NODES))
    def reset_failures(self, node: str) -> None:
        self.router.reset_transport_failures(node)
        self.model[node].failed.clear()
        self.model[node].failures.clear()

    @rule(node=st.sampled_from(NODES), transport=st.sampled_from(NAMES))
    def external_stall(self, node: str, transport: str) -> None:
        """Another component reports a stalled transport to the router."""
        self.router.report_stall(node, transport, error="stalled")
        m = self.model[node]
        m.history.append((transport, "failure"))
        m.fail(transport, self.clock.wall())

    @rule(seconds=st.sampled_from(DELTAS))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for m in self.model.values():
            m.breaker.advance(self.clock.monotonic())

    # -- agreement ---------------------------------------------------------------------------
    @invariant()
    def disabled_nodes_agree(self) -> None:
        disabled = self.router.get_disabled_nodes()
        expected = {
            n: {
                "disabled_at": m.disabled_at,
                "reason": "all_transports_exhausted",
                "failed_transports": m.chain,
            }
            for n, m in self.model.items()
            if m.disabled_at is not None
        }
        assert disabled == expected
        assert self.router.get_sync_nodes() == [n for n in NODES if n not in expected]

    @invariant()
    def failure_counts_agree(self) -> None:
        expected = {n: m.failures for n, m in self.model.items() if m.failures}
        assert self.router.get_transport_failures() == expected

    @invariant()
    def history_agrees(self) -> None:
        for n, m in self.model.items():
            seen = [(e["transport"], e["result"]) for e in self.router.get_transport_history(n)]
            assert seen == list(m.history)

    @invariant()
    def running_counters_agree(self) -> None:
        active: dict[str, int] = {}
        for m in self.model.values():
            if m.disabled_at is None:
                for t in m.chain:
                    if t not in m.failed:
                        active[t] = active.get(t, 0) + 1
        disabled = sum(m.disabled_at is not None for m in self.model.values())
        stats = self.router.get_stats()
        assert (stats["active_transports"], stats["disabled_node_count"]) == (active, disabled)

    @invariant()
    def breakers_agree(self) -> None:
        for n, m in self.model.items():
            m.breaker.advance(self.clock.monotonic())
            assert self.router.transport.breakers.get(n).state is m.breaker.state


# No explain phase: on a failure it replays thousands of variants and takes minutes.
RouterMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
TestRouterAgainstModel = RouterMachine.TestCase
