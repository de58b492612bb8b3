"""Each toxic's effect on real loopback sockets, set up through toxiproxy-python."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.proxy import Proxy as ClientProxy

from netfault.simulator.proxy import ProxyServer


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except ConnectionResetError:
            pass  # reset_peer resets both sides, as Toxiproxy does


class _ByeAndClose(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"bye")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    yield from _serve(_Echo)


@pytest.fixture(scope="module")
def bye_port() -> Iterator[int]:
    yield from _serve(_ByeAndClose)


@pytest.fixture(scope="module")
def toxiproxy() -> Iterator[Toxiproxy]:
    srv = ProxyServer(port=0, seed=3).start_in_thread()
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", srv.port)
    yield client
    srv.stop_thread()


@pytest.fixture(autouse=True)
def _clean(toxiproxy: Toxiproxy) -> Iterator[None]:
    yield
    toxiproxy.destroy_all()


@pytest.fixture
def echo(toxiproxy: Toxiproxy, echo_port: int) -> ClientProxy:
    return toxiproxy.create(upstream=f"127.0.0.1:{echo_port}", name="echo")


def connect(proxy: ClientProxy) -> socket.socket:
    host, port = proxy.listen.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        data = sock.recv(size - len(out))
        if not data:
            break
        out += data
    return bytes(out)


def recv_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while data := sock.recv(65536):
        out += data
    return bytes(out)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start


def test_client_library_sees_the_api_it_expects(toxiproxy: Toxiproxy, echo_port: int) -> None:
    assert toxiproxy.running()
    assert b"2.12.0" in toxiproxy.version()
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{echo_port}", name="lib")
    assert set(toxiproxy.proxies()) == {"lib"}
    assert toxiproxy.get_proxy("lib").upstream == f"127.0.0.1:{echo_port}"
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream="127.0.0.1:1", name="lib")
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no-such-toxic")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", attributes={"latency": 1})
    assert proxy.get_toxic("latency_downstream").attributes == {"latency": 1, "jitter": 0}
    assert proxy.destroy_toxic("latency_downstream")
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")
    with proxy.down():
        assert toxiproxy.get_proxy("lib").enabled is False
    assert toxiproxy.get_proxy("lib").enabled is True
    assert toxiproxy.reset()
    made = toxiproxy.populate([{"name": "pop", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"}])
    assert [p.name for p in made] == ["pop"]
    toxiproxy.destroy(proxy)
    assert set(toxiproxy.proxies()) == {"pop"}


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_each_direction(echo: ClientProxy, stream: str) -> None:
    with connect(echo) as sock:
        echo.add_toxic(type="latency", stream=stream, attributes={"latency": 150})
        assert round_trip(sock) >= 0.15


def test_stacked_latency_adds_up_and_toxicity_zero_does_nothing(echo: ClientProxy) -> None:
    echo.add_toxic(name="a", type="latency", attributes={"latency": 100})
    echo.add_toxic(name="b", type="latency", stream="upstream", attributes={"latency": 100})
    # would drop every byte if it were active
    echo.add_toxic(name="c", type="timeout", toxicity=0.0, attributes={"timeout": 0})
    with connect(echo) as sock:
        assert round_trip(sock) >= 0.2


def test_live_changes_apply_to_open_connections(echo: ClientProxy) -> None:
    with connect(echo) as sock:
        round_trip(sock)
        echo.add_toxic(name="lat", type="latency", attributes={"latency": 200})
        assert round_trip(sock) >= 0.2
        echo.add_toxic(name="lat2", type="latency", attributes={"latency": 200})
        assert round_trip(sock) >= 0.4
        echo.destroy_toxic("lat2")
        echo.destroy_toxic("lat")
        echo.add_toxic(name="cut", type="limit_data", attributes={"bytes": 2})
        sock.sendall(b"ping")  # the new toxic applies to the open connection at once
        assert recv_all(sock) == b"pi"


def test_live_update_through_patch(toxiproxy: Toxiproxy, echo: ClientProxy) -> None:
    import requests

    echo.add_toxic(name="lat", type="latency", attributes={"latency": 10})
    with connect(echo) as sock:
        url = f"http://127.0.0.1:{toxiproxy_port(toxiproxy)}/proxies/echo/toxics/lat"
        reply = requests.patch(url, json={"attributes": {"latency": 200}}, timeout=5)
        assert reply.status_code == 200
        assert round_trip(sock) >= 0.2


def test_zero_latency_then_patched_latency_on_an_open_connection(
    toxiproxy: Toxiproxy, echo: ClientProxy
) -> None:
    """A latency=0 toxic passes bytes straight on; patching it live makes it delay again,
    and a noop stacked before it does not stop that."""
    import requests

    echo.add_toxic(name="nop", type="noop", attributes={})
    echo.add_toxic(name="lat", type="latency", attributes={"latency": 0})
    with connect(echo) as sock:
        round_trip(sock, b"one")
        url = f"http://127.0.0.1:{toxiproxy_port(toxiproxy)}/proxies/echo/toxics/lat"
        reply = requests.patch(url, json={"attributes": {"latency": 200}}, timeout=5)
        assert reply.status_code == 200
        assert round_trip(sock, b"two") >= 0.2
        reply = requests.patch(url, json={"attributes": {"latency": 0, "jitter": 150}}, timeout=5)
        assert reply.status_code == 200
        sock.sendall(b"".join(b"%04d" % i for i in range(200)))  # order kept under jitter
        assert recv_exactly(sock, 800) == b"".join(b"%04d" % i for i in range(200))


def toxiproxy_port(client: Toxiproxy) -> int:
    from toxiproxy.api import APIConsumer

    return int(APIConsumer.port)


def test_bandwidth_limits_rate(echo: ClientProxy) -> None:
    echo.add_toxic(type="bandwidth", attributes={"rate": 400})  # 400 KB/s
    payload = bytes(range(256)) * 400  # 102,400 bytes -> at least 0.256 s
    with connect(echo) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert time.monotonic() - start >= 0.25


def test_reset_peer_is_seen_as_econnreset(echo: ClientProxy) -> None:
    echo.add_toxic(type="reset_peer", attributes={"timeout": 50})
    with connect(echo) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)


def test_limit_data_passes_exact_byte_count_then_closes(echo: ClientProxy) -> None:
    echo.add_toxic(type="limit_data", attributes={"bytes": 1000})
    with connect(echo) as sock:
        sock.sendall(b"x" * 5000)
        assert recv_all(sock) == b"x" * 1000


def test_timeout_drops_data_and_closes_after_timeout(echo: ClientProxy) -> None:
    with connect(echo) as sock:
        start = time.monotonic()
        echo.add_toxic(type="timeout", attributes={"timeout": 150})
        sock.sendall(b"lost")
        assert recv_all(sock) == b""
        assert time.monotonic() - start >= 0.15


def test_timeout_zero_holds_until_removed(echo: ClientProxy) -> None:
    echo.add_toxic(type="timeout", attributes={"timeout": 0})
    with connect(echo) as sock:
        sock.sendall(b"held")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(5)
        echo.destroy_toxic("timeout_downstream")
        assert recv_all(sock) == b""  # removing a timeout toxic closes the connection


def test_slicer_cuts_data_into_small_delayed_pieces(echo: ClientProxy) -> None:
    echo.add_toxic(
        type="slicer", attributes={"average_size": 10, "size_variation": 0, "delay": 30000}
    )
    with connect(echo) as sock:
        start = time.monotonic()
        sock.sendall(b"s" * 80)
        first = sock.recv(100)
        assert 0 < len(first) <= 10
        rest = recv_exactly(sock, 80 - len(first))
        assert first + rest == b"s" * 80
        assert time.monotonic() - start >= 7 * 0.03


def test_slow_close_delays_the_eof(toxiproxy: Toxiproxy, bye_port: int) -> None:
    proxy = toxiproxy.create(upstream=f"127.0.0.1:{bye_port}", name="bye")
    proxy.add_toxic(type="slow_close", attributes={"delay": 200})
    with connect(proxy) as sock:
        start = time.monotonic()
        assert recv_exactly(sock, 3) == b"bye"
        assert sock.recv(10) == b""
        assert time.monotonic() - start >= 0.2


def test_noop_both_streams_passes_a_mebibyte_unchanged(echo: ClientProxy) -> None:
    echo.add_toxic(type="noop", stream="upstream")
    echo.add_toxic(type="noop", stream="downstream")
    payload = bytes(range(256)) * 4096
    with connect(echo) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exactly(sock, len(payload)) == payload
        sender.join(5)


def test_half_close_is_forwarded(echo: ClientProxy) -> None:
    with connect(echo) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"last words"
