"""What faults do on their own while a scenario runs, recorded the moment it happens.

Two sources report from their own threads (the cluster runs the proxy and the nodes on a
loop of their own): the fault proxy's events (a toxic firing on a connection, a toxicity
draw skipping one, a ``for_connections`` fault's toxics joining their last connection) and
the nodes' faults firing (an exec channel reset or mangled, a write the quota stopped) and
a node fault's ``for_connections`` running out as the node admits its last connection (in
process, or over each node's admin API for the Docker backend). Each is put in the
scenario's fault trace at once, so it lands between the engine events around it with the
virtual time of that moment. What the scenario must then do about it (forget an expired
fault) waits for ``settle`` on its own loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netfault.simulator.cluster.controller import AppliedFault
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.proxy.trace import FaultAction
from netfault.simulator.proxy.trace import FaultEvent as ProxyEvent
from netfault.simulator.scenario.trace import FaultKind, Inexact

if TYPE_CHECKING:
    from netfault.simulator.scenario.steps.base import StepContext

# A timer cuts the connection: the side it lands on first depends on the traffic.
_TIMED_CUTS = frozenset({FaultAction.RESET, FaultAction.TIMEOUT_CLOSED})
# Armed by the first data on one side, which may never come: the other side's cut races it.
_ARMINGS = frozenset({FaultAction.RESET_ARMED, FaultAction.TIMEOUT_ARMED})
# A wall-clock flap switching its proxies: how many switches fall inside a step, and
# between which engine events, depends on timing.
_SWITCHES = frozenset({FaultAction.PROXY_DISABLED, FaultAction.PROXY_ENABLED})
# Changes to a proxy's toxics: the scenario's own applied/cleared records say them.
_NOT_DECISIONS = frozenset(
    {FaultAction.TOXIC_ADDED, FaultAction.TOXIC_UPDATED, FaultAction.TOXIC_REMOVED}
)


class FaultWatch:
    """Records faults firing and expiring into ``ctx``'s trace; ``close`` stops it."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        # (proxy, toxic) -> the fault that added it; (proxy, None): a fault switching it
        self._toxics: dict[tuple[str, str | None], tuple[AppliedFault, str]] = {}
        self._left: dict[int, set[tuple[str, str]]] = {}  # fault id -> toxics still counting
        self._expired: list[tuple[AppliedFault, str]] = []
        self._scoped: dict[int, tuple[AppliedFault, str]] = {}  # fault id -> for_connections
        self._early: dict[int, dict[str, object]] = {}  # expiries that came before watch()
        self._stops: list[Callable[[], None]] = []
        self._routes: dict[str, tuple[str, str, str]] = {}  # proxy -> (node, route, service)
        cluster = ctx.world.cluster
        # blocking for the Docker backend, whose nodes are followed over HTTP: build in a thread
        self._stops.append(cluster.subscribe_node_faults(self._node_fired))
        if isinstance(cluster, LocalCluster):  # the real Toxiproxy reports nothing
            self._routes = {proxy: where for where, proxy in cluster.proxies.items()}
            self._stops.append(cluster.subscribe_fault_events(self._on_proxy_event))

    def watch(self, applied: AppliedFault, name: str) -> None:
        """Name ``applied`` in its toxics' events; follow it when it ends by itself after
        ``for_connections`` connections."""
        early = None
        with self._lock:
            for toxic in applied.toxics:
                self._toxics[toxic] = (applied, name)
            if applied.kind == "flapping" and not applied.toxics:  # schedule: wall_clock
                for proxy in applied.proxies:
                    self._toxics[(proxy, None)] = (applied, name)
            if applied.for_connections is not None and applied.toxics:
                self._left[applied.id] = set(applied.toxics)
            elif applied.for_connections is not None:  # a node fault: the node counts
                self._scoped[applied.id] = (applied, name)
                early = self._early.pop(applied.id, None)  # expired before we heard of it
        if early is not None:
            self._node_expired(early)

    def _on_proxy_event(self, event: ProxyEvent) -> None:
        if event.action in _NOT_DECISIONS:
            return
        if event.action is FaultAction.TOXIC_EXPIRED:
            self._toxic_expired(event)
            return
        with self._lock:
            found = self._toxics.get((event.proxy, event.toxic))
        if event.toxic is None and found is None:
            return  # switched by a step (down, clear): its own applied/cleared records say it
        node, route, service = self._routes.get(event.proxy, (None, None, None))
        skipped = event.action is FaultAction.TOXIC_SKIPPED
        firing = event.firing()  # the proxy's record, as the scenario's shares it
        if skipped:
            firing["action"] = None  # the record's kind says it
        self._ctx.record(
            FaultKind.SKIPPED if skipped else FaultKind.FIRED,
            found[0].kind if found else str(event.toxic_type),
            node,
            name=found[1] if found else None,
            route=route,
            service=service,
            inexact=_inexact(event),
            **firing,
        )

    def _toxic_expired(self, event: ProxyEvent) -> None:
        key = (event.proxy, event.toxic or "")
        with self._lock:
            found = self._toxics.get(key)  # kept: it names the firings on this connection
            left = None if found is None else self._left.get(found[0].id)
            if found is None or left is None or found[0].cleared:
                return
            applied, name = found
            left.discard(key)
            proxy_done = not any(proxy == event.proxy for proxy, _ in left)
            if not left:
                del self._left[applied.id]
                self._expired.append(found)
        if proxy_done:  # both streams' toxics leave on the same accept: one record per proxy
            _, route, service = self._routes.get(event.proxy, (None, None, None))
            self._ctx.record(
                FaultKind.EXPIRED,
                applied.kind,
                applied.node,
                name=name,
                route=route,
                service=service,
                for_connections=applied.for_connections,
                proxy=event.proxy,
                connection=event.connection,
            )

    def _node_fired(self, node: str, record: dict[str, object]) -> None:
        if record.get("expired") is True:
            self._node_expired(record)
            return
        fault = str(record["fault"])
        named = list(self._ctx.named.items())  # a snapshot: the scenario's loop edits it
        name = next(
            (n for n, faults in named for f in faults if (f.node, f.kind) == (node, fault)),
            None,
        )
        self._ctx.record(FaultKind.FIRED, fault, node, name=name, **_channel(record))

    def _node_expired(self, record: dict[str, object]) -> None:
        """A node fault's ``for_connections`` ran out, as the node admitted the last one."""
        with self._lock:
            ident = record.get("id")
            found = self._scoped.pop(ident, None) if isinstance(ident, int) else None
            if found is None and isinstance(ident, int):
                self._early[ident] = record  # the step applying it has not called watch yet
            if found is None or found[0].cleared:
                return
            self._expired.append(found)
        applied, name = found
        self._ctx.record(
            FaultKind.EXPIRED,
            applied.kind,
            applied.node,
            name=name,
            service=_text(record.get("service")),
            for_connections=applied.for_connections,
            connection=record.get("connection"),
        )

    async def settle(self) -> None:
        """Forget the faults that expired: cleared (a no-op on the proxy), out of ``named``."""
        with self._lock:
            expired, self._expired = self._expired, []
        for applied, name in expired:
            await self._ctx.in_thread(self._ctx.world.cluster.faults.clear, applied)
            self._ctx.forget(name, applied)

    def close(self) -> None:
        for stop in self._stops:
            stop()
        self._stops = []


