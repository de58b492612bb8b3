"""Fault events through real sockets: GET /events, the in-process hook, determinism by seed."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from netfault.simulator.proxy import ProxyServer
from netfault.simulator.proxy.trace import FaultAction, FaultEvent

PAYLOAD = bytes(range(256)) * 256  # 64 KiB
A = FaultAction


class Api(Protocol):
    """A proxy server's API address: a ProxyServer, or a netfault-proxy process."""

    @property
    def api_url(self) -> str: ...


@dataclass
class Process:
    api_url: str


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def call(srv: Api, method: str, path: str, body: Any = None) -> Reply:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(srv.api_url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return Reply(reply.status, dict(reply.headers), reply.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers), exc.read())


def events(srv: Api, since: int = 0, proxy: str | None = None) -> list[FaultEvent]:
    query = f"?since={since}" + (f"&proxy={proxy}" if proxy else "")
    reply = call(srv, "GET", "/events" + query)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/x-ndjson"
    return [FaultEvent.from_json(json.loads(line)) for line in reply.body.splitlines()]


def add_proxy(srv: Api, name: str, upstream: int, toxics: list[Any]) -> tuple[str, int]:
    entry = {
        "name": name,
        "upstream": f"127.0.0.1:{upstream}",
        "listen": "127.0.0.1:0",
        "toxics": toxics,
    }
    reply = call(srv, "POST", "/populate", [entry])
    assert reply.status == 201, reply.body
    host, port = json.loads(reply.body)["proxies"][0]["listen"].rsplit(":", 1)
    return host, int(port)


def send_all(sock: socket.socket, payload: bytes) -> None:
    try:
        sock.sendall(payload)
    except OSError:
        pass  # the proxy cut the connection: what came back is what the test checks


def echo_through(address: tuple[str, int], payload: bytes) -> bytes:
    """Send `payload`, read back until the proxy closes or as many bytes came back."""
    with socket.create_connection(address, timeout=10) as sock:
        sender = threading.Thread(target=send_all, args=(sock, payload))
        sender.start()
        out = bytearray()
        try:
            while len(out) < len(payload):
                data = sock.recv(65536)
                if not data:
                    break
                out += data
        finally:
            sender.join(10)
        return bytes(out)


@pytest.fixture
def server() -> Iterator[ProxyServer]:
    srv = ProxyServer(port=0, seed=7, events=10_000).start_in_thread()
    yield srv
    srv.stop()


def corrupt_run(seed: int, echo_port: int) -> tuple[bytes, list[FaultEvent]]:
    """PAYLOAD echoed through a fresh server: limit_data, then corrupt, downstream.

    (A corrupt toxic before the cut would also damage, and report, whatever part of the
    read that crossed the limit it saw: a chunking-dependent tail.)
    """
    srv = ProxyServer(port=0, seed=seed, events=10_000).start_in_thread()
    try:
        toxics = [
            {"name": "cap", "type": "limit_data", "attributes": {"bytes": 40000}},
            {"name": "bits", "type": "corrupt", "attributes": {"probability": 0.01}},
        ]
        address = add_proxy(srv, "c", echo_port, toxics)
        return echo_through(address, PAYLOAD), events(srv)
    finally:
        srv.stop()


def test_same_seed_same_decisions_different_seed_other_flips(echo_port: int) -> None:
    got, first = corrupt_run(7, echo_port)
    _, again = corrupt_run(7, echo_port)
    _, other = corrupt_run(8, echo_port)
    assert len(got) == 40000  # what limit_data let through
    flips = [(e.offset, e.bit) for e in first if e.action is A.BIT_FLIPPED]
    damaged = [
        (i, (a ^ b).bit_length() - 1)
        for i, (a, b) in enumerate(zip(PAYLOAD, got, strict=False))
        if a != b
    ]
    assert flips == damaged and len(flips) > 300
    assert [e.decision() for e in first] == [e.decision() for e in again]
    assert {(e.offset, e.bit) for e in other if e.action is A.BIT_FLIPPED} != set(flips)
    limit = [
        (e.direction, e.connection, e.offset, e.offset_exact)
        for e in first
        if e.action is A.LIMIT_REACHED
    ]
    assert limit == [("downstream", 0, 40000, True)]
    assert [e.seq for e in first] == list(range(1, len(first) + 1))


