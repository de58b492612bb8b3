"""What incident replay reads from an event log: operations, breaker history, fault choice.

``faults_for`` picks, per failed transport, the most faithful named fault that does not
also break the transport that won; a node-level fault (auth_refused, disk_full...) hits
every transport of its kind, so it gives way to a narrower one (a route taken down) when
the winner shares it. A choice that is not exact is reported as a note in the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netfault.engine import Event

# transport -> (route, service) its connections take through the fault proxy
TARGET = {
    "tailscale": ("tailscale", "ssh"),
    "ssh": ("hostname", "ssh"),
    "rsync": ("hostname", "ssh"),
    "base64": ("hostname", "ssh"),
    "http": ("hostname", "http"),
    "p2p": ("hostname", "p2p"),
    "http:tailscale": ("tailscale", "http"),
    "http:hostname": ("hostname", "http"),
}
BINARY_SSH = {"tailscale", "ssh", "rsync"}  # carry binary data over an SSH channel
SSH_FAMILY = BINARY_SSH | {"base64"}
HTTP_AGENT = {"http", "p2p", "http:tailscale", "http:hostname"}
NODE_WIDE = {
    "auth_refused": SSH_FAMILY,
    "host_key_changed": SSH_FAMILY,
    "disk_full": set(TARGET) - {"http:tailscale", "http:hostname"},
    "http_5xx": HTTP_AGENT,
}

DEFAULT_THRESHOLD, DEFAULT_RECOVERY = 3, 300.0  # the scenario runner's breaker defaults

Fault = dict[str, Any]


@dataclass(frozen=True)
class TryRecord:
    transport: str
    ok: bool
    error_kind: str | None = None


@dataclass
class Operation:
    node: str
    direction: str = "push"
    start: float = 0.0
    attempts: list[TryRecord] = field(default_factory=list)
    success: bool = False
    transport_used: str | None = None
    refused: bool = False
    size: int | None = None
    http: tuple[str, str] | None = None  # (method, endpoint)
    router: bool = False


@dataclass
class Item:
    """One replay step group: an operation, a re-enable or a manual breaker reset."""

    start: float
    operation: Operation | None = None
    reenable: str | None = None
    reset_breaker: str | None = None


@dataclass
class Incident:
    nodes: list[str] = field(default_factory=list)
    tailscale: set[str] = field(default_factory=set)
    items: list[Item] = field(default_factory=list)
    breaker: dict[str, list[str]] = field(default_factory=dict)
    disabled: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    router_chains: dict[str, list[str]] = field(default_factory=dict)
    failure_threshold: int | None = None
    recovery_timeout: float | None = None
    uses_timeouts: bool = False

    @property
    def operations(self) -> list[Operation]:
        return [i.operation for i in self.items if i.operation is not None]


@dataclass
class FaultPlan:
    faults: list[Fault]
    notes: list[str]


def _affects(fault: Fault, transport: str) -> bool:
    kind = fault["kind"]
    if fault.get("level") == "ssh":
        return transport in BINARY_SSH
    if kind in NODE_WIDE:
        return transport in NODE_WIDE[kind]
    route, service = TARGET.get(transport, (None, None))
    return fault.get("route") in (None, route) and fault.get("service") in (None, service)


def _candidates(transport: str, kind: str | None, direction: str) -> list[Fault]:
    """Named faults that make ``transport`` fail with ``kind``, most faithful first."""
    route, service = TARGET.get(transport, ("hostname", "ssh"))
    narrow: Fault = {"route": route, "service": service}
    down: Fault = {"kind": "down", **narrow}
    table: dict[str | None, list[Fault]] = {
        "connect": [down],
        "timeout": [{"kind": "timeout", **narrow}, down],
        "reset": [{"kind": "reset", "level": "tcp", **narrow}],
        "auth": [{"kind": "auth_refused"}, down],
        # a full disk on the node fails writes to it, never a pull from it
        "storage": [{"kind": "disk_full", "quota_bytes": 0}, down]
        if direction == "push"
        else [down],
        "http_5xx": [{"kind": "http_5xx"}, down],
        "integrity": [{"kind": "corrupt_binary", "level": "ssh"}, down]
        if transport in BINARY_SSH
        else [down],
    }
    found = list(table.get(kind, [down]))
    if transport in BINARY_SSH:
        # resets only binary SSH traffic: the one way to fail ssh while base64 still passes
        found.append({"kind": "reset", "level": "ssh", "after_bytes": 0})
    return found


def faults_for(op: Operation) -> FaultPlan:
    """Faults that fail exactly the operation's failed transports and spare the winner."""
    winner = op.transport_used if op.success else None
    faults: list[Fault] = []
    notes: list[str] = []
    for attempt in op.attempts:
        if attempt.ok or any(_affects(f, attempt.transport) for f in faults):
            continue
        options = _candidates(attempt.transport, attempt.error_kind, op.direction)
        fits = [f for f in options if winner is None or not _affects(f, winner)]
        chosen = fits[0] if fits else options[0]
        if not fits:
            notes.append(f"no named fault fails {attempt.transport} but not {winner}")
        elif chosen is not options[0]:
            how = " ".join(f"{k}={v}" for k, v in chosen.items())
            notes.append(
                f"{attempt.transport} failed with {attempt.error_kind}; replayed as "
                f"[{how}] so that {winner} still succeeds"
            )
        faults.append(chosen)
    return FaultPlan(faults, notes)


