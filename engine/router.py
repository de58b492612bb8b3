"""SyncRouter: the escalation chain that disables a node once every transport is exhausted.

Each sync goes through ``ClusterTransport`` as one operation over the node's chain (the
primary transport -- the preferred one, else the chain's first -- then the backup
transport, then the rest; a forced transport alone).
Every transport that fails there raises SYNC_STALLED; the stall handler records it and
either asks for the next transport (SYNC_RETRY_REQUESTED) or, when every transport in the
chain has failed since the node's last success, disables the node with the reason
``all_transports_exhausted`` (NODE_DISABLED). A disabled node is refused until
``reenable_node``. Stall events from other components go through the same handler.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from netfault.engine.clock import SYSTEM_CLOCK, Clock
from netfault.engine.config import SYNC_ESCALATION_ORDER, NodeConfig, TransportConfig
from netfault.engine.errors import CANCELLED_KIND, REQUEST_KINDS, NodeDisabledError
from netfault.engine.events import Event, EventBus, EventType
from netfault.engine.results import ProbeResult, TransferResult
from netfault.engine.router_stats import RouterStats
from netfault.engine.thresholds import Thresholds, load_thresholds
from netfault.engine.transport import ClusterTransport

TRANSPORT_ESCALATION_ORDER = SYNC_ESCALATION_ORDER  # the runbook's name
EXHAUSTED = "all_transports_exhausted"


@dataclass
class _NodeState:
    failed: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    history: deque[dict[str, Any]] = field(default_factory=deque)
    disabled: dict[str, Any] | None = None
    preferred: str | None = None


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
        self._nodes: dict[str, NodeConfig] = {}
        self._state: dict[str, _NodeState] = {}
        self.stats = RouterStats(self.clock, self.events)
        for node in nodes.values() if isinstance(nodes, Mapping) else nodes:
            self.add_node(node)
        self.events.subscribe(self._dispatch)

    @classmethod
    def get_instance(cls) -> SyncRouter:
        """The process-wide router, created on first use from the environment."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    # -- nodes -----------------------------------------------------------------
    def add_node(self, node: NodeConfig) -> None:
        self._nodes[node.name] = node
        self._state.setdefault(node.name, self._new_state())

    def _new_state(self) -> _NodeState:
        return _NodeState(history=deque(maxlen=self.thresholds.transport_history_size))

    def _node(self, name: str) -> NodeConfig:
        try:
            return self._nodes[name]
        except KeyError:
            raise KeyError(f"unknown node {name!r}; known: {sorted(self._nodes)}") from None

    def get_sync_nodes(self) -> list[str]:
        """Nodes that are not disabled."""
        return [n for n in self._nodes if self._state[n].disabled is None]

    def chain(self, node: str) -> list[str]:
        """The node's escalation chain: its configured transports, else the default order."""
        cfg = self._node(node)
        names = cfg.transport_order(self.escalation_order)
        known = self.transport.transports
        return [t for t in names if t not in known or known[t].available(cfg)]

    def transport_order(self, node: str, force_transport: str | None = None) -> list[str]:
        """Order for the next sync: forced alone; else the primary (preferred or first of the
        chain), the backup transport, then the rest of the chain."""
        if force_transport:
            return [force_transport]
        chain = self.chain(node)
        primary = self._state[node].preferred or (chain[0] if chain else None)
        front = [t for t in (primary, self.thresholds.sync_backup_transport) if t]
        return list(dict.fromkeys(front + chain))

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
        """Sync one file to (or from) a node through the escalation chain."""
        cfg = self._node(node)
        state = self._state[node]
        if state.disabled is not None:
            err = NodeDisabledError(node, state.disabled["reason"])
            return TransferResult(False, node, direction, error=err.message, error_kind=err.kind)
        # by default the file keeps its name, under the node's base_path
        target = remote_path if remote_path is not None else Path(data_path).name
        result = await self.transport.transfer_file(
            data_path,
            target,
            cfg,
            direction,
            config,
            transports=self.transport_order(node, force_transport),
            attempts_per_transport=self.thresholds.sync_failover_threshold,
        )
        self._learn(node, result)
        return result

    def _learn(self, node: str, result: TransferResult) -> None:
        """Feed a finished operation's attempts, in order, into the failure tracking."""
        state = self._state[node]
        attempts = result.attempts
        for i, attempt in enumerate(attempts):
            if attempt.error_kind in REQUEST_KINDS or attempt.error_kind == CANCELLED_KIND:
                continue  # the request was wrong, or the attempt lost a race: no stall
            self._remember(state, attempt.transport, attempt.success, attempt.message)
            if attempt.success:
                state.failed.clear()
                continue
            moved_on = i + 1 == len(attempts) or attempts[i + 1].transport != attempt.transport
            if moved_on:
                self.events.emit(
                    EventType.SYNC_STALLED,
                    node=node,
                    transport=attempt.transport,
                    error_kind=attempt.error_kind,
                    error=attempt.message,
                    # a later transport of the same operation may still win: then the
                    # stall escalates but never disables the node
                    data={"source": "router", "operation_succeeded": result.success},
                )

    def _remember(self, state: _NodeState, transport: str, ok: bool, error: str | None) -> None:
        entry = {
            "time": self.clock.wall(),
            "transport": transport,
            "result": "success" if ok else "failure",
            "error": error,
        }
        state.history.append(entry)

    # -- stall handling ----------------------------------------------------------
    def _dispatch(self, event: Event) -> None:
        if event.type is EventType.SYNC_STALLED:
            self._on_sync_stalled(event)

    def _on_sync_stalled(self, event: Event) -> None:
        """Record a stalled transport; request the next one or disable the node."""
        node, transport = event.node, event.transport
        if node is None or transport is None or node not in self._state:
            return
        state = self._state[node]
        if event.data.get("source") != "router":
            self._remember(state, transport, False, event.error)
        state.failed.add(transport)
        state.failures[transport] = state.failures.get(transport, 0) + 1
        self.stats.record_failure(node)
        remaining = [t for t in self.chain(node) if t not in state.failed]
        if state.disabled is not None:
            pass
        elif remaining:
            self.stats.record_escalation(node)
            self.events.emit(
                EventType.SYNC_RETRY_REQUESTED,
                node=node,
                transport=transport,
                data={"preferred_transport": remaining[0]},
            )
        elif not event.data.get("operation_succeeded"):
            self._disable_node_sync(node, EXHAUSTED)
        self.stats.check_alerts(len(self._nodes), len(self.get_disabled_nodes()))

    def _disable_node_sync(self, node: str, reason: str) -> None:
        state = self._state[node]
        failed = [t for t in self.chain(node) if t in state.failed]
        state.disabled = {
            "disabled_at": self.clock.wall(),
            "reason": reason,
            "failed_transports": failed,
        }
        self.events.emit(
            EventType.NODE_DISABLED, node=node, outcome=reason, data={"failed_transports": failed}
        )

    # -- runbook API -------------------------------------------------------------
    def get_disabled_nodes(self) -> dict[str, dict[str, Any]]:
        return {n: dict(s.disabled) for n, s in self._state.items() if s.disabled is not None}

    def get_transport_failures(self) -> dict[str, dict[str, int]]:
        return {n: dict(s.failures) for n, s in self._state.items() if s.failures}

    def get_transport_history(self, node: str) -> list[dict[str, Any]]:
        self._node(node)
        return list(self._state[node].history)

    def is_disabled(self, node: str) -> bool:
        return self._state[self._node(node).name].disabled is not None

    def reenable_node(self, node: str) -> None:
        state = self._state[self._node(node).name]
        if state.disabled is not None:
            state.disabled = None
            state.failed.clear()
            self.events.emit(EventType.NODE_REENABLED, node=node)

    def reset_transport_failures(self, node: str) -> None:
        state = self._state[self._node(node).name]
        state.failed.clear()
        state.failures.clear()

    def set_preferred_transport(self, node: str, transport: str | None) -> None:
        self._state[self._node(node).name].preferred = transport

    def get_preferred_transport(self, node: str) -> str | None:
        return self._state[self._node(node).name].preferred

    async def test_transport(self, node: str, transport: str) -> ProbeResult:
        """Probe one transport of a node; recorded nowhere, so it never disables a node."""
        return await self.transport.probe_transport(self._node(node), transport)

    _test_transport = test_transport

    def get_stats(self) -> dict[str, Any]:
        active: dict[str, int] = {}
        for name, state in self._state.items():
            if state.disabled is None:
                for t in self.chain(name):
                    if t not in state.failed:
                        active[t] = active.get(t, 0) + 1
        return self.stats.snapshot(active, len(self._nodes), len(self.get_disabled_nodes()))


def get_sync_router() -> SyncRouter:
    """The process-wide SyncRouter (see ``SyncRouter.get_instance``)."""
    return SyncRouter.get_instance()
