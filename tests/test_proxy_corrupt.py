"""The corrupt toxic and seeding: the same seed gives the same damage, whatever the chunking."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netfault.simulator.proxy import ProxyServer, make_toxic
from netfault.simulator.proxy.toxics import Chunk, CorruptAttributes, CorruptToxic, ToxicState

PAYLOAD = bytes(range(256)) * 256  # 64 KiB


def _post(srv: ProxyServer, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        srv.api_url + path, data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def through_fresh_server(seed: int, echo_port: int, attributes: dict[str, Any]) -> bytes:
    """PAYLOAD echoed through a new server's first connection with a corrupt toxic."""
    srv = ProxyServer(port=0, seed=seed).start_in_thread()
    try:
        entry = {
            "name": "c",
            "upstream": f"127.0.0.1:{echo_port}",
            "listen": "127.0.0.1:0",
            "toxics": [{"type": "corrupt", "attributes": attributes}],
        }
        listen = _post(srv, "/populate", [entry])["proxies"][0]["listen"]
        host, port = listen.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sender = threading.Thread(target=sock.sendall, args=(PAYLOAD,))
            sender.start()
            out = bytearray()
            while len(out) < len(PAYLOAD):
                data = sock.recv(65536)
                if not data:
                    break
                out += data
            sender.join(5)
        return bytes(out)
    finally:
        srv.stop()


def test_same_seed_same_bytes_different_seed_different(echo_port: int) -> None:
    attributes = {"probability": 0.01}
    first = through_fresh_server(7, echo_port, attributes)
    again = through_fresh_server(7, echo_port, attributes)
    other = through_fresh_server(8, echo_port, attributes)
    assert len(first) == len(PAYLOAD)
    assert first == again
    assert first != PAYLOAD and other != PAYLOAD and first != other
    flipped = sum(a != b for a, b in zip(first, PAYLOAD, strict=True))
    assert 300 < flipped < 1100  # about 1% of 65,536, bit flips only
    for a, b in zip(first, PAYLOAD, strict=True):
        assert bin(a ^ b).count("1") <= 1


def test_rewrite_strip_and_crlf_through_a_socket(echo_port: int) -> None:
    got = through_fresh_server(1, echo_port, {"rewrite": {"3": 0x41, "70000": 1}})
    assert got[3] == 0x41 and got[:3] + got[4:] == PAYLOAD[:3] + PAYLOAD[4:]


class FakeLink:
    """Just enough LinkContext for the corrupt toxic."""

    seed = 11
    proxy = "p"
    conn = 0
    direction = "downstream"

    def now(self) -> float:
        return 0.0

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        raise AssertionError("corrupt needs no timer")

    def close(self) -> None:
        raise AssertionError("corrupt never closes")

    def reset(self) -> None:
        raise AssertionError("corrupt never resets")


def run_chunks(toxic: CorruptToxic, data: bytes, cuts: list[int]) -> bytes:
    state = ToxicState(name="corrupt_downstream")
    out = bytearray()
    bounds = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        if start == end:
            continue
        for chunk in toxic.transform(Chunk(data[start:end], 0.0), FakeLink(), state):
            out += chunk.data
        state.offset += end - start
    return bytes(out)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=20000), cuts=st.lists(st.integers(0, 20000)))
def test_damage_does_not_depend_on_chunking(data: bytes, cuts: list[int]) -> None:
    toxic = CorruptToxic(CorruptAttributes(probability=0.05, rewrite={"0": 7, "4096": 9}))
    assert run_chunks(toxic, data, cuts) == run_chunks(toxic, data, [])


def test_text_middlebox_modes() -> None:
    strip = CorruptToxic(CorruptAttributes(strip_high_bit=True))
    assert run_chunks(strip, bytes([0x80, 0xFF, 0x41]), []) == bytes([0x00, 0x7F, 0x41])
    crlf = CorruptToxic(CorruptAttributes(lf_to_crlf=True))
    assert run_chunks(crlf, b"a\nb\n", [2]) == b"a\r\nb\r\n"


def test_probability_one_flips_every_byte_and_zero_none() -> None:
    data = bytes(5000)
    every = run_chunks(CorruptToxic(CorruptAttributes(probability=1.0)), data, [100])
    assert all(bin(b).count("1") == 1 for b in every)
    assert run_chunks(CorruptToxic(CorruptAttributes(probability=0.0)), data, []) == data


@pytest.mark.parametrize(
    "attributes",
    [
        pytest.param({"probability": "high"}, id="probability-string"),
        pytest.param({"rewrite": {"x": 1}}, id="rewrite-bad-offset"),
        pytest.param({"rewrite": {"1": 256}}, id="rewrite-bad-byte"),
        pytest.param({"strip_high_bit": 1}, id="strip-not-bool"),
    ],
)
def test_bad_corrupt_attributes_are_rejected(attributes: dict[str, Any]) -> None:
    from netfault.simulator.proxy import ApiError

    with pytest.raises(ApiError) as caught:
        make_toxic("corrupt", attributes=attributes)
    assert caught.value.status == 400
    assert caught.value.message.startswith("bad request body: json: cannot unmarshal")
