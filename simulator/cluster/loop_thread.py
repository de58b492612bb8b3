"""An event loop on its own thread, so the network under test never shares the engine's loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines and callables on a private loop; start() returns once it runs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.name}: event loop thread did not start in {timeout}s")

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            self._cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @staticmethod
    def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
        """Cancel tasks still pending (e.g. a session handler) so their cleanup runs."""
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            gathered = asyncio.gather(*pending, return_exceptions=True)
            loop.run_until_complete(asyncio.wait_for(gathered, 10.0))

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None or not self.loop.is_running():
            raise RuntimeError(f"{self.name}: event loop is not running")
        return self.loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the thread's loop and wait for it (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop()).result(timeout)

    async def arun(self, coro: Coroutine[Any, Any, T], limit: float = 60.0) -> T:
        """Run a coroutine on the thread's loop, awaiting it from another loop."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop())
        async with asyncio.timeout(limit):
            return await asyncio.wrap_future(future)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Call a plain function on the thread's loop (for state owned by that loop)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
