"""The proxy's busy-poll window: spins after traffic, stops once quiet, off when 0."""

from __future__ import annotations

import asyncio

import pytest

from netfault.simulator.proxy import spin


async def _until_quiet(spinner: spin.Spinner, limit: float = 30.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while spinner.spinning:
        assert loop.time() - start < limit, "the spinner never stopped"
        await asyncio.sleep(0.001)
    return loop.time() - start


async def test_poke_spins_the_loop_until_the_window_passes_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a whole core, so a loaded machine cannot make the spinner stand down early
    monkeypatch.setattr(spin.time, "thread_time", spin.time.perf_counter)
    spinner = spin.Spinner(asyncio.get_running_loop(), 20_000)  # 20 ms
    spinner.poke()
    assert spinner.spinning
    quiet_after = await _until_quiet(spinner)
    assert quiet_after >= 0.015


async def test_zero_window_never_spins_and_unknown_loops_get_one() -> None:
    loop = asyncio.get_running_loop()
    spinner = spin.spinner_for(loop)
    spinner.poke()
    assert not spinner.spinning and spinner.window_us == 0
    installed = spin.install(loop, 150)
    assert spin.spinner_for(loop) is installed and installed.window_us == 150


def test_negative_window_is_an_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match=">= 0"):
            spin.Spinner(loop, -1)
    finally:
        loop.close()


async def test_each_turn_of_the_spin_yields_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    yields: list[None] = []
    monkeypatch.setattr(spin.os, "sched_yield", lambda: yields.append(None))
    spinner = spin.Spinner(asyncio.get_running_loop(), 5_000)
    spinner.poke()
    await _until_quiet(spinner)
    assert yields, "the spinner polled without yielding the core"


async def test_a_spinner_short_of_cpu_stands_down_until_its_back_off_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spin that got less than half a core (other threads ran) stops and stays off."""
    monkeypatch.setattr(spin.time, "thread_time", lambda: 0.0)  # no CPU time at all
    spinner = spin.Spinner(asyncio.get_running_loop(), 2_000, back_off=3600.0)
    spinner.poke()
    while spinner.spinning:
        spinner.poke()  # traffic keeps moving: only the contention can stop the spin
        await asyncio.sleep(0)
    spinner.poke()
    assert not spinner.spinning


class Clock:
    """perf_counter and thread_time of a thread that has a whole core, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def thread_time(self) -> float:
        return self.now


async def test_a_spinner_with_its_core_keeps_spinning_while_traffic_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(spin, "time", clock)
    spinner = spin.Spinner(asyncio.get_running_loop(), 2_000, back_off=3600.0)
    spinner.poke()
    for _ in range(500):  # 25 windows of traffic, a poke every 100 us
        clock.now += 0.0001
        spinner.poke()
        await asyncio.sleep(0)  # the spin's turn runs
        assert spinner.spinning
