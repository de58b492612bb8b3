"""What faults do on their own while a scenario runs, recorded the moment it happens.

Two sources report from their own threads (the cluster runs the proxy and the nodes on a
loop of their own): the fault proxy's ``TOXIC_EXPIRED`` events (a ``for_connections`` fault
whose toxics joined their last connection on a proxy) and the nodes' channel faults firing
(an exec channel reset or mangled). Each is put in the scenario's fault trace at once, so it
lands between the engine events around it with the virtual time of that moment. What the
scenario must then do about it (forget an expired fault) waits for ``settle`` on its own loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from netfault.simulator.cluster.controller import AppliedFault
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.proxy.trace import FaultAction
from netfault.simulator.proxy.trace import FaultEvent as ProxyEvent

if TYPE_CHECKING:
    from netfault.simulator.scenario.steps.base import StepContext


class FaultWatch:
    """Records expiries and node faults firing into ``ctx``'s trace; ``close`` stops it."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._toxics: dict[tuple[str, str], tuple[AppliedFault, str]] = {}
        self._left: dict[int, set[tuple[str, str]]] = {}  # fault id -> toxics still counting
        self._expired: list[tuple[AppliedFault, str]] = []
        self._stops: list[Callable[[], None]] = []
        cluster = ctx.world.cluster
        if isinstance(cluster, LocalCluster):  # the Docker backend's parts report nothing
            self._stops.append(cluster.subscribe_fault_events(self._on_proxy_event))
            for name, fake in cluster.fakes.items():
                self._stops.append(fake.faults.on_fired(self._node_fired(name)))

    def watch(self, applied: AppliedFault, name: str) -> None:
        """Follow a fault that ends by itself after ``for_connections`` connections."""
        if applied.for_connections is None:
            return
        with self._lock:
            self._left[applied.id] = set(applied.toxics)
            for toxic in applied.toxics:
                self._toxics[toxic] = (applied, name)

    def _on_proxy_event(self, event: ProxyEvent) -> None:
        if event.action is not FaultAction.TOXIC_EXPIRED:
            return
        key = (event.proxy, event.toxic)
        with self._lock:
            found = self._toxics.pop(key, None)
            if found is None or found[0].cleared:
                return
            applied, name = found
            left = self._left[applied.id]
            left.discard(key)
            proxy_done = not any(proxy == event.proxy for proxy, _ in left)
            if not left:
                del self._left[applied.id]
                self._expired.append(found)
        if proxy_done:  # both streams' toxics leave on the same accept: one record per proxy
            data = {
                "as": name,
                "for_connections": applied.for_connections,
                "proxy": event.proxy,
                "connection": event.connection,
            }
            self._ctx.record("expired", applied.kind, applied.node, data)

    def _node_fired(self, node: str) -> Callable[[dict[str, object]], None]:
        def fired(record: dict[str, object]) -> None:
            data = dict(record)
            kind = str(data.pop("fault"))
            inexact = ("offset",) if "offset" in data else ()
            self._ctx.record("fired", kind, node, data, inexact)

        return fired

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