def test_reset_peer_says_its_landing_offset_is_timing_dependent(
    server: ProxyServer, echo_port: int
) -> None:
    toxic = {
        "name": "rst",
        "type": "reset_peer",
        "stream": "upstream",
        "attributes": {"timeout": 50},
    }
    address = add_proxy(server, "r", echo_port, [toxic])
    with pytest.raises(ConnectionResetError):
        echo_through(address, PAYLOAD)
    fired = [(e.action, e.offset, e.offset_exact) for e in events(server) if e.connection == 0]
    assert fired[0] == (A.RESET_ARMED, 0, True)
    assert [(action, exact) for action, _, exact in fired[1:]] == [(A.RESET, False)]


def reset_run(seed: int, echo_port: int) -> list[FaultEvent]:
    srv = ProxyServer(port=0, seed=seed, events=10_000).start_in_thread()
    try:
        toxic = {"name": "rst", "type": "reset_peer", "attributes": {"timeout": 20}}
        address = add_proxy(srv, "r", echo_port, [toxic])
        with pytest.raises(ConnectionResetError):
            echo_through(address, PAYLOAD)
        return events(srv)
    finally:
        srv.stop()


def test_reset_peer_decisions_repeat_with_the_seed(echo_port: int) -> None:
    first, again = reset_run(3, echo_port), reset_run(3, echo_port)
    assert [e.decision() for e in first] == [e.decision() for e in again]
    assert [e.action for e in first] == [A.TOXIC_ADDED, A.RESET_ARMED, A.RESET]
    assert "offset" not in dict(first[-1].decision()) and not first[-1].offset_exact


def test_a_toxic_added_to_an_open_connection_reports_inexact_offsets(
    server: ProxyServer, echo_port: int
) -> None:
    address = add_proxy(server, "late", echo_port, [])
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"  # the connection is open end to end
        toxic = {"name": "cut", "type": "limit_data", "attributes": {"bytes": 5}}
        assert call(server, "POST", "/proxies/late/toxics", toxic).status == 200
        sock.sendall(b"0123456789")
        out = bytearray()
        while data := sock.recv(100):
            out += data
    assert bytes(out) == b"01234"
    got = [(e.action, e.connection, e.offset, e.offset_exact) for e in events(server)]
    assert got == [(A.TOXIC_ADDED, None, None, True), (A.LIMIT_REACHED, 0, 5, False)]


def test_events_since_a_cursor_and_for_one_proxy(server: ProxyServer, echo_port: int) -> None:
    toxic = {"name": "mark", "type": "corrupt", "attributes": {"rewrite": {"0": 65}}}
    one = add_proxy(server, "one", echo_port, [toxic])
    two = add_proxy(server, "two", echo_port, [toxic])
    assert echo_through(one, b"xyz") == b"Ayz"
    reply = call(server, "GET", "/events")
    cursor = int(reply.headers["X-Netfault-Events-Cursor"])
    assert echo_through(two, b"xyz") == b"Ayz"
    newer = events(server, since=cursor)
    assert [(e.proxy, e.action, e.offset, e.value) for e in newer if e.connection == 0] == [
        ("two", A.BYTE_REWRITTEN, 0, 65)
    ]
    assert {e.proxy for e in events(server, proxy="one")} == {"one"}
    assert [e.action for e in server.collection.get("two").fault_events()] == [
        A.TOXIC_ADDED,
        A.BYTE_REWRITTEN,
    ]


