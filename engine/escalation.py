"""Per-node escalation: which transport to try next, and when a node is disabled.

Pure and synchronous (time comes from an injected clock); the router acts on its decisions.
A node's *chain* is the runbook's escalation order restricted to the transports the node
can use. One operation walks an *order*: a forced transport alone, else the primary (the
preferred transport, or the chain's first), the backup transport, then the rest of the
chain, which the caller may rearrange per operation (route memory moves transports on a
demoted route last). After each failed attempt the operation decides:

- the same transport again, for an integrity failure while checksum resends are left, or
  until the transport has failed ``failover_threshold`` times in this operation;
- otherwise the transport *stalls* (it counts as failed for the node) and the next
  transport of the order is tried (an *escalation*);
- with nothing left, the node is disabled (``all_transports_exhausted``) if every
  transport of its chain has failed since its last success, re-enable or failure reset.

A success clears the node's failed set, so a sync that ends in success never disables.
A transport unavailable for the node is passed over without counting anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

from netfault.engine.clock import Clock

EXHAUSTED = "all_transports_exhausted"
UNAVAILABLE = "unavailable"
INTEGRITY = "integrity"


class DisabledInfo(TypedDict):
    """The runbook's ``get_disabled_nodes()`` entry."""

    disabled_at: float
    reason: str
    failed_transports: list[str]


class HistoryDict(TypedDict):
    """The runbook's ``get_transport_history()`` entry."""

    time: float
    transport: str
    result: Literal["success", "failure"]
    error: str | None


@dataclass(frozen=True, slots=True)
class DisabledNode:
    """Why and when a node was disabled for sync (wall time)."""

    disabled_at: float
    reason: str
    failed_transports: tuple[str, ...]

    def as_dict(self) -> DisabledInfo:
        return {
            "disabled_at": self.disabled_at,
            "reason": self.reason,
            "failed_transports": list(self.failed_transports),
        }


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One transport outcome on a node (wall time)."""

    time: float
    transport: str
    success: bool
    error: str | None = None

    def as_dict(self) -> HistoryDict:
        result: Literal["success", "failure"] = "success" if self.success else "failure"
        return {
            "time": self.time,
            "transport": self.transport,
            "result": result,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a failure: try ``next_transport`` (None = stop) and what happened."""

    node: str
    transport: str
    next_transport: str | None
    stalled: bool = False
    disabled: DisabledNode | None = None

    @property
    def escalated(self) -> bool:
        """A stall that moves on to another transport (the runbook's escalation count)."""
        return self.stalled and self.next_transport is not None and self.disabled is None


@dataclass(frozen=True, slots=True)
class Policy:
    """The node-independent settings of escalation."""

    failover_threshold: int = 1
    backup_transport: str | None = None
    history_size: int = 200


