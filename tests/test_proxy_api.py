"""The HTTP API answers exactly as Toxiproxy 2.x does (plain HTTP, no client library)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from netfault.simulator.proxy import ProxyServer

TEXT = "text/plain; charset=utf-8"


@pytest.fixture(scope="module")
def server() -> Iterator[ProxyServer]:
    srv = ProxyServer(port=0, seed=1).start_in_thread()
    yield srv
    srv.stop_thread()


@pytest.fixture(autouse=True)
def _clean(server: ProxyServer) -> Iterator[None]:
    yield
    server.call(lambda c: c.close())


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    server: ProxyServer,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    ua: str = "netfault-tests",
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"User-Agent": ua})
    resp = conn.getresponse()
    reply = Reply(resp.status, resp.headers, resp.read())
    conn.close()
    return reply


def error_body(message: str, status: int) -> bytes:
    return json.dumps({"error": message, "status": status}, separators=(",", ":")).encode() + b"\n"


def make(server: ProxyServer, name: str, upstream: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **extra}
    reply = call(server, "POST", "/proxies", body)
    assert reply.status == 201, reply.body
    result: dict[str, Any] = reply.json()
    return result


def connect(listen: str) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def test_version_is_a_semver_so_clients_pick_patch(server: ProxyServer) -> None:
    reply = call(server, "GET", "/version")
    assert reply.status == 200
    assert reply.body == b'{"version":"2.12.0"}\n'
    assert reply.headers["Content-Type"] == "application/json;charset=utf-8"
    assert reply.headers["X-Toxiproxy-Request-Id"]


def test_browser_user_agent_is_refused_with_403(server: ProxyServer) -> None:
    reply = call(server, "GET", "/proxies", ua="Mozilla/5.0 (X11)")
    assert (reply.status, reply.body) == (403, b"User agent not allowed\n")
    assert reply.headers["X-Toxiproxy-Request-Id"]


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        pytest.param("GET", "/nope", 404, b"404 page not found\n", id="unknown-route"),
        pytest.param("DELETE", "/proxies", 405, b"", id="wrong-method-proxies"),
        pytest.param("PUT", "/version", 405, b"", id="wrong-method-version"),
        pytest.param("GET", "/metrics", 404, b"404 page not found\n", id="metrics-off"),
    ],
)
def test_unknown_routes_and_methods_answer_like_gorilla_mux(
    server: ProxyServer, method: str, path: str, status: int, body: bytes
) -> None:
    reply = call(server, method, path)
    assert (reply.status, reply.body) == (status, body)
    assert reply.headers["X-Toxiproxy-Request-Id"]


def test_create_resolves_listen_and_shows_everywhere(server: ProxyServer, echo_port: int) -> None:
    created = make(server, "echo", f"127.0.0.1:{echo_port}", listen="localhost:0")
    host, port = created["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert created == {
        "name": "echo",
        "listen": created["listen"],
        "upstream": f"127.0.0.1:{echo_port}",
        "enabled": True,
        "toxics": [],
    }
    assert call(server, "GET", "/proxies").json() == {"echo": created}
    assert call(server, "GET", "/proxies/echo").json() == created
    with connect(created["listen"]) as sock:
        sock.sendall(b"ping")
        assert sock.recv(10) == b"ping"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b'{"upstream": "127.0.0.1:1"}', "missing required field: name", id="no-name"),
        pytest.param(b'{"name": "a"}', "missing required field: upstream", id="no-upstream"),
        pytest.param(b"", "bad request body: EOF", id="empty"),
        pytest.param(
            b"{nope",
            "bad request body: invalid character 'n' looking for beginning of value",
            id="not-json",
        ),
        pytest.param(
            b'{"name": 5, "upstream": "x:1"}',
            "bad request body: json: cannot unmarshal number into Go struct field "
            "Proxy.name of type string",
            id="name-not-string",
        ),
    ],
)
def test_bad_create_is_400_with_toxiproxy_error_and_no_state_change(
    server: ProxyServer, raw: bytes, message: str
) -> None:
    reply = call(server, "POST", "/proxies", raw=raw)
    assert reply.status == 400
    assert reply.body == error_body(message, 400)
    assert reply.headers["Content-Type"] == TEXT
    assert call(server, "GET", "/proxies").json() == {}


def test_duplicate_proxy_is_409(server: ProxyServer, echo_port: int) -> None:
    first = make(server, "dup", f"127.0.0.1:{echo_port}")
    reply = call(server, "POST", "/proxies", {"name": "dup", "upstream": "127.0.0.1:9"})
    assert (reply.status, reply.body) == (409, error_body("proxy already exists", 409))
    assert call(server, "GET", "/proxies/dup").json() == first


def test_empty_listen_binds_every_interface(server: ProxyServer, echo_port: int) -> None:
    created = make(server, "any", f"127.0.0.1:{echo_port}", listen="")
    host, port = created["listen"].rsplit(":", 1)
    assert host in ("[::]", "0.0.0.0") and int(port) > 0
    with connect(f"127.0.0.1:{port}") as sock:
        sock.sendall(b"v4")
        assert sock.recv(2) == b"v4"


def test_bind_failure_is_500_with_the_os_error(server: ProxyServer, echo_port: int) -> None:
    taken = make(server, "first", f"127.0.0.1:{echo_port}")["listen"]
    reply = call(server, "POST", "/proxies", {"name": "second", "upstream": "x:1", "listen": taken})
    assert reply.status == 500
    assert reply.json()["error"] == f"listen tcp {taken}: bind: address already in use"
    assert "second" not in call(server, "GET", "/proxies").json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/proxies/ghost"),
        ("DELETE", "/proxies/ghost"),
        ("PATCH", "/proxies/ghost"),
        ("GET", "/proxies/ghost/toxics"),
        ("POST", "/proxies/ghost/toxics"),
    ],
)
def test_unknown_proxy_is_404(server: ProxyServer, method: str, path: str) -> None:
    reply = call(server, method, path, {"enabled": True})
    assert (reply.status, reply.body) == (404, error_body("proxy not found", 404))


def test_disable_closes_connections_and_refuses_new_ones(
    server: ProxyServer, echo_port: int
) -> None:
    listen = make(server, "p", f"127.0.0.1:{echo_port}")["listen"]
    sock = connect(listen)
    sock.sendall(b"a")
    assert sock.recv(1) == b"a"
    reply = call(server, "PATCH", "/proxies/p", {"enabled": False})
    assert reply.status == 200
    assert reply.json()["enabled"] is False and reply.json()["listen"] == listen
    assert sock.recv(10) == b""  # EOF
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(listen)
    assert call(server, "POST", "/proxies/p", {"enabled": True}).json()["enabled"] is True
    with connect(listen) as again:  # same resolved address again
        again.sendall(b"b")
        assert again.recv(1) == b"b"


def test_partial_update_keeps_omitted_fields_and_delete_closes(
    server: ProxyServer, echo_port: int
) -> None:
    before = make(server, "p", "127.0.0.1:1")
    sock = connect(before["listen"])
    after = call(server, "PATCH", "/proxies/p", {"upstream": f"127.0.0.1:{echo_port}"}).json()
    assert after["listen"] == before["listen"] and after["enabled"] is True
    assert after["upstream"] == f"127.0.0.1:{echo_port}"
    assert sock.recv(10) == b""  # restart dropped the connection
    sock.close()
    with connect(after["listen"]) as live:
        live.sendall(b"x")
        assert live.recv(1) == b"x"
        assert call(server, "DELETE", "/proxies/p").status == 204
        assert live.recv(1) == b""
    assert call(server, "GET", "/proxies").json() == {}


def test_upstream_unreachable_accepts_then_closes(server: ProxyServer) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        dead = free.getsockname()[1]
    listen = make(server, "dead", f"127.0.0.1:{dead}")["listen"]
    with connect(listen) as sock:
        assert sock.recv(10) == b""


def test_toxic_create_defaults_and_200(server: ProxyServer, echo_port: int) -> None:
    make(server, "p", f"127.0.0.1:{echo_port}")
    reply = call(server, "POST", "/proxies/p/toxics", {"type": "latency"})
    assert reply.status == 200
    assert reply.json() == {
        "attributes": {"latency": 0, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    upper = {"type": "slicer", "stream": "UPSTREAM", "attributes": {"delay": 5, "junk": 1}}
    created = call(server, "POST", "/proxies/p/toxics", upper).json()
    assert created["name"] == "slicer_UPSTREAM" and created["stream"] == "UPSTREAM"
    assert created["attributes"] == {"average_size": 0, "size_variation": 0, "delay": 5}
    listed = call(server, "GET", "/proxies/p/toxics").json()
    assert [t["name"] for t in listed] == ["slicer_UPSTREAM", "latency_downstream"]
    shown = call(server, "GET", "/proxies/p/toxics/latency_downstream")
    assert shown.json() == reply.json()
    assert call(server, "GET", "/proxies/p").json()["toxics"] == listed


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(
            {"type": "latency", "stream": "sideways"},
            400,
            "stream was invalid, can be either upstream or downstream",
            id="bad-stream",
        ),
        pytest.param({"type": "nope"}, 400, "invalid toxic type", id="bad-type"),
        pytest.param({"type": "latency", "name": "lat"}, 409, "toxic already exists", id="dup"),
        pytest.param(
            {"type": "latency", "name": "dup2", "stream": "upstream"},
            409,
            "toxic already exists",
            id="dup-other-stream",
        ),
        pytest.param(
            {"type": "latency", "name": "x", "attributes": {"latency": "slow"}},
            400,
            "bad request body: json: cannot unmarshal string into Go struct field "
            "LatencyToxic.attributes.latency of type int64",
            id="attr-type",
        ),
        pytest.param(
            {"type": "latency", "toxicity": "high"},
            400,
            "bad request body: json: cannot unmarshal string into Go struct field "
            "ToxicWrapper.toxicity of type float32",
            id="toxicity-type",
        ),
    ],
)
def test_bad_toxic_is_rejected_with_no_state_change(
    server: ProxyServer, echo_port: int, body: dict[str, Any], status: int, message: str
) -> None:
    make(server, "p", f"127.0.0.1:{echo_port}")
    call(server, "POST", "/proxies/p/toxics", {"type": "noop", "name": "lat"})
    call(server, "POST", "/proxies/p/toxics", {"type": "noop", "name": "dup2"})
    before = call(server, "GET", "/proxies/p/toxics").json()
    reply = call(server, "POST", "/proxies/p/toxics", body)
    assert (reply.status, reply.body) == (status, error_body(message, status))
    assert call(server, "GET", "/proxies/p/toxics").json() == before


def test_toxic_update_merges_attributes_and_keeps_toxicity(
    server: ProxyServer, echo_port: int
) -> None:
    make(server, "p", f"127.0.0.1:{echo_port}")
    body = {"type": "latency", "name": "lat", "toxicity": 0.5, "attributes": {"latency": 10}}
    call(server, "POST", "/proxies/p/toxics", body)
    patched = call(server, "PATCH", "/proxies/p/toxics/lat", {"attributes": {"jitter": 3}})
    assert patched.status == 200
    assert patched.json()["attributes"] == {"latency": 10, "jitter": 3}
    assert patched.json()["toxicity"] == 0.5
    posted = call(server, "POST", "/proxies/p/toxics/lat", {"toxicity": 1.0, "type": "noop"})
    assert posted.json()["toxicity"] == 1 and posted.json()["type"] == "latency"
    bad = call(server, "PATCH", "/proxies/p/toxics/lat", {"attributes": {"jitter": 1.5}})
    assert bad.status == 400
    assert call(server, "GET", "/proxies/p/toxics/lat").json()["attributes"]["jitter"] == 3


def test_toxic_not_found_and_delete(server: ProxyServer, echo_port: int) -> None:
    make(server, "p", f"127.0.0.1:{echo_port}")
    missing = error_body("toxic not found", 404)
    for method in ("GET", "PATCH", "DELETE"):
        reply = call(server, method, "/proxies/p/toxics/ghost", {})
        assert (reply.status, reply.body) == (404, missing)
    call(server, "POST", "/proxies/p/toxics", {"type": "noop"})
    assert call(server, "DELETE", "/proxies/p/toxics/noop_downstream").status == 204
    assert call(server, "GET", "/proxies/p/toxics").json() == []


def test_reset_reenables_and_removes_toxics_keeping_proxies(
    server: ProxyServer, echo_port: int
) -> None:
    make(server, "a", f"127.0.0.1:{echo_port}", enabled=False)
    make(server, "b", f"127.0.0.1:{echo_port}")
    call(server, "POST", "/proxies/b/toxics", {"type": "latency"})
    assert call(server, "POST", "/reset").status == 204
    state = call(server, "GET", "/proxies").json()
    assert sorted(state) == ["a", "b"]
    assert all(p["enabled"] and p["toxics"] == [] for p in state.values())


def test_populate_validates_everything_first(server: ProxyServer, echo_port: int) -> None:
    entries = [{"name": "ok", "upstream": f"127.0.0.1:{echo_port}"}, {"upstream": "x:1"}]
    reply = call(server, "POST", "/populate", entries)
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == {
        "error": "missing required field: name at proxy 2",
        "status": 400,
        "proxies": None,
    }
    assert call(server, "GET", "/proxies").json() == {}


def test_populate_keeps_unchanged_replaces_changed_and_leaves_others(
    server: ProxyServer, echo_port: int
) -> None:
    up = f"127.0.0.1:{echo_port}"
    kept = make(server, "kept", up)
    call(server, "POST", "/proxies/kept/toxics", {"type": "noop"})
    make(server, "other", up)
    make(server, "moved", "127.0.0.1:1")
    entries = [
        {
            "name": "new",
            "upstream": up,
            "listen": "127.0.0.1:0",
            "toxics": [{"type": "latency", "attributes": {"latency": 5}}],
        },
        {"name": "kept", "upstream": up, "listen": kept["listen"]},
        {"name": "moved", "upstream": up, "listen": "127.0.0.1:0"},
    ]
    reply = call(server, "POST", "/populate", entries)
    assert reply.status == 201
    listed = reply.json()["proxies"]
    assert [p["name"] for p in listed] == ["new", "kept", "moved"]
    state = call(server, "GET", "/proxies").json()
    assert sorted(state) == ["kept", "moved", "new", "other"]
    assert state["kept"]["toxics"][0]["name"] == "noop_downstream"
    assert state["moved"]["upstream"] == up
    assert state["new"]["toxics"][0]["attributes"] == {"latency": 5, "jitter": 0}


def test_populate_bad_body_and_bad_toxic(server: ProxyServer) -> None:
    reply = call(server, "POST", "/populate", raw=b"{}")
    assert reply.status == 400 and reply.json()["proxies"] is None
    entries = [{"name": "a", "upstream": "x:1", "toxics": [{"type": "nope"}]}]
    reply = call(server, "POST", "/populate", entries)
    assert reply.json() == {
        "error": "invalid toxic type at proxy 1",
        "status": 400,
        "proxies": None,
    }
    assert call(server, "GET", "/proxies").json() == {}


def test_metrics_count_bytes_per_direction(echo_port: int) -> None:
    srv = ProxyServer(port=0, seed=1, metrics=True).start_in_thread()
    try:
        listen = make(srv, "m", f"127.0.0.1:{echo_port}")["listen"]
        with connect(listen) as sock:
            sock.sendall(b"12345")
            assert sock.recv(5) == b"12345"
        text = call(srv, "GET", "/metrics").body.decode()
        line = (
            f'toxiproxy_proxy_sent_bytes_total{{direction="downstream",listener="{listen}",'
            f'proxy="m",upstream="127.0.0.1:{echo_port}"}} 5'
        )
        assert line in text
    finally:
        srv.stop_thread()
