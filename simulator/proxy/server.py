"""The proxy server: API listener plus proxies, on its own loop (thread) or the caller's."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from netfault.simulator.proxy import schema, spin
from netfault.simulator.proxy.address import join_host_port, resolve_host
from netfault.simulator.proxy.api import make_app
from netfault.simulator.proxy.collection import ProxyCollection
from netfault.simulator.proxy.errors import ApiError, ServerStartError
from netfault.simulator.proxy.proxy import Proxy

T = TypeVar("T")
SHUTDOWN_TIMEOUT = 10.0


class _Done:
    """An awaitable that is already finished (what stop() returns in thread mode)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class ProxyServer:
    """A Toxiproxy-compatible server: `await start()` on your loop, or `start_in_thread()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        *,
        seed: int | None = None,
        config: str | Path | None = None,
        metrics: bool = False,
        spin_us: int = 0,
        events: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = random.SystemRandom().randrange(2**63) if seed is None else seed
        self.config = config
        self.metrics = metrics
        self.spin_us = spin_us  # busy-poll window after traffic (see spin.py); 0 = off
        self.collection = ProxyCollection(self.seed)
        if events:  # keep the last `events` fault events (see trace.py)
            self.collection.trace.record(events)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    @property
    def api_url(self) -> str:
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{join_host_port(host, self.port)}"

    # --- on the caller's loop ---------------------------------------------------------------
    async def start(self) -> None:
        """Listen for the API (publishing the real port) and load `config` if given."""
        self._loop = asyncio.get_running_loop()
        spin.install(self._loop, self.spin_us)
        host = await resolve_host(self.host)
        runner = web.AppRunner(make_app(self.collection, metrics=self.metrics), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host or None, self.port, reuse_address=True)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            where = join_host_port(host, self.port)
            raise ServerStartError(f"cannot listen on {where}: {exc.strerror}") from exc
        self._runner = runner
        self.host = host or "0.0.0.0"
        self.port = int(runner.addresses[0][1])
        if self.config is not None:
            try:
                await self.load_config(self.config)
            except (ApiError, OSError, ValueError) as exc:
                await self.aclose()
                raise ServerStartError(f"config {self.config}: {exc}") from exc

    async def load_config(self, path: str | Path) -> list[Proxy]:
        """Populate from a Toxiproxy config file (the /populate JSON format)."""
        text = await asyncio.to_thread(Path(path).read_bytes)
        configs = schema.populate(schema.decode(text))
        done, error = await self.collection.populate(configs)
        if error is not None:
            raise error
        return done

    async def aclose(self) -> None:
        """Close every proxy, connection and the API listener."""
        await self.collection.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await runner.cleanup()
        await asyncio.sleep(0)  # let closed transports release their sockets

    def stop(self) -> Awaitable[None]:
        """Stop: blocking in thread mode (returns a finished awaitable), else awaitable."""
        if self._thread is not None:
            self.stop_thread()
            return _Done()
        return self.aclose()

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- on its own thread and loop -----------------------------------------------------------
    def start_in_thread(self, timeout: float = 10.0) -> ProxyServer:
        """Run on a new thread with its own loop; return once the API is listening."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._thread_main(ready)),
            name=f"netfault-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise ServerStartError(f"proxy server did not start within {timeout} s")
        if self._start_error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise ServerStartError(str(self._start_error)) from self._start_error
        return self

    async def _thread_main(self, ready: threading.Event) -> None:
        self._stop_event = asyncio.Event()
        try:
            await self.start()
        except Exception as exc:  # handed to the starting thread, which raises it
            self._start_error = exc
            return
        finally:
            ready.set()
        await self._stop_event.wait()
        await self.aclose()

    def stop_thread(self, timeout: float = 10.0) -> None:
        """Stop the server started by start_in_thread and join its thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stop_event is not None and thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop_event.set)
        thread.join(timeout)

    def call(self, fn: Callable[[ProxyCollection], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run `fn(collection)` on the server's loop from another thread; return its result."""
        if self._loop is None:
            raise ServerStartError("proxy server is not running")

        async def run() -> T:
            return await fn(self.collection)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def __enter__(self) -> ProxyServer:
        return self.start_in_thread()

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_thread()
