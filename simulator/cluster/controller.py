"""FaultController: applies named faults to a cluster's proxies and nodes, and clears them."""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound

from netfault.simulator.cluster.faults import (
    FAULT_KINDS,
    ROUTES,
    SERVICES,
    FaultError,
    check_connections,
    check_params,
    flapping_value,
    node_level,
    node_switch,
    toxics_for,
)

# toxiproxy-python keeps the API address in class attributes: point it, then call, under a lock
_client_lock = threading.RLock()


class NodeSwitchboard(Protocol):
    """Runs ``fn(node.faults)`` where the node's faults live; returns its result."""

    def __call__(self, node: str, fn: Callable[[Any], Any]) -> Any: ...


@dataclass
class AppliedFault:
    """A fault that is on; ``clear()`` undoes exactly what it did."""

    id: int
    kind: str
    node: str
    route: str | None
    service: str | None
    params: dict[str, Any]
    proxies: list[str] = field(default_factory=list)
    # lives for the next N connections on each of its proxies (None: until cleared)
    for_connections: int | None = None
    # (proxy, toxic) it added: the proxy's TOXIC_EXPIRED events name them
    toxics: list[tuple[str, str]] = field(default_factory=list)
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)
    cleared: bool = False

    def describe(self) -> str:
        where = "/".join(p for p in (self.node, self.route, self.service) if p)
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        scope = "" if self.for_connections is None else f" for {self.for_connections} connections"
        return f"{self.kind}({args}) on {where}{scope}"


