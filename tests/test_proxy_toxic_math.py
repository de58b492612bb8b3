"""Each toxic's arithmetic, exactly, on a manual clock through a fake link.

A toxic never sleeps: it stamps each chunk with the time it may leave and schedules its
timers through the link. So release times, rates, slice sizes and timeout instants are
checked here to the exact figure, with no socket and no wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from netfault.engine.clock import ManualClock
from netfault.simulator.proxy import rng
from netfault.simulator.proxy.toxics import (
    BandwidthAttributes,
    BandwidthToxic,
    Chunk,
    Kind,
    LatencyAttributes,
    LatencyToxic,
    LimitDataAttributes,
    LimitDataToxic,
    ResetPeerAttributes,
    ResetPeerToxic,
    SlicerAttributes,
    SlicerToxic,
    SlowCloseAttributes,
    SlowCloseToxic,
    TimeoutAttributes,
    TimeoutToxic,
    Toxic,
    ToxicState,
)

TICK = 1e-12  # float rounding of sums of decimal seconds, far below any real timer


@dataclass
class FakeTimer:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeLink:
    """A LinkContext on a manual clock that records closes and resets with their time."""

    seed: int = 7
    proxy: str = "p"
    conn: int = 0
    direction: str = "downstream"
    clock: ManualClock = field(default_factory=ManualClock)
    timers: list[FakeTimer] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return self.clock.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    def close(self) -> None:
        self.events.append((self.now(), "close"))

    def reset(self) -> None:
        self.events.append((self.now(), "reset"))

    def advance_to(self, when: float) -> None:
        """Move the clock to `when`, firing every due timer at its own instant, in order."""
        while due := sorted(
            (t for t in self.timers if not t.cancelled and t.when <= when), key=lambda t: t.when
        ):
            timer = due[0]
            self.timers.remove(timer)
            self.clock.advance(timer.when - self.now())
            timer.callback()
        self.clock.advance(when - self.now())

    def send(self, toxic: Toxic[Any], st: ToxicState, data: bytes) -> list[Chunk]:
        """`data` arrives now: what the toxic lets out, each chunk stamped with its time."""
        out = toxic.transform(Chunk(data, self.now()), self, st)
        st.offset += len(data)
        return out


def stamps(chunks: list[Chunk]) -> list[tuple[int, float]]:
    return [(len(c.data), c.t) for c in chunks]


def started(toxic: Toxic[Any], link: FakeLink, name: str = "t") -> ToxicState:
    st = ToxicState(name=name)
    toxic.start(link, st)
    return st


# --- latency ---------------------------------------------------------------------------


def test_latency_releases_each_chunk_exactly_latency_after_it_arrived() -> None:
    link = FakeLink()
    toxic = LatencyToxic(LatencyAttributes(latency=150))
    st = started(toxic, link)
    assert stamps(link.send(toxic, st, b"a" * 10)) == [(10, 0.15)]
    link.advance_to(0.25)
    assert stamps(link.send(toxic, st, b"b" * 5)) == [(5, pytest.approx(0.4, abs=TICK))]
    assert toxic.eof_time(0.25, link, st) == 0.25  # the EOF waits only behind the data


def test_latency_with_jitter_is_the_seeded_draw_within_plus_minus_jitter() -> None:
    link = FakeLink()
    toxic = LatencyToxic(LatencyAttributes(latency=100, jitter=20))
    st = started(toxic, link, name="lat")
    delays_ms = []
    for _ in range(400):
        (chunk,) = link.send(toxic, st, b"x")
        delays_ms.append(round(chunk.t * 1000))
    expected = [
        100 + rng.derive(7, "p", 0, "downstream", "lat", offset) % 40 - 20 for offset in range(400)
    ]
    assert delays_ms == expected
    assert min(delays_ms) == 80 and max(delays_ms) == 119  # uniform over [-20, +20) ms


def test_stacked_latency_toxics_add_up() -> None:
    link = FakeLink()
    first, second = (LatencyToxic(LatencyAttributes(latency=ms)) for ms in (100, 250))
    st1, st2 = started(first, link, "a"), started(second, link, "b")
    (chunk,) = link.send(first, st1, b"x")
    (chunk,) = second.transform(chunk, link, st2)
    assert chunk.t == pytest.approx(0.35, abs=TICK)


def test_zero_latency_passes_through_and_jitter_alone_does_not() -> None:
    assert LatencyToxic(LatencyAttributes()).passes_through()
    assert not LatencyToxic(LatencyAttributes(jitter=5)).passes_through()


# --- bandwidth -------------------------------------------------------------------------


def test_bandwidth_releases_rate_bytes_per_100_ms_slice() -> None:
    link = FakeLink()
    toxic = BandwidthToxic(BandwidthAttributes(rate=100))  # 100 KB/s: 10,000 bytes per 0.1 s
    st = started(toxic, link)
    out = stamps(link.send(toxic, st, bytes(25_000)))
    assert [size for size, _ in out] == [10_000, 10_000, 5_000]
    assert [t for _, t in out] == pytest.approx([0.1, 0.2, 0.25], abs=TICK)
    link.advance_to(0.1)  # more bytes while the link is still busy queue behind
    assert stamps(link.send(toxic, st, bytes(5_000))) == [(5_000, pytest.approx(0.3, abs=TICK))]
    link.advance_to(1.0)  # an idle link starts again from now
    assert stamps(link.send(toxic, st, bytes(1_000))) == [(1_000, pytest.approx(1.01, abs=TICK))]


def test_bandwidth_moves_exactly_rate_bytes_per_second() -> None:
    link = FakeLink()
    toxic = BandwidthToxic(BandwidthAttributes(rate=250))
    st = started(toxic, link)
    out = link.send(toxic, st, bytes(1_000_000))
    assert sum(len(c.data) for c in out) == 1_000_000
    assert out[-1].t == pytest.approx(4.0, abs=TICK)  # 1,000,000 B / 250,000 B/s
    assert {len(c.data) for c in out} == {25_000}  # 100 ms at 250 KB/s


@pytest.mark.parametrize("rate", [0, -5])
def test_bandwidth_rate_zero_or_less_is_unlimited(rate: int) -> None:
    link = FakeLink()
    toxic = BandwidthToxic(BandwidthAttributes(rate=rate))
    assert stamps(link.send(toxic, started(toxic, link), bytes(1 << 20))) == [(1 << 20, 0.0)]


# --- slicer ----------------------------------------------------------------------------


def test_slicer_cuts_exact_pieces_spaced_by_delay_microseconds() -> None:
    link = FakeLink()
    toxic = SlicerToxic(SlicerAttributes(average_size=10, size_variation=0, delay=30_000))
    st = started(toxic, link)
    out = stamps(link.send(toxic, st, bytes(80)))
    assert [size for size, _ in out] == [10] * 8
    assert [t for _, t in out] == pytest.approx([i * 0.03 for i in range(8)], abs=TICK)
    link.advance_to(0.1)  # the next chunk's pieces follow the last one's slot
    out = stamps(link.send(toxic, st, bytes(20)))
    assert out == [(10, pytest.approx(0.24, abs=TICK)), (10, pytest.approx(0.27, abs=TICK))]


def test_slicer_halves_until_within_variation_as_toxiproxy_does() -> None:
    link = FakeLink()
    toxic = SlicerToxic(SlicerAttributes(average_size=10, size_variation=0))
    out = link.send(toxic, started(toxic, link), bytes(100))
    # 100 -> 50 -> 25 -> 12 + 13 -> 6 + 6, 6 + 7: halving, not cutting at the average
    assert [len(c.data) for c in out] == [6, 6, 6, 7] * 4
    assert {c.t for c in out} == {0.0}  # no delay


def test_slicer_with_variation_keeps_every_byte_and_bounds_each_piece() -> None:
    link = FakeLink()
    toxic = SlicerToxic(SlicerAttributes(average_size=64, size_variation=16))
    data = bytes(range(256)) * 40
    out = link.send(toxic, started(toxic, link), data)
    assert b"".join(c.data for c in out) == data
    assert all(1 <= len(c.data) <= 64 + 16 for c in out)


# --- timeout, reset_peer, slow_close, limit_data -----------------------------------------


def test_timeout_closes_exactly_timeout_after_it_starts_and_drops_data() -> None:
    link = FakeLink()
    link.advance_to(2.0)
    toxic = TimeoutToxic(TimeoutAttributes(timeout=150))
    st = started(toxic, link)
    assert link.send(toxic, st, b"lost") == []
    link.advance_to(10.0)
    assert link.events == [(pytest.approx(2.15, abs=TICK), "close")]


def test_timeout_restarted_by_an_update_counts_from_the_update() -> None:
    link = FakeLink()
    old = TimeoutToxic(TimeoutAttributes(timeout=100))
    st = started(old, link)
    link.advance_to(0.05)
    old.stop(link, st)
    new = old.merged({"timeout": 300})
    new.start(link, st)
    link.advance_to(10.0)
    assert link.events == [(pytest.approx(0.35, abs=TICK), "close")]


def test_timeout_zero_never_closes_but_removal_closes_at_once() -> None:
    link = FakeLink()
    toxic = TimeoutToxic(TimeoutAttributes(timeout=0))
    st = started(toxic, link)
    link.advance_to(3600.0)
    assert link.events == []
    toxic.stop(link, st)
    toxic.removed(link, st)
    assert link.events == [(3600.0, "close")]


def test_reset_peer_resets_exactly_timeout_after_the_first_data() -> None:
    link = FakeLink()
    toxic = ResetPeerToxic(ResetPeerAttributes(timeout=50))
    st = started(toxic, link)
    link.advance_to(1.0)
    assert link.timers == []  # no data yet: no timer
    assert link.send(toxic, st, b"first") == []
    link.advance_to(1.02)
    assert link.send(toxic, st, b"second") == []  # later data does not restart it
    link.advance_to(5.0)
    assert link.events == [(pytest.approx(1.05, abs=TICK), "reset")]


def test_slow_close_delays_the_eof_by_delay_ms() -> None:
    link = FakeLink()
    toxic = SlowCloseToxic(SlowCloseAttributes(delay=200))
    st = started(toxic, link)
    link.advance_to(3.0)
    assert link.send(toxic, st, b"data") == [Chunk(b"data", 3.0)]
    assert toxic.eof_time(3.0, link, st) == pytest.approx(3.2, abs=TICK)


def test_limit_data_passes_exactly_bytes_then_a_close_marker() -> None:
    link = FakeLink()
    toxic = LimitDataToxic(LimitDataAttributes(bytes=1000))
    st = started(toxic, link)
    assert stamps(link.send(toxic, st, bytes(600))) == [(600, 0.0)]
    link.advance_to(0.5)
    out = link.send(toxic, st, bytes(600))
    assert [(len(c.data), c.t, c.kind) for c in out] == [
        (400, 0.5, Kind.DATA),
        (0, 0.5, Kind.CLOSE),
    ]
    assert link.send(toxic, st, bytes(10)) == []
    updated = toxic.merged({"bytes": 2000})  # the count survives an update
    assert stamps(link.send(updated, st, bytes(10))) == []
