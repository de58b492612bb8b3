"""SyncRouter: drives each node's escalation machine as a sync goes, and acts on it.

A sync is one ``ClusterTransport`` operation that starts with the first transport of the
node's order (``engine/escalation.py``). When an attempt fails the transport asks the
router for the next transport; the router asks the node's machine and, before anything
else is tried, emits what the decision says, in this order: SYNC_STALLED when the
transport stalled (``data.next_transport`` names the one tried next, if any), then
NODE_DISABLED when the chain is exhausted, then any ALERT that starts to hold. So the
event log reads attempt failed -> stall -> next attempt -> success, as it happened.
A disabled node is refused without a network attempt until ``reenable_node``. Other
components report a stall with ``report_stall``.

Syncs share the transport's route memory and connection racing: the order puts transports
on a demoted route last, and a transport's connection is raced against the next one's on
the other route. A raced connection that fails is reported to the machine as it fails
(its stall follows its failure in the log); one cancelled because another connected
first is never reported, so it counts against neither the breaker nor the escalation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import ClassVar, TypeVar

from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.config import SYNC_ESCALATION_ORDER, NodeConfig, TransportConfig
from netfault.engine.errors import NodeDisabledError
from netfault.engine.escalation import (
    EXHAUSTED,
    Decision,
    DisabledInfo,
    DisabledNode,
    HistoryDict,
    NodeEscalation,
    Operation,
    Policy,
)
from netfault.engine.events import EventBus, EventType
from netfault.engine.results import Attempt, ProbeResult, TransferResult
from netfault.engine.router_stats import RouterStats, StatsSnapshot
from netfault.engine.thresholds import Thresholds, load_thresholds
from netfault.engine.transport import ClusterTransport

TRANSPORT_ESCALATION_ORDER = SYNC_ESCALATION_ORDER  # the runbook's name
T = TypeVar("T")

__all__ = ["EXHAUSTED", "TRANSPORT_ESCALATION_ORDER", "SyncRouter", "get_sync_router"]


class _RoutedOperation:
    """The transport loop's escalation hook for one sync: the machine decides, we announce."""

    def __init__(self, router: SyncRouter, machine: NodeEscalation, operation: Operation) -> None:
        self.router = router
        self.machine = machine
        self.operation = operation

    def next_transport(self, failed: Attempt) -> str | None:
        op = self.operation
        decision = self.router._change(
            self.machine, lambda: op.failed(failed.transport, failed.error_kind, failed.message)
        )
        self.router._announce(decision, failed.error_kind, failed.message)
        return decision.next_transport


