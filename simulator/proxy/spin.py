"""Adaptive busy polling: keep the event loop polling for a moment after traffic.

On virtual machines a sleeping vCPU takes tens of microseconds to wake up, and a proxy adds
two such wake-ups to every round trip. After each read the loop keeps polling (epoll with a
zero timeout, by re-queuing a callback) until no byte has moved for the spin window, as Go's
scheduler (and so Toxiproxy) spins before parking a thread. Each turn of the spin yields the
core (sched_yield) to any other runnable thread, so a spinning proxy does not keep its peers
(the client and server it relays for) waiting for a core, and a spinner that got less than
half a core over its window stands down for a while: on a busy machine spinning costs more
wake-up latency than it saves. It is worth it only where the proxy
has its own process: `netfault-proxy` spins 200 us by default (`-spin-us`); a proxy
inside another program's process (LocalCluster) does not spin unless asked.

What spinning costs: a round trip through a relay is a chain of hand-overs (client, proxy,
server, proxy, client). On these VMs (no guest halt polling) a hand-over to a task on the
other vCPU wakes that vCPU from halt, tens of us, while one on the same vCPU is a context
switch. A spinning proxy holds its vCPU, so the client and server always wake on the other
one; a sleeping proxy sometimes shares one vCPU with both, and then adds about 30 us. So
without spinning the median round trip is better in the rounds where the scheduler puts
all three together and much worse where it does not; its p99 was worse on a quiet machine
(+162 us against +79) and about even under load (`bench/proxy_placement.py` pins the three
processes to show each case). A spinner that
measured both ways in turns and kept the faster (turnaround from a write to the peer's
answer) chose spinning in most turns, and the bench's figures did not change.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref

DEFAULT_SPIN_US = 200  # netfault-proxy's default: a round trip's gap on loopback fits in it


# A spin that got less than this share of a core over a window competed with other threads:
# there, spinning only delays their wake-ups and ours (the scheduler bills the spinning), so
# the spinner stands down for BACK_OFF seconds.
CONTENDED_SHARE = 0.5
BACK_OFF = 0.1


class Spinner:
    """Re-queues itself on the loop while traffic moved within the last `window_us`."""

    __slots__ = (
        "__weakref__",
        "_back_off",
        "_cpu_mark",
        "_last",
        "_loop",
        "_mark",
        "_spinning",
        "_still_until",
        "_window",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, window_us: int, *, back_off: float = BACK_OFF
    ) -> None:
        if window_us < 0:
            raise ValueError(f"spin window must be >= 0 us, not {window_us}")
        self._loop = loop
        self._back_off = back_off
        self._window = window_us / 1e6
        self._last = 0.0
        self._spinning = False
        self._mark = 0.0  # start of the current measuring window (wall clock)
        self._cpu_mark = 0.0  # this thread's CPU time at that start
        self._still_until = 0.0  # no spinning before this, after contention

    @property
    def window_us(self) -> int:
        return round(self._window * 1e6)

    @property
    def spinning(self) -> bool:
        return self._spinning

    def poke(self) -> None:
        """Traffic moved: poll without sleeping until the window has passed quietly."""
        if not self._window:
            return
        now = self._last = time.perf_counter()
        if not self._spinning and now >= self._still_until:
            self._spinning = True
            self._mark, self._cpu_mark = now, time.thread_time()
            self._loop.call_soon(self._spin)

    def _spin(self) -> None:
        now = time.perf_counter()
        if now - self._last >= self._window:
            self._spinning = False
            return
        if now - self._mark >= self._window:
            cpu = time.thread_time()
            if cpu - self._cpu_mark < CONTENDED_SHARE * (now - self._mark):
                self._spinning = False
                self._still_until = now + self._back_off
                return
            self._mark, self._cpu_mark = now, cpu
        # Give the core to any other runnable thread first: the echo server or client this
        # proxy relays for may have just woken on it, and a spinner that holds the core makes
        # it wait for a preemption (a few hundred us on these VMs: the p99).
        os.sched_yield()
        self._loop.call_soon(self._spin)


_SPINNERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Spinner] = (
    weakref.WeakKeyDictionary()
)


def install(loop: asyncio.AbstractEventLoop, window_us: int) -> Spinner:
    """Make links on `loop` spin `window_us` after traffic (0 turns spinning off)."""
    spinner = _SPINNERS[loop] = Spinner(loop, window_us)
    return spinner


def spinner_for(loop: asyncio.AbstractEventLoop) -> Spinner:
    """The loop's spinner; one that never spins if none was installed."""
    spinner = _SPINNERS.get(loop)
    if spinner is None:
        spinner = _SPINNERS[loop] = Spinner(loop, 0)
    return spinner