def test_an_events_line_is_the_documented_json_object(server: ProxyServer, echo_port: int) -> None:
    toxic = {"name": "mark", "type": "corrupt", "attributes": {"rewrite": {"1": 65}}}
    address = add_proxy(server, "doc", echo_port, [toxic])
    assert echo_through(address, b"xyz") == b"xAz"
    lines = call(server, "GET", "/events").body.splitlines()
    rewritten = [json.loads(line) for line in lines][-1]
    assert rewritten == {
        "seq": 2,
        "time": rewritten["time"],
        "action": "byte_rewritten",
        "proxy": "doc",
        "toxic": "mark",
        "toxic_type": "corrupt",
        "direction": "downstream",
        "connection": 0,
        "offset": 1,
        "offset_exact": True,
        "bit": None,
        "value": 65,
        "mode": None,
        "delay_ms": None,
    }
    assert isinstance(rewritten["time"], float)
    assert FaultEvent.from_json(rewritten).to_json() == rewritten


def test_switching_a_proxy_off_and_on_is_an_event_without_a_toxic(
    server: ProxyServer, echo_port: int
) -> None:
    add_proxy(server, "sw", echo_port, [])
    for enabled in (False, False, True):  # the second "off" changes nothing: no event
        assert call(server, "POST", "/proxies/sw", {"enabled": enabled}).status == 200
    lines = [json.loads(line) for line in call(server, "GET", "/events").body.splitlines()]
    assert [{k: v for k, v in e.items() if k != "time"} for e in lines] == [
        {
            "seq": seq,
            "action": action,
            "proxy": "sw",
            "toxic": None,
            "toxic_type": None,
            "direction": None,
            "connection": None,
            "offset": None,
            "offset_exact": True,
            "bit": None,
            "value": None,
            "mode": None,
            "delay_ms": None,
        }
        for seq, action in ((1, "proxy_disabled"), (2, "proxy_enabled"))
    ]
    assert [FaultEvent.from_json(e).action for e in lines] == [
        A.PROXY_DISABLED,
        A.PROXY_ENABLED,
    ]


def test_recording_is_off_until_asked(echo_port: int) -> None:
    srv = ProxyServer(port=0, seed=1).start_in_thread()
    try:
        off = call(srv, "GET", "/events")
        assert off.status == 409
        assert b"fault events are not recorded" in off.body and b"-events N" in off.body
        assert call(srv, "POST", "/events", {"capacity": -1}).status == 400
        assert call(srv, "POST", "/events", {"capacity": 100}).status == 204
        assert call(srv, "GET", "/events?since=x").status == 400
        toxic = {"name": "mark", "type": "corrupt", "attributes": {"rewrite": {"1": 65}}}
        address = add_proxy(srv, "p", echo_port, [toxic])
        assert echo_through(address, b"xyz") == b"xAz"
        assert [e.action for e in events(srv)] == [A.TOXIC_ADDED, A.BYTE_REWRITTEN]
    finally:
        srv.stop()


def test_a_subscriber_on_another_thread_sees_each_decision(
    server: ProxyServer, echo_port: int
) -> None:
    seen: list[FaultEvent] = []
    done = threading.Event()

    def listener(event: FaultEvent) -> None:
        seen.append(event)
        if event.action is A.LIMIT_REACHED:
            done.set()

    unsubscribe = server.collection.subscribe(listener)
    toxic = {"name": "cap", "type": "limit_data", "attributes": {"bytes": 3}}
    address = add_proxy(server, "s", echo_port, [toxic])
    assert echo_through(address, b"abcdef") == b"abc"
    assert done.wait(10)
    unsubscribe()
    assert [(e.action, e.offset) for e in seen] == [(A.TOXIC_ADDED, None), (A.LIMIT_REACHED, 3)]
    assert [e.seq for e in server.collection.fault_events()] == [e.seq for e in seen]