class FaultController:
    """Named faults on top of the Toxiproxy API (proxies) and node switches."""

    def __init__(
        self,
        api_host: str,
        api_port: int,
        proxy_names: Callable[[str, str | None, str | None], list[str]],
        switchboard: NodeSwitchboard,
        nodes: Callable[[], list[str]],
        seed: int = 0,
        counts_connections: bool = True,
    ) -> None:
        """``counts_connections``: the proxy honours a toxic's ``connections`` (netfault's
        proxy does; the real Toxiproxy ignores it, so ``for_connections`` is refused)."""
        self.api_host, self.api_port = api_host, api_port
        self.counts_connections = counts_connections
        self._proxy_names = proxy_names
        self._switchboard = switchboard
        self._nodes = nodes
        self.seed = seed
        self.active: list[AppliedFault] = []
        self._lock = threading.Lock()
        # per controller, so toxic names (and the seeded draws keyed on them) repeat per run
        self._ids = itertools.count(1)

    @contextlib.contextmanager
    def client(self) -> Iterator[Toxiproxy]:
        """The toxiproxy-python client pointed at this cluster's proxy API."""
        with _client_lock:
            saved = (APIConsumer.host, APIConsumer.port)
            APIConsumer.host, APIConsumer.port = self.api_host, self.api_port
            try:
                yield Toxiproxy()
            finally:
                APIConsumer.host, APIConsumer.port = saved

    def apply(
        self,
        kind: str,
        node: str,
        *,
        route: str | None = None,
        service: str | None = None,
        for_connections: int | None = None,
        **params: Any,
    ) -> AppliedFault:
        """Switch a named fault on; ``route``/``service`` narrow it (default: all);
        ``for_connections`` ends it for each proxy after that proxy's next N connections
        (a node fault: after the node's next N SSH connections or HTTP requests)."""
        values = check_params(kind, params)
        self._check_target(node, route, service)
        if (route or service) and node_level(kind, values):
            raise FaultError(
                f"fault {kind} acts inside the node and cannot be narrowed to "
                "a route or service; drop route:/service:"
            )
        if for_connections is not None:
            check_connections(kind, values)
            if not self.counts_connections:
                counter = (
                    "the nodes in process (the node API carries no scope)"
                    if node_level(kind, values)
                    else "netfault's own fault proxy (Toxiproxy does not count connections)"
                )
                raise FaultError(
                    f"for_connections needs the local backend, where {counter}: use for_operations"
                )
        by_connections = kind == "flapping" and values["schedule"] == "connections"
        if by_connections and not self.counts_connections:
            raise FaultError(
                "flapping counted in connections needs netfault's own fault proxy (the "
                "local backend); Toxiproxy has no flap toxic: use schedule: wall_clock"
            )
        fault = AppliedFault(next(self._ids), kind, node, route, service, values)
        fault.for_connections = for_connections
        try:
            self._apply(fault)
        except BaseException:
            self._undo(fault)
            raise
        with self._lock:
            self.active.append(fault)
        return fault

    def _check_target(self, node: str, route: str | None, service: str | None) -> None:
        if node not in self._nodes():
            raise FaultError(f"unknown node {node!r} (cluster has: {', '.join(self._nodes())})")
        if route is not None and route not in ROUTES:
            raise FaultError(f"unknown route {route!r} (known: {', '.join(ROUTES)})")
        if service is not None and service not in SERVICES:
            raise FaultError(f"unknown service {service!r} (known: {', '.join(SERVICES)})")

    def _apply(self, fault: AppliedFault) -> None:
        scope = {"fault": fault.kind, "id": fault.id}
        switch = node_switch(fault.kind, fault.params, self.seed, fault.for_connections, scope)
        if switch is not None:
            undo = self._switchboard(fault.node, switch)
            fault._undo.append(lambda: self._switchboard(fault.node, lambda _f: undo()))
            return
        fault.proxies = self._proxy_names(fault.node, fault.route, fault.service)
        if not fault.proxies:
            raise FaultError(f"{fault.describe()}: no such route on this node")
        plans = toxics_for(fault.kind, fault.params)
        if plans is not None:
            self._add_toxics(fault, plans)
        elif fault.kind == "down":
            self._set_enabled(fault, False)
        elif fault.kind == "flapping":  # schedule: wall_clock (toxics_for has the other)
            self._start_flapping(fault)
        else:  # pragma: no cover - every kind is handled above
            raise FaultError(f"fault {fault.kind} has no implementation")

    def _add_toxics(self, fault: AppliedFault, plans: list[Any]) -> None:
        with self.client() as tp:
            for proxy_name in fault.proxies:
                proxy = tp.get_proxy(proxy_name)
                for plan in plans:
                    toxic = f"nf{fault.id}_{fault.kind}_{plan.stream}"
                    if fault.for_connections is None:
                        proxy.add_toxic(
                            type=plan.type,
                            stream=plan.stream,
                            name=toxic,
                            attributes=plan.attributes,
                        )
                    else:  # netfault's extension field, which toxiproxy-python does not send
                        body = {
                            "name": toxic,
                            "type": plan.type,
                            "stream": plan.stream,
                            "attributes": plan.attributes,
                            "connections": fault.for_connections,
                        }
                        APIConsumer.post(f"/proxies/{proxy_name}/toxics", json=body)
                    fault.toxics.append((proxy_name, toxic))
                    fault._undo.append(self._toxic_remover(fault, proxy_name, toxic))

    def _toxic_remover(
        self, fault: AppliedFault, proxy_name: str, toxic: str
    ) -> Callable[[], None]:
        def remove() -> None:
            with self.client():
                try:
                    APIConsumer.delete(f"/proxies/{proxy_name}/toxics/{toxic}")
                except NotFound:
                    if fault.for_connections is None:
                        raise  # only a toxic counting connections leaves by itself

        return remove

    def _post_enabled(self, names: list[str], enabled: bool) -> None:
        with self.client():
            for name in names:
                APIConsumer.post(f"/proxies/{name}", json={"enabled": enabled})

    def _set_enabled(self, fault: AppliedFault, enabled: bool) -> None:
        self._post_enabled(fault.proxies, enabled)
        self._reenable_on_clear(fault)

    def _reenable_on_clear(self, fault: AppliedFault) -> None:
        names = list(fault.proxies)
        fault._undo.append(lambda: self._post_enabled(names, True))

    def _start_flapping(self, fault: AppliedFault) -> None:
        stop = threading.Event()
        rng = random.Random(f"{self.seed}:{fault.node}:{fault.route}:{fault.service}")
        period = flapping_value(fault.params, "period_s")

        def flap() -> None:
            enabled = True
            while not stop.wait(rng.uniform(0.5 * period, 1.5 * period)):
                enabled = not enabled
                self._post_enabled(fault.proxies, enabled)

        thread = threading.Thread(target=flap, name=f"flapping-{fault.id}", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(10)

        self._reenable_on_clear(fault)
        fault._undo.append(halt)

    def clear(self, fault: AppliedFault) -> None:
        with self._lock:
            if fault in self.active:
                self.active.remove(fault)
        self._undo(fault)

    def _undo(self, fault: AppliedFault) -> None:
        errors = []
        while fault._undo:
            step = fault._undo.pop()
            try:
                step()
            except Exception as exc:  # keep undoing the rest; report at the end
                errors.append(exc)
        fault.cleared = True
        if errors:
            raise FaultError(f"clearing {fault.describe()} failed: {errors[0]}") from errors[0]

    def clear_all(self) -> None:
        """Undo every active fault, then reset the proxy (all toxics gone, all enabled)."""
        with self._lock:
            faults, self.active = list(reversed(self.active)), []
        for fault in faults:
            with contextlib.suppress(FaultError):
                self._undo(fault)
        with self.client() as tp:
            tp.reset()
        for node in self._nodes():
            self._switchboard(node, lambda f: f.clear())

    def describe_kinds(self) -> dict[str, str]:
        return {name: kind.help for name, kind in FAULT_KINDS.items()}