class SyncRouter:
    """Routes syncs to nodes through the escalation chain and tracks what failed."""

    _instance: ClassVar[SyncRouter | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        transport: ClusterTransport | None = None,
        *,
        nodes: Mapping[str, NodeConfig] | Iterable[NodeConfig] = (),
        clock: Clock | None = None,
        thresholds: Thresholds | None = None,
        events: EventBus | None = None,
        escalation_order: Iterable[str] = TRANSPORT_ESCALATION_ORDER,
    ) -> None:
        self.thresholds = thresholds or (transport.thresholds if transport else load_thresholds())
        self.clock = clock or (transport.clock if transport else SYSTEM_CLOCK)
        self.events = events or (transport.events if transport else EventBus(self.clock))
        self.transport = transport or ClusterTransport(
            clock=self.clock, thresholds=self.thresholds, events=self.events
        )
        self.escalation_order = tuple(escalation_order)
        self.policy = Policy(
            failover_threshold=max(1, self.thresholds.sync_failover_threshold),
            backup_transport=self.thresholds.sync_backup_transport,
            history_size=self.thresholds.transport_history_size,
        )
        self._nodes: dict[str, NodeConfig] = {}
        self._machines: dict[str, NodeEscalation] = {}
        self.stats = RouterStats(self.clock, self.events, self.policy.history_size)
        for node in nodes.values() if isinstance(nodes, Mapping) else nodes:
            self.add_node(node)

    @classmethod
    def get_instance(cls) -> SyncRouter:
        """The process-wide router, created on first use from the environment."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    # -- nodes -----------------------------------------------------------------
    def add_node(self, node: NodeConfig) -> None:
        """Register a node (its chain is fixed now); re-adding keeps its escalation state."""
        self._nodes[node.name] = node
        chain = self._chain_of(node)
        machine = self._machines.get(node.name)
        if machine is None:
            machine = NodeEscalation(node.name, chain, self.policy, self.clock)
            self._machines[node.name] = machine
            self.stats.add_node(machine.active())
        elif machine.chain != tuple(chain):
            self._change(machine, lambda: setattr(machine, "chain", tuple(chain)))

    def _chain_of(self, cfg: NodeConfig) -> list[str]:
        names = cfg.transport_order(self.escalation_order)
        known = self.transport.transports
        return [t for t in names if t not in known or known[t].available(cfg)]

    def _node(self, name: str) -> NodeConfig:
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError(f"unknown node {name!r}; known: {sorted(self._nodes)}") from None

    def _machine(self, name: str) -> NodeEscalation:
        return self._machines[self._node(name).name]

    def get_sync_nodes(self) -> list[str]:
        """Nodes that are not disabled."""
        return [n for n, m in self._machines.items() if m.disabled is None]

    def chain(self, node: str) -> list[str]:
        """The node's escalation chain: its configured transports, else the default order,
        without transports unavailable to it."""
        return list(self._machine(node).chain)

    def transport_order(self, node: str, force_transport: str | None = None) -> list[str]:
        """Order for the next sync: forced alone; else the primary (preferred or first of the
        chain), the backup transport, then the rest of the chain; transports on a route
        demoted for the node (route memory) moved last."""
        return self.transport.route_order(
            self._node(node), self._machine(node).order(force_transport)
        )

    # -- syncing ---------------------------------------------------------------
    async def sync_to_node(
        self,
        node: str,
        data_path: str | Path,
        force_transport: str | None = None,
        *,
        remote_path: str | None = None,
        direction: str = "push",
        config: TransportConfig | None = None,
    ) -> TransferResult:
        """Sync one file to (or from) a node, escalating along its order as attempts fail."""
        cfg = self._node(node)
        machine = self._machines[node]
        if machine.disabled is not None:
            err = NodeDisabledError(node, machine.disabled.reason)
            return TransferResult(False, node, direction, error=err.message, error_kind=err.kind)
        resends = (config or self.transport.config).integrity_retries
        arrange = partial(self.transport.route_order, cfg)  # demoted routes last
        operation = machine.begin(force_transport, resends, arrange)
        result = await self.transport.transfer_file(
            data_path,
            # by default the file keeps its name, under the node's base_path
            remote_path if remote_path is not None else Path(data_path).name,
            cfg,
            direction,
            config,
            transports=operation.order,
            escalation=_RoutedOperation(self, machine, operation),
        )
        if result.success and result.transport_used is not None:
            used = result.transport_used
            self._change(machine, lambda: machine.succeeded(used))
        return result

    def report_stall(
        self, node: str, transport: str, error: str | None = None, error_kind: str | None = None
    ) -> Decision:
        """A component outside a sync saw ``transport`` stall on ``node``: record it now."""
        machine = self._machine(node)
        decision = self._change(machine, lambda: machine.stalled(transport, error))
        self._announce(decision, error_kind, error)
        return decision

    def _change(self, machine: NodeEscalation, change: Callable[[], T]) -> T:
        """Apply one machine transition, keeping the running counters in step with it."""
        before, was_disabled = machine.active(), machine.disabled is not None
        out = change()
        after, delta = machine.active(), (machine.disabled is not None) - was_disabled
        if delta or after != before:
            self.stats.move(before, after, delta)
        return out

    def _announce(self, decision: Decision, error_kind: str | None, error: str | None) -> None:
        """Emit what one decision says, in the order it happened; then check the alerts."""
        node = decision.node
        if decision.stalled:
            self.events.emit(
                EventType.SYNC_STALLED,
                node=node,
                transport=decision.transport,
                error_kind=error_kind,
                error=error,
                data={"next_transport": decision.next_transport},
            )
            self.stats.record_failure(node)
        if decision.escalated:
            self.stats.record_escalation()
        if decision.disabled is not None:
            failed = list(decision.disabled.failed_transports)
            reason = decision.disabled.reason
            data = {"failed_transports": failed}
            self.events.emit(EventType.NODE_DISABLED, node=node, outcome=reason, data=data)
        self.stats.check_alerts(node if decision.stalled else None)

    # -- runbook API -------------------------------------------------------------
    def get_disabled_nodes(self) -> dict[str, DisabledInfo]:
        return {n: m.disabled.as_dict() for n, m in self._machines.items() if m.disabled}

    def get_transport_failures(self) -> dict[str, dict[str, int]]:
        return {n: dict(m.failures) for n, m in self._machines.items() if m.failures}

    def get_transport_history(self, node: str) -> list[HistoryDict]:
        return [entry.as_dict() for entry in self._machine(node).history]

    def is_disabled(self, node: str) -> bool:
        return self._machine(node).disabled is not None

    def disabled_record(self, node: str) -> DisabledNode | None:
        """Why and when ``node`` was disabled, or None (O(1), unlike get_disabled_nodes)."""
        return self._machine(node).disabled

    def reenable_node(self, node: str) -> None:
        machine = self._machine(node)
        if self._change(machine, machine.reenable):
            self.events.emit(EventType.NODE_REENABLED, node=node)
            self.stats.check_alerts()

    def reset_transport_failures(self, node: str) -> None:
        machine = self._machine(node)
        self._change(machine, machine.reset_failures)

    def set_preferred_transport(self, node: str, transport: str | None) -> None:
        self._machine(node).preferred = transport

    def get_preferred_transport(self, node: str) -> str | None:
        return self._machine(node).preferred

    async def test_transport(self, node: str, transport: str) -> ProbeResult:
        """Probe one transport of a node; recorded nowhere, so it never disables a node."""
        return await self.transport.probe_transport(self._node(node), transport)

    _test_transport = test_transport

    def get_stats(self) -> StatsSnapshot:
        """The runbook's dashboard figures, from running counters (O(nodes))."""
        return self.stats.snapshot()


def get_sync_router() -> SyncRouter:
    """The process-wide SyncRouter (see ``SyncRouter.get_instance``)."""
    return SyncRouter.get_instance()
