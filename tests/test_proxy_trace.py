"""Fault events of each toxic, exactly, on a manual clock through a fake link.

The same seed and the same bytes give the same decisions whatever the chunking; a decision
whose offset depends on timing (a reset landing while data flows) says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from netfault.engine.clock import ManualClock
from netfault.simulator.proxy.toxics import (
    Chunk,
    CorruptAttributes,
    CorruptToxic,
    LimitDataAttributes,
    LimitDataToxic,
    ResetPeerAttributes,
    ResetPeerToxic,
    SlowCloseAttributes,
    SlowCloseToxic,
    TimeoutAttributes,
    TimeoutToxic,
    Toxic,
    ToxicState,
)
from netfault.simulator.proxy.trace import FaultAction, FaultEvent, FaultTrace

PAYLOAD = bytes(range(256)) * 256  # 64 KiB
A = FaultAction


@dataclass
class FakeTimer:
    when: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeLink:
    """A LinkContext on a manual clock; closes and resets are kept with their time."""

    seed: int = 7
    proxy: str = "p"
    conn: int = 3
    direction: str = "downstream"
    clock: ManualClock = field(default_factory=ManualClock)
    timers: list[FakeTimer] = field(default_factory=list)
    ends: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return self.clock.monotonic()

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeTimer:
        self.timers.append(FakeTimer(when, callback))
        return self.timers[-1]

    def close(self) -> None:
        self.ends.append((self.now(), "close"))

    def reset(self) -> None:
        self.ends.append((self.now(), "reset"))

    def advance_to(self, when: float) -> None:
        for timer in sorted(self.timers, key=lambda t: t.when):
            if not timer.cancelled and timer.when <= when:
                self.clock.advance(timer.when - self.now())
                timer.callback()
        self.clock.advance(when - self.now())


def run(
    toxic: Toxic[Any], data: bytes, chunk: int, *, seed: int = 7
) -> tuple[bytes, list[FaultEvent]]:
    """`data` through `toxic` in pieces of `chunk` bytes; what left and the events."""
    trace = FaultTrace()
    trace.record(10_000)
    link = FakeLink(seed=seed)
    st = ToxicState(name="t", trace=trace)
    toxic.start(link, st)
    out = bytearray()
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        for c in toxic.transform(Chunk(piece, link.now()), link, st):
            out += c.data
        st.offset += len(piece)
    return bytes(out), trace.since().events


def decisions(events: list[FaultEvent]) -> list[tuple[object, ...]]:
    return [e.decision() for e in events]


# --- corrupt ----------------------------------------------------------------------------


def test_flip_events_are_exactly_the_damaged_bits_whatever_the_chunking() -> None:
    toxic = CorruptToxic(CorruptAttributes(probability=0.01))
    whole, events = run(toxic, PAYLOAD, len(PAYLOAD))
    _, in_pieces = run(toxic, PAYLOAD, 1000)
    damaged = [(i, a ^ b) for i, (a, b) in enumerate(zip(PAYLOAD, whole, strict=True)) if a != b]
    assert [(e.offset, 1 << (e.bit or 0)) for e in events] == damaged
    assert len(events) == 642  # seed 7: about 1 % of 65,536 bytes
    assert {(e.action, e.toxic_type, e.proxy, e.connection, e.offset_exact) for e in events} == {
        (A.BIT_FLIPPED, "corrupt", "p", 3, True)
    }
    assert decisions(in_pieces) == decisions(events)


def test_a_different_seed_flips_other_bits() -> None:
    toxic = CorruptToxic(CorruptAttributes(probability=0.01))
    _, seven = run(toxic, PAYLOAD, 4096, seed=7)
    _, eight = run(toxic, PAYLOAD, 4096, seed=8)
    assert {(e.offset, e.bit) for e in seven} != {(e.offset, e.bit) for e in eight}
    assert len(eight) > 0


def test_rewrites_and_flips_are_reported_in_stream_order() -> None:
    toxic = CorruptToxic(CorruptAttributes(probability=0.001, rewrite={"9000": 0x41, "3": 0}))
    _, events = run(toxic, PAYLOAD[:10_000], 10_000)
    offsets = [e.offset or 0 for e in events]
    assert offsets == sorted(offsets)
    rewrites = [(e.offset, e.value) for e in events if e.action is A.BYTE_REWRITTEN]
    assert rewrites == [(3, 0), (9000, 0x41)]


def test_a_mangling_mode_is_reported_once_where_it_first_changes_a_byte() -> None:
    data = b"plain text\n" + bytes([0xC3, 0xA9]) + b"\n" * 50
    _, strip = run(CorruptToxic(CorruptAttributes(strip_high_bit=True)), data, 4)
    _, crlf = run(CorruptToxic(CorruptAttributes(lf_to_crlf=True)), data, 4)
    assert [(e.action, e.offset, e.mode) for e in strip] == [
        (A.BYTES_MANGLED, 11, "strip_high_bit")
    ]
    assert [(e.action, e.offset, e.mode) for e in crlf] == [(A.BYTES_MANGLED, 10, "lf_to_crlf")]


# --- connection fates -------------------------------------------------------------------


def test_limit_data_reports_the_exact_offset_it_closed_at() -> None:
    out, events = run(LimitDataToxic(LimitDataAttributes(bytes=1000)), PAYLOAD[:5000], 300)
    assert len(out) == 1000
    assert [(e.action, e.offset, e.offset_exact) for e in events] == [(A.LIMIT_REACHED, 1000, True)]


def test_reset_peer_arming_is_exact_but_the_offset_it_lands_at_is_not() -> None:
    trace = FaultTrace()
    trace.record(100)
    link = FakeLink()
    toxic = ResetPeerToxic(ResetPeerAttributes(timeout=500))
    st = ToxicState(name="r", trace=trace)
    link.clock.advance(2.0)
    for _ in range(3):  # data keeps coming while the reset is pending
        toxic.transform(Chunk(b"x" * 100, link.now()), link, st)
        st.offset += 100
        link.advance_to(link.now() + 0.1)
    link.advance_to(3.0)
    got = [(e.action, e.offset, e.offset_exact, e.delay_ms, e.time) for e in trace.since().events]
    assert got == [
        (A.RESET_ARMED, 0, True, 500, 2.0),
        (A.RESET, 300, False, None, 2.5),
    ]
    assert link.ends == [(2.5, "reset")]
    decision = dict(trace.since().events[1].decision())
    assert "offset" not in decision  # where it landed is not a decision
    assert (decision["action"], decision["connection"]) == (A.RESET, 3)


def test_timeout_reports_arming_and_closing_with_timing_dependent_offsets() -> None:
    trace = FaultTrace()
    trace.record(100)
    link = FakeLink()
    toxic = TimeoutToxic(TimeoutAttributes(timeout=250))
    st = ToxicState(name="t", trace=trace)
    toxic.start(link, st)
    toxic.transform(Chunk(b"y" * 40, 0.0), link, st)
    st.offset += 40
    link.advance_to(1.0)
    got = [(e.action, e.offset, e.offset_exact, e.time) for e in trace.since().events]
    assert got == [(A.TIMEOUT_ARMED, 0, False, 0.0), (A.TIMEOUT_CLOSED, 40, False, 0.25)]
    assert link.ends == [(0.25, "close")]


def test_slow_close_reports_the_delayed_end_after_every_byte() -> None:
    trace = FaultTrace()
    trace.record(100)
    link = FakeLink()
    toxic = SlowCloseToxic(SlowCloseAttributes(delay=800))
    st = ToxicState(name="s", trace=trace, offset=1234)
    assert toxic.eof_time(0.0, link, st) == 0.8
    got = [(e.action, e.offset, e.offset_exact, e.delay_ms) for e in trace.since().events]
    assert got == [(A.EOF_DELAYED, 1234, True, 800)]


def test_a_toxic_that_joined_an_open_connection_marks_every_offset_inexact() -> None:
    trace = FaultTrace()
    trace.record(100)
    link = FakeLink()
    st = ToxicState(name="late", trace=trace, offsets_exact=False)
    LimitDataToxic(LimitDataAttributes(bytes=10)).transform(Chunk(b"z" * 20, 0.0), link, st)
    assert [(e.offset, e.offset_exact) for e in trace.since().events] == [(10, False)]


# --- the trace itself -------------------------------------------------------------------


def test_nothing_is_built_while_nobody_listens() -> None:
    trace = FaultTrace()
    st = ToxicState(name="t", trace=trace)
    CorruptToxic(CorruptAttributes(rewrite={"0": 1})).transform(Chunk(b"abc", 0.0), FakeLink(), st)
    assert not trace.active and trace.since().events == []
    seen: list[FaultEvent] = []
    unsubscribe = trace.subscribe(seen.append)
    assert trace.active
    CorruptToxic(CorruptAttributes(rewrite={"0": 1})).transform(Chunk(b"abc", 0.0), FakeLink(), st)
    unsubscribe()
    assert not trace.active
    assert [(e.action, e.seq) for e in seen] == [(A.BYTE_REWRITTEN, 1)]
    assert trace.since().events == []  # a subscriber alone keeps nothing


def test_the_ring_keeps_the_last_events_and_counts_those_it_dropped() -> None:
    trace = FaultTrace()
    trace.record(4)
    toxic = CorruptToxic(CorruptAttributes(rewrite={str(i): 0 for i in range(10)}))
    toxic.transform(Chunk(bytes(range(1, 11)), 0.0), FakeLink(), ToxicState(trace=trace))
    page = trace.since(0)
    assert [e.seq for e in page.events] == [7, 8, 9, 10]
    assert (page.cursor, page.dropped) == (10, 6)
    later = trace.since(8)
    assert ([e.offset for e in later.events], later.cursor, later.dropped) == ([8, 9], 10, 0)
    assert trace.since(10).events == []


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    trace = FaultTrace()

    def broken(event: FaultEvent) -> None:
        raise RuntimeError("listener bug")

    seen: list[FaultEvent] = []
    trace.subscribe(broken)
    trace.subscribe(seen.append)
    CorruptToxic(CorruptAttributes(rewrite={"0": 1})).transform(
        Chunk(b"a", 0.0), FakeLink(), ToxicState(trace=trace)
    )
    assert len(seen) == 1
    assert "fault event listener" in caplog.text and "listener bug" in caplog.text


def test_capacity_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 0, not -1"):
        FaultTrace().record(-1)
