"""Every proxy of a server by name, and the operations the API performs on them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from netfault.simulator.proxy import errors
from netfault.simulator.proxy.address import resolve_listen
from netfault.simulator.proxy.proxy import Proxy
from netfault.simulator.proxy.schema import ProxyConfig
from netfault.simulator.proxy.spec import ToxicSpec
from netfault.simulator.proxy.trace import EventPage, FaultEvent, FaultTrace, Listener


class ProxyCollection:
    """The proxies of one server. Methods run on the server's event loop."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.trace = FaultTrace()
        self._proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    def __contains__(self, name: str) -> bool:
        return name in self._proxies

    def all(self) -> dict[str, Proxy]:
        return dict(self._proxies)

    def get(self, name: str) -> Proxy:
        try:
            return self._proxies[name]
        except KeyError:
            raise errors.proxy_not_found() from None

    async def create(
        self,
        name: str,
        upstream: str,
        listen: str = "localhost:0",
        enabled: bool = True,
        toxics: Iterable[ToxicSpec] = (),
    ) -> Proxy:
        """Add and (if enabled) start a proxy; 409 if the name is taken, 500 if bind fails."""
        async with self._lock:
            if name in self._proxies:
                raise errors.proxy_already_exists()
            proxy = self._new(ProxyConfig(name, upstream, listen, enabled, list(toxics)))
            if enabled:
                await proxy.start()
            self._proxies[name] = proxy
            return proxy

    async def update(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        """Partial update; a new listen or upstream restarts the proxy, dropping connections."""
        async with self._lock:
            proxy = self.get(name)
            listen = proxy.listen if listen is None else listen
            upstream = proxy.upstream if upstream is None else upstream
            enabled = proxy.enabled if enabled is None else enabled
            if listen != proxy.listen or upstream != proxy.upstream:
                proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            if enabled and not proxy.enabled:
                await proxy.start()
                proxy.switched(True)
            elif not enabled and proxy.enabled:
                proxy.stop()
                proxy.switched(False)
            return proxy

    async def delete(self, name: str) -> None:
        async with self._lock:
            self.get(name).stop()
            del self._proxies[name]

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        async with self._lock:
            for proxy in self._proxies.values():
                await proxy.start()
                proxy.remove_all_toxics()

    async def populate(
        self, configs: list[ProxyConfig]
    ) -> tuple[list[Proxy], errors.ApiError | None]:
        """Create or replace the listed proxies in order; unchanged ones are left alone.

        Returns the proxies handled so far and the error that stopped the run, if any.
        """
        done: list[Proxy] = []
        async with self._lock:
            for config in configs:
                try:
                    done.append(await self._populate_one(config))
                except errors.ApiError as exc:
                    return done, exc
        return done, None

    async def _populate_one(self, config: ProxyConfig) -> Proxy:
        existing = self._proxies.get(config.name)
        listen = config.listen
        if existing is not None:
            try:
                listen = await resolve_listen(config.listen)
            except (ValueError, OSError):
                listen = config.listen
            if listen == existing.listen and config.upstream == existing.upstream:
                return existing
            existing.stop()
            del self._proxies[config.name]
        proxy = self._new(config)
        if config.enabled:
            await proxy.start()
        self._proxies[config.name] = proxy
        return proxy

    async def close(self) -> None:
        """Stop every proxy (listeners and connections) and forget them."""
        async with self._lock:
            for proxy in self._proxies.values():
                proxy.stop(abort=True)
            self._proxies.clear()

    def _new(self, config: ProxyConfig) -> Proxy:
        proxy = Proxy(config.name, config.listen, config.upstream, seed=self.seed, trace=self.trace)
        for spec in config.toxics:
            proxy.add_toxic(spec)
        return proxy

    # --- fault events (thread-safe: callable from any thread) ---------------------------------
    def fault_events(self, cursor: int = 0) -> list[FaultEvent]:
        """Every recorded fault event numbered above `cursor`, oldest first."""
        return self.trace.since(cursor).events

    def events_since(self, cursor: int = 0) -> EventPage:
        """The recorded events above `cursor`, the next cursor and how many were overwritten."""
        return self.trace.since(cursor)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on the proxy's loop with each fault event; returns unsubscribe."""
        return self.trace.subscribe(listener)

    def to_json(self) -> dict[str, Any]:
        return {name: proxy.to_json() for name, proxy in self._proxies.items()}