class _Parser:
    def __init__(self) -> None:
        self.incident = Incident()
        self.base: float | None = None
        self.open: dict[str, Operation] = {}
        self.last: dict[str, Operation] = {}
        self.streak: dict[str, int] = {}
        self.opened_at: dict[str, float] = {}
        self.closed_streak = 0  # most failed operations in a row that left a breaker closed
        self.refused_after = 0.0  # longest wait after opening that was still refused

    def node(self, name: str) -> None:
        if name not in self.incident.nodes:
            self.incident.nodes.append(name)
            self.incident.breaker[name] = ["closed"]

    def feed(self, e: Event) -> None:
        if self.base is None:
            self.base = e.monotonic
        if e.node is None:
            return
        self.node(e.node)
        t = round(e.monotonic - self.base, 6)
        handler = getattr(self, f"on_{str(e.type).lower()}", None)
        if handler is not None:
            handler(e, e.node, t)

    def _op(self, node: str, t: float, operation: str | None) -> Operation:
        op = self.open.get(node)
        if op is None:
            op = Operation(node, start=t)
            if operation in ("push", "pull"):
                op.direction = operation
            self.open[node] = op
            self.incident.items.append(Item(t, operation=op))
        return op

    def on_attempt_started(self, e: Event, node: str, t: float) -> None:
        self._op(node, t, e.operation)

    def on_attempt_succeeded(self, e: Event, node: str, t: float) -> None:
        self._attempt(e, node, t, True)

    def on_attempt_failed(self, e: Event, node: str, t: float) -> None:
        self._attempt(e, node, t, False)

    def _attempt(self, e: Event, node: str, t: float, ok: bool) -> None:
        op = self._op(node, t, e.operation)
        transport = e.transport or "ssh"
        op.attempts.append(TryRecord(transport, ok, e.error_kind))
        if transport.startswith("tailscale") or transport == "http:tailscale":
            self.incident.tailscale.add(node)
        if e.error_kind == "timeout":
            self.incident.uses_timeouts = True
        if e.bytes:  # a failed attempt's bytes are a prefix: the file was at least that big
            op.size = max(op.size or 0, e.bytes)

    def on_operation_succeeded(self, e: Event, node: str, t: float) -> None:
        self._close(e, node, t, True)

    def on_operation_failed(self, e: Event, node: str, t: float) -> None:
        self._close(e, node, t, False)

    def _close(self, e: Event, node: str, t: float, ok: bool) -> None:
        op = self.open.pop(node, None)
        if op is None:  # refused by the breaker: no attempt was made
            op = Operation(node, start=t, refused=e.outcome == "refused")
            self.incident.items.append(Item(t, operation=op))
        op.success, op.transport_used = ok, e.transport if ok else None
        operation = e.operation or ""
        if operation.startswith("http "):
            method, _, endpoint = operation[5:].partition(" ")
            op.http = (method, endpoint or "/health")
        elif operation in ("push", "pull"):
            op.direction = operation
        if ok and e.bytes:
            op.size = max(op.size or 0, e.bytes)
        if op.refused and node in self.opened_at:
            self.refused_after = max(self.refused_after, t - self.opened_at[node])
        elif not op.refused:
            self.streak[node] = 0 if ok else self.streak.get(node, 0) + 1
            if self.incident.breaker[node][-1] == "closed":
                self.closed_streak = max(self.closed_streak, self.streak[node])
        self.last[node] = op

    def on_breaker_transition(self, e: Event, node: str, t: float) -> None:
        to, reason = str(e.data.get("to")), e.data.get("reason")
        self.incident.breaker[node].append(to)
        if reason == "manual_reset":
            self.incident.items.append(Item(t, reset_breaker=node))
        if to == "closed":
            self.streak[node] = 0
        if reason == "failure_threshold_reached" and self.incident.failure_threshold is None:
            # the operation that tipped it is still open: its failure is not counted yet
            self.incident.failure_threshold = self.streak.get(node, 0) + 1
        if to == "open":
            self.opened_at[node] = t
        elif to == "half_open" and node in self.opened_at:
            waited = t - self.opened_at.pop(node)
            known = self.incident.recovery_timeout
            self.incident.recovery_timeout = waited if known is None else min(known, waited)

    def on_sync_stalled(self, e: Event, node: str, t: float) -> None:
        # the router reports a stall while the operation it escalates is still open; logs
        # written before that carry source=router on stalls emitted after the operation
        op = self.open.get(node)
        if op is None and e.data.get("source") == "router":
            op = self.last.get(node)
        if op is not None:
            op.router = True

    on_sync_retry_requested = on_sync_stalled

    def on_node_disabled(self, e: Event, node: str, t: float) -> None:
        op = self.open.get(node) or self.last.get(node)
        if op is not None:
            op.router = True
        self.incident.disabled[node] = {
            "reason": e.outcome,
            "failed_transports": list(e.data.get("failed_transports", [])),
        }

    def on_node_reenabled(self, e: Event, node: str, t: float) -> None:
        self.incident.disabled[node] = None
        self.incident.items.append(Item(t, reenable=node))

    def finish(self) -> Incident:
        for op in self.incident.operations:
            if op.router:
                chain = self.incident.router_chains.setdefault(op.node, [])
                for a in op.attempts:
                    if a.transport not in chain:
                        chain.append(a.transport)
        # without a transition to go by, the defaults must at least not contradict the log
        if self.incident.failure_threshold is None and self.closed_streak >= DEFAULT_THRESHOLD:
            self.incident.failure_threshold = self.closed_streak + 1
        if self.incident.recovery_timeout is None and self.refused_after >= DEFAULT_RECOVERY:
            self.incident.recovery_timeout = float(int(self.refused_after) + 1)
        return self.incident


def parse_incident(events: list[Event]) -> Incident:
    """Group a log's events into operations and collect breaker and router history."""
    parser = _Parser()
    for event in events:
        parser.feed(event)
    return parser.finish()