def _channel(record: dict[str, object]) -> dict[str, Any]:
    """A node's channel-fault report as trace fields. Unless the node says otherwise, the
    offset is not exact: the node counts the bytes it saw, and a reset lands after the
    chunk that crossed its limit, which depends on how the kernel and SSH cut the stream."""
    offset, mode, count = record.get("offset"), record.get("mode"), record.get("count")
    action = record.get("action") or ("bytes_mangled" if mode is not None else "reset")
    return {
        "service": _text(record.get("service")) or "ssh",
        "action": str(action),
        "count": count if isinstance(count, int) else None,
        "channel": _text(record.get("channel")),
        "direction": _text(record.get("direction")),
        "mode": _text(mode),
        "offset": offset if isinstance(offset, int) else None,
        "inexact": () if offset is None or record.get("offset_exact") is True else ("offset",),
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _inexact(event: ProxyEvent) -> tuple[Inexact, ...]:
    """What the seed does not fix about a proxy's fault event (see ``trace``)."""
    if event.action in _SWITCHES:
        return ("occurrence",)
    if event.action in _ARMINGS:
        return ("direction", "occurrence")
    offset: tuple[Inexact, ...] = () if event.offset_exact else ("offset",)
    return (*offset, "direction") if event.action in _TIMED_CUTS else offset