class NodeEscalation:
    """One node's escalation state: failed transports, counts, history, disabled record."""

    __slots__ = (
        "_failed",
        "_failures",
        "_history",
        "chain",
        "clock",
        "disabled",
        "name",
        "policy",
        "preferred",
    )

    def __init__(self, name: str, chain: Sequence[str], policy: Policy, clock: Clock) -> None:
        self.name = name
        self.chain = tuple(chain)
        self.policy = policy
        self.clock = clock
        self.preferred: str | None = None
        self.disabled: DisabledNode | None = None
        self._failed: set[str] = set()
        self._failures: dict[str, int] = {}
        self._history: deque[HistoryEntry] = deque(maxlen=max(1, policy.history_size))

    # -- views ---------------------------------------------------------------------------
    @property
    def failures(self) -> Mapping[str, int]:
        return self._failures

    @property
    def history(self) -> Sequence[HistoryEntry]:
        return tuple(self._history)

    def active(self) -> tuple[str, ...]:
        """Chain transports not failed since the last success (none while disabled)."""
        if self.disabled is not None:
            return ()
        return tuple(t for t in self.chain if t not in self._failed)

    def order(self, forced: str | None = None) -> list[str]:
        """Transports of the next operation, in the order they are tried."""
        if forced:
            return [forced]
        primary = self.preferred or (self.chain[0] if self.chain else None)
        front = [t for t in (primary, self.policy.backup_transport) if t]
        return list(dict.fromkeys(front + list(self.chain)))

    # -- events --------------------------------------------------------------------------
    def begin(
        self,
        forced: str | None = None,
        integrity_resends: int = 0,
        arrange: Callable[[list[str]], list[str]] | None = None,
    ) -> Operation:
        """Start one operation; the caller tries ``operation.order[0]`` first.

        ``arrange`` reorders the order for this operation only (the router moves transports
        on a demoted route last); it must return the same transports.
        """
        order = self.order(forced)
        if arrange is not None:
            arranged = arrange(order)
            if sorted(arranged) != sorted(order):
                raise ValueError(f"arrange changed the transports: {order} -> {arranged}")
            order = arranged
        return Operation(self, order, integrity_resends)

    def succeeded(self, transport: str) -> None:
        self._history.append(HistoryEntry(self.clock.wall(), transport, True))
        self._failed.clear()

    def stalled(self, transport: str, error: str | None = None) -> Decision:
        """A stall reported from outside an operation: disable if the chain is exhausted."""
        self._record(transport, error)
        self._failed.add(transport)
        remaining = self._remaining()
        return self._stall(transport, remaining[0] if remaining else None)

    def reenable(self) -> bool:
        """Lift a disable (and forget the failed set); False if the node was enabled."""
        if self.disabled is None:
            return False
        self.disabled = None
        self._failed.clear()
        return True

    def reset_failures(self) -> None:
        self._failed.clear()
        self._failures.clear()

    # -- internals -----------------------------------------------------------------------
    def _record(self, transport: str, error: str | None) -> None:
        self._history.append(HistoryEntry(self.clock.wall(), transport, False, error))

    def _remaining(self) -> list[str]:
        return [t for t in self.chain if t not in self._failed]

    def _stall(self, transport: str, next_transport: str | None) -> Decision:
        """Count ``transport`` as failed; disable when nothing is left to try."""
        self._failed.add(transport)
        self._failures[transport] = self._failures.get(transport, 0) + 1
        if self.disabled is not None:
            return Decision(self.name, transport, None, stalled=True)
        if next_transport is None and not self._remaining():
            failed = tuple(t for t in self.chain if t in self._failed)
            self.disabled = DisabledNode(self.clock.wall(), EXHAUSTED, failed)
            return Decision(self.name, transport, None, stalled=True, disabled=self.disabled)
        return Decision(self.name, transport, next_transport, stalled=True)


class Operation:
    """One operation's walk over its order; decides after each failed attempt.

    Each failure is charged to the transport it names, not to a cursor: when failover races
    a later transport's connection against the current one (``failover_race``), that
    transport may fail, or win and then fail, before the current one has finished. The
    next transport is always the first of the order that has not stalled (or been passed
    over as unavailable) in this operation; a transport whose attempt was cancelled after
    losing a race is never reported here, so it stays in line.
    ``integrity_resends`` is per transport: a checksum mismatch resends on the same
    transport that many times without counting toward the failover threshold.
    """

    __slots__ = ("_budget", "_done", "_node", "_resends", "_tries", "order")

    def __init__(self, node: NodeEscalation, order: list[str], integrity_resends: int) -> None:
        self._node = node
        self.order = tuple(order)
        self._done: set[str] = set()
        self._tries: dict[str, int] = {}
        self._budget = max(0, integrity_resends)
        self._resends: dict[str, int] = {}

    def failed(self, transport: str, error_kind: str | None, error: str | None) -> Decision:
        """The attempt on ``transport`` failed with ``error_kind``: what next."""
        node = self._node
        if error_kind == UNAVAILABLE:
            self._done.add(transport)
            return Decision(node.name, transport, self.next())
        node._record(transport, error)
        resends = self._resends.get(transport, self._budget)
        if error_kind == INTEGRITY and resends > 0:
            self._resends[transport] = resends - 1
            return Decision(node.name, transport, transport)
        self._tries[transport] = tries = self._tries.get(transport, 0) + 1
        if tries < node.policy.failover_threshold:
            return Decision(node.name, transport, transport)
        self._done.add(transport)
        return node._stall(transport, self.next())

    def pending(self) -> list[str]:
        """Transports of the order still in line: neither stalled nor passed over."""
        return [t for t in self.order if t not in self._done]

    def next(self) -> str | None:
        pending = self.pending()
        return pending[0] if pending else None