def test_netfault_proxy_records_from_the_start_with_the_events_flag(echo_port: int) -> None:
    cmd = [sys.executable, "-m", "netfault.simulator.proxy.cli", "-host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "-port", "0", "-events", "50"], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        match = re.search(r"(http://\S+) ", proc.stderr.readline())
        assert match, "netfault-proxy did not print its API address"
        srv = Process(match.group(1))
        toxic = {"name": "cap", "type": "limit_data", "attributes": {"bytes": 2}}
        address = add_proxy(srv, "p", echo_port, [toxic])
        assert echo_through(address, b"abc") == b"ab"
        got = [(e.action, e.offset) for e in events(srv)]
        assert got == [(A.TOXIC_ADDED, None), (A.LIMIT_REACHED, 2)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_toxicity_skips_and_updates_are_events_too(server: ProxyServer, echo_port: int) -> None:
    toxic = {
        "name": "mark",
        "type": "corrupt",
        "toxicity": 0.0,
        "attributes": {"rewrite": {"5": 65}},
    }
    address = add_proxy(server, "t", echo_port, [toxic])
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"0123")
        assert sock.recv(4) == b"0123"  # the draw left the toxic inactive
        reply = call(server, "POST", "/proxies/t/toxics/mark", {"toxicity": 1.0})
        assert reply.status == 200, reply.body
        sock.sendall(b"456789ab")
        out = bytearray()
        while len(out) < 8:
            out += sock.recv(8 - len(out))
    # the toxic counts from its activation: its offset 5 is the stream's offset 9
    assert bytes(out) == b"45678Aab"
    got = [(e.action, e.connection, e.offset, e.offset_exact) for e in events(server)]
    assert got == [
        (A.TOXIC_ADDED, None, None, True),
        (A.TOXIC_SKIPPED, 0, None, True),
        (A.TOXIC_UPDATED, None, None, True),
        (A.BYTE_REWRITTEN, 0, 5, False),
    ]


def test_a_small_ring_says_how_many_events_it_overwrote(
    server: ProxyServer, echo_port: int
) -> None:
    assert call(server, "POST", "/events", {"capacity": 2}).status == 204
    toxic = {"name": "mark", "type": "corrupt", "attributes": {"rewrite": {"0": 65, "1": 66}}}
    address = add_proxy(server, "small", echo_port, [toxic])
    assert echo_through(address, b"xyz") == b"ABz"
    assert echo_through(address, b"xyz") == b"ABz"
    reply = call(server, "GET", "/events?since=0")
    kept = [FaultEvent.from_json(json.loads(line)) for line in reply.body.splitlines()]
    assert [(e.seq, e.connection, e.offset) for e in kept] == [(4, 1, 0), (5, 1, 1)]
    assert reply.headers["X-Netfault-Events-Cursor"] == "5"
    assert reply.headers["X-Netfault-Events-Dropped"] == "3"  # toxic_added and connection 0's


def test_a_toxic_with_connections_joins_that_many_then_expires(
    server: ProxyServer, echo_port: int
) -> None:
    toxic = {"name": "cut", "type": "limit_data", "attributes": {"bytes": 10}, "connections": 2}
    address = add_proxy(server, "twice", echo_port, [toxic])
    listed = json.loads(call(server, "GET", "/proxies/twice/toxics").body)
    assert listed[0]["connections"] == 2

    got = [len(echo_through(address, PAYLOAD)) for _ in range(3)]

    assert got == [10, 10, len(PAYLOAD)]  # the third connection passes untouched
    assert json.loads(call(server, "GET", "/proxies/twice/toxics").body) == []
    seen = [(e.action, e.connection) for e in events(server)]
    assert seen == [
        (A.TOXIC_ADDED, None),
        (A.LIMIT_REACHED, 0),
        (A.TOXIC_EXPIRED, 1),  # it left the proxy as it joined its last connection...
        (A.LIMIT_REACHED, 1),  # ...which keeps it
    ]
    # clearing it by hand afterwards finds nothing: it is gone, as Toxiproxy says of any
    assert call(server, "DELETE", "/proxies/twice/toxics/cut").status == 404


@pytest.mark.parametrize("count", [0, -1, "2", 1.5])
def test_connections_must_be_a_whole_number_from_one(
    server: ProxyServer, echo_port: int, count: object
) -> None:
    add_proxy(server, "bad", echo_port, [])
    toxic = {"type": "latency", "connections": count}
    reply = call(server, "POST", "/proxies/bad/toxics", toxic)
    assert reply.status == 400, reply.body
    assert b"connections" in reply.body
