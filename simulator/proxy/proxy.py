"""One proxy: a listener, its open connections and its toxics per stream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from netfault.simulator.proxy import errors
from netfault.simulator.proxy.address import bind, split_host_port
from netfault.simulator.proxy.connection import Connection, Endpoint
from netfault.simulator.proxy.link import ByteCounter
from netfault.simulator.proxy.spec import ToxicSpec
from netfault.simulator.proxy.trace import (
    FaultAction,
    FaultEvent,
    FaultTrace,
    proxy_event,
    toxic_event,
)

STREAMS = ("upstream", "downstream")


class Proxy:
    """A named listener forwarding to `upstream`, with toxics on either stream."""

    def __init__(
        self, name: str, listen: str, upstream: str, *, seed: int, trace: FaultTrace | None = None
    ) -> None:
        self.name = name
        self.trace = trace if trace is not None else FaultTrace()
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.seed = seed
        self.counters = {stream: ByteCounter() for stream in STREAMS}
        self._chains: dict[str, list[ToxicSpec]] = {stream: [] for stream in STREAMS}
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._accepted = 0

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (resolving `listen` to ip:port); ApiError 500 with the OS error on failure."""
        if self.enabled:
            return
        self._server, self.listen = await bind(self.listen, self._accept)
        self.enabled = True

    def stop(self, *, abort: bool = False) -> None:
        """Stop listening and close every connection (clients see EOF)."""
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._connections):
            conn.close(abort=abort)

    @property
    def port(self) -> int:
        return split_host_port(self.listen)[1]

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def _accept(self) -> Endpoint:
        conn = Connection(
            proxy_name=self.name,
            number=self._accepted,
            seed=self.seed,
            counters=self.counters,
            toxics=self.toxics(),
            on_closed=self._connections.discard,
            trace=self.trace,
        )
        self._accepted += 1
        self._connections.add(conn)
        self._count_down(conn.number)
        try:
            host, port = split_host_port(self.upstream)
        except ValueError:
            conn.close()
        else:
            conn.start(host, port)
        return conn.client

    # --- toxics ---------------------------------------------------------------------------
    def toxics(self) -> list[ToxicSpec]:
        """Upstream toxics first, then downstream, each in insertion order."""
        return [*self._chains["upstream"], *self._chains["downstream"]]

    def get_toxic(self, name: str) -> ToxicSpec:
        for spec in self.toxics():
            if spec.name == name:
                return spec
        raise errors.toxic_not_found()

    def has_toxic(self, name: str) -> bool:
        return any(spec.name == name for spec in self.toxics())

    def add_toxic(self, spec: ToxicSpec) -> ToxicSpec:
        if self.has_toxic(spec.name):
            raise errors.toxic_already_exists()
        self._chains[spec.direction].append(spec)
        self._changed(FaultAction.TOXIC_ADDED, spec)
        for conn in list(self._connections):
            conn.link(spec.direction).add_toxic(spec, late=True)
        return spec

    def update_toxic(
        self, name: str, attributes: dict[str, Any] | None = None, toxicity: float | None = None
    ) -> ToxicSpec:
        """Merge `attributes`, keep toxicity unless given; type, stream and name stay."""
        old = self.get_toxic(name)
        new = ToxicSpec(
            name=old.name,
            type=old.type,
            stream=old.stream,
            toxicity=old.toxicity if toxicity is None else toxicity,
            toxic=old.toxic.merged(attributes or {}),
            version=old.version + 1,
            connections=old.connections,
        )
        chain = self._chains[old.direction]
        chain[chain.index(old)] = new
        self._changed(FaultAction.TOXIC_UPDATED, new)
        for conn in list(self._connections):
            conn.link(new.direction).update_toxic(new)
        return new

    def remove_toxic(self, name: str) -> None:
        spec = self.get_toxic(name)
        self._chains[spec.direction].remove(spec)
        self._changed(FaultAction.TOXIC_REMOVED, spec)
        for conn in list(self._connections):
            conn.link(spec.direction).remove_toxic(name)

    def _count_down(self, number: int) -> None:
        """Toxics living for N connections: this one counts; a toxic that has joined its
        last connection leaves the proxy (the connections it joined keep it)."""
        for spec in self.toxics():
            if spec.connections is None:
                continue
            spec.connections -= 1
            if spec.connections <= 0:
                self._chains[spec.direction].remove(spec)
                self._changed(FaultAction.TOXIC_EXPIRED, spec, number)

    def remove_all_toxics(self) -> None:
        for spec in self.toxics():
            self.remove_toxic(spec.name)

    def switched(self, enabled: bool) -> None:
        """Record that the API switched this proxy off or on."""
        if self.trace.active:
            action = FaultAction.PROXY_ENABLED if enabled else FaultAction.PROXY_DISABLED
            self.trace.emit(proxy_event(action, self.name, time.monotonic()))

    def _changed(self, action: FaultAction, spec: ToxicSpec, conn: int | None = None) -> None:
        if self.trace.active:
            now = time.monotonic()  # asyncio's loop clock (uvloop's, to the millisecond)
            event = toxic_event(action, self.name, spec.name, spec.type, spec.direction, conn, now)
            self.trace.emit(event)

    def fault_events(self, cursor: int = 0) -> list[FaultEvent]:
        """This proxy's recorded fault events numbered above `cursor` (thread-safe)."""
        return [e for e in self.trace.since(cursor).events if e.proxy == self.name]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [spec.to_json() for spec in self.toxics()],
        }
