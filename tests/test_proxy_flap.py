"""The flap toxic: a link going down and up in spells counted in connections, fixed by the seed.

The schedule is a pure function (exact figures below); through real sockets, each
connection gets the fate the function gives it, and the trace says so.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from test_proxy_trace import FakeLink
from test_proxy_trace_api import add_proxy, call, events

from netfault.simulator.proxy import ProxyServer
from netfault.simulator.proxy.toxics import Chunk, FlapAttributes, FlapToxic, Kind, ToxicState
from netfault.simulator.proxy.toxics.flap import Fate, FlapSchedule, flap_fate
from netfault.simulator.proxy.trace import FaultAction, FaultTrace

PAYLOAD = bytes(range(256)) * 256  # 64 KiB
R, P, C = Fate.REFUSED, Fate.PASSED, Fate.CUT


def fates(seed: int, attrs: FlapAttributes, n: int = 12) -> list[tuple[Fate, int | None]]:
    return [flap_fate(seed, "p", "t", k, attrs) for k in range(n)]


# --- the schedule, a pure function --------------------------------------------------------


def test_the_schedule_starts_down_and_cuts_the_last_connection_of_each_up_spell() -> None:
    assert fates(7, FlapAttributes()) == [
        (R, None),
        (R, None),
        (P, None),
        (P, None),
        (P, None),
        (P, None),
        (C, 31250),
        (R, None),
        (R, None),
        (R, None),
        (P, None),
        (P, None),
    ]


def test_a_different_seed_proxy_or_toxic_draws_other_spells() -> None:
    attrs = FlapAttributes()
    assert [f for f, _ in fates(8, attrs)] == [R, R, R, C, R, R, P, P, P, C, R, R]
    assert [flap_fate(7, "q", "t", k, attrs)[0] for k in range(12)] != [
        f for f, _ in fates(7, attrs)
    ]
    assert [flap_fate(7, "p", "u", k, attrs)[0] for k in range(12)] != [
        f for f, _ in fates(7, attrs)
    ]


def test_spells_last_one_to_twice_the_mean_minus_one_connections() -> None:
    schedule = FlapSchedule(7, "p", "t", FlapAttributes(up=3, down=2))
    ends = [schedule.spell(k)[1] for k in range(10_000)]
    spells = sorted(set(ends))
    lengths = [b - a for a, b in zip([0, *spells], spells, strict=False)]
    down, up = lengths[0::2], lengths[1::2]
    assert set(down) == {1, 2, 3}
    assert set(up) == {1, 2, 3, 4, 5}
    assert sum(down) / len(down) == pytest.approx(2, abs=0.1)
    assert sum(up) / len(up) == pytest.approx(3, abs=0.1)


def test_cut_zero_lets_every_up_connection_pass_and_means_of_one_alternate() -> None:
    assert fates(7, FlapAttributes(up=1, down=1, cut=0), 6) == [(R, None), (P, None)] * 3
    assert [f for f, _ in fates(7, FlapAttributes(up=1, down=1), 4)] == [R, C, R, C]


def test_cut_offsets_stay_within_one_to_cut_bytes() -> None:
    attrs = FlapAttributes(up=1, down=1, cut=10)
    offsets = {o for _, o in fates(3, attrs, 400) if o is not None}
    assert offsets == set(range(1, 11))


# --- the toxic on a fake link ---------------------------------------------------------------


@dataclass
class FlapLink(FakeLink):
    """A fake link that also records a refusal (the connection is then never dialled)."""

    def refuse(self) -> None:
        self.ends.append((self.now(), "refuse"))


def through(conn: int, data: bytes, chunk: int) -> tuple[list[Chunk], list[str], FaultTrace]:
    """`data` through a flap toxic (seed 7, defaults) on connection `conn` of proxy p."""
    trace = FaultTrace()
    trace.record(100)
    toxic = FlapToxic(FlapAttributes())
    # connection 0 opens first: the spells count from the first connection the toxic sees
    toxic.start(FlapLink(seed=7, proxy="p", conn=0), ToxicState(name="t"))
    link = FlapLink(seed=7, proxy="p", conn=conn, direction="upstream")
    st = ToxicState(name="t", trace=trace)
    toxic.start(link, st)
    out: list[Chunk] = []
    for start in range(0, len(data), chunk):
        piece = data[start : start + chunk]
        out += toxic.transform(Chunk(piece, 0.0), link, st)
        st.offset += len(piece)
    return out, [end for _, end in link.ends], trace


@pytest.mark.parametrize("chunk", [1000, 65536], ids=["1000-byte-reads", "one-read"])
def test_a_cut_connection_passes_exactly_its_offset_then_resets(chunk: int) -> None:
    out, ends, trace = through(6, PAYLOAD, chunk)
    assert b"".join(c.data for c in out) == PAYLOAD[:31250]
    assert out[-1].kind is Kind.RESET
    assert ends == []  # the reset waits behind the bytes before it
    [event] = trace.since().events
    assert (event.action, event.connection, event.offset, event.offset_exact) == (
        FaultAction.CUT,
        6,
        31250,
        True,
    )


def test_a_refused_connection_is_never_dialled_and_reset_at_its_first_byte() -> None:
    out, ends, trace = through(1, PAYLOAD, 1000)
    assert out == []
    assert ends == ["refuse", "reset"]
    assert [(e.action, e.connection, e.offset) for e in trace.since().events] == [
        (FaultAction.REFUSED, 1, 0)
    ]


def test_a_passed_connection_is_left_alone() -> None:
    out, ends, trace = through(3, PAYLOAD, 1000)
    assert b"".join(c.data for c in out) == PAYLOAD
    assert ends == [] and trace.since().events == []


# --- through real sockets -------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass  # the proxy reset it


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def echo_or_reset(address: tuple[str, int]) -> int | str:
    """Bytes echoed back for PAYLOAD, or "reset"."""
    with socket.create_connection(address, timeout=10) as sock:
        sender = threading.Thread(target=_send, args=(sock,))
        sender.start()
        got = 0
        try:
            while got < len(PAYLOAD) and (data := sock.recv(65536)):
                got += len(data)
        except ConnectionResetError:
            return "reset"
        finally:
            sender.join(10)
        return got


def _send(sock: socket.socket) -> None:
    try:
        sock.sendall(PAYLOAD)
    except OSError:
        pass  # reset: the reader reports it


def test_each_connection_meets_the_fate_the_seed_gives_it(echo_port: int) -> None:
    srv = ProxyServer(port=0, seed=11, events=1000).start_in_thread()
    try:
        attrs = {"up": 2, "down": 2, "cut": 20000}
        toxic = {"name": "flap", "type": "flap", "stream": "upstream", "attributes": attrs}
        address = add_proxy(srv, "f", echo_port, [toxic])
        counter = srv.collection.get("f").counters["upstream"]
        seen: list[tuple[int | str, int]] = []
        for _ in range(10):
            before = counter.sent
            seen.append((echo_or_reset(address), counter.sent - before))
        trace = [(e.action, e.connection, e.offset, e.offset_exact) for e in events(srv)]
        listed = json.loads(call(srv, "GET", "/proxies/f/toxics").body)
    finally:
        srv.stop()
    expected = [flap_fate(11, "f", "flap", k, FlapAttributes(**attrs)) for k in range(10)]
    outcome = {R: lambda _o: ("reset", 0), P: lambda _o: (len(PAYLOAD), len(PAYLOAD))}
    outcome[C] = lambda offset: ("reset", offset)
    assert seen == [outcome[fate](offset) for fate, offset in expected]
    assert {fate for fate, _ in expected} == {R, P, C}
    fired = [
        (FaultAction.REFUSED if fate is R else FaultAction.CUT, k, offset or 0, True)
        for k, (fate, offset) in enumerate(expected)
        if fate is not P
    ]
    assert trace[1:] == fired
    assert listed[0]["attributes"] == attrs
