"""Fault proxy throughput and round trip, against direct loopback in the same run.

The proxy runs as its own process (`netfault-proxy`, as in a fake cluster); the sender and
the sink/echo server run in this process, so direct and proxied runs share their costs.
Prints one JSON object as the last line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

STREAM_BYTES = int(os.environ.get("BENCH_PROXY_BYTES", 512 << 20))
BLOCK = 1 << 20
ROUND_TRIPS = 2000
TARGET_MBPS = 1000.0  # the real Toxiproxy moved 530-913 MB/s on these machines
TARGET_RATIO = 0.8  # issue 4: throughput >= 0.8x direct
TARGET_ADDED_P50_US = 50.0  # issue 4: Toxiproxy adds about 54 us


class Sink:
    """Accepts connections and counts bytes until EOF; `done` fires per connection."""

    def __init__(self, echo: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.echo = echo
        self.received = 0
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray(BLOCK)
        view = memoryview(buf)
        total = 0
        with conn:
            while n := conn.recv_into(view):
                total += n
                if self.echo:
                    conn.sendall(view[:n])
        self.received = total
        self.done.set()


def stream(port: int) -> float:
    """MB/s sending STREAM_BYTES to a sink on `port` (time until the sink has every byte)."""
    sink_done = SINKS[port].done
    sink_done.clear()
    block = memoryview(os.urandom(BLOCK))
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for _ in range(STREAM_BYTES // BLOCK):
            sock.sendall(block)
    if not sink_done.wait(60):
        raise RuntimeError("sink did not see EOF")
    elapsed = time.perf_counter() - start
    assert SINKS[port].received == STREAM_BYTES, SINKS[port].received
    return STREAM_BYTES / elapsed / 1e6


def round_trip_us(port: int) -> tuple[float, float]:
    """p50 and p99 of a 1-byte echo round trip, in microseconds."""
    samples = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(ROUND_TRIPS):
            start = time.perf_counter()
            sock.sendall(b"x")
            sock.recv(1)
            samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


SINKS: dict[int, Sink] = {}


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as reply:
        text = reply.read()
    return json.loads(text) if text else None


def start_proxy() -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "netfault.simulator.proxy.cli", "-port", "0", "-seed", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"(http://\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"proxy did not start: {line!r}")
    return proc, match.group(1)


def proxied(base: str, name: str, upstream: int, toxics: list[dict[str, Any]]) -> int:
    body = {"name": name, "upstream": f"127.0.0.1:{upstream}", "listen": "127.0.0.1:0"}
    listen = api(base, "POST", "/proxies", body)["listen"]
    for toxic in toxics:
        api(base, "POST", f"/proxies/{name}/toxics", toxic)
    port = int(listen.rsplit(":", 1)[1])
    SINKS[port] = SINKS[upstream]
    return port


def result(
    name: str, value: float, unit: str, baseline: float | None, target: str, meets: bool
) -> dict[str, Any]:
    ratio = None if not baseline else round(value / baseline, 3)
    return {
        "name": name,
        "value": round(value, 3 if unit == "x" else 1),
        "unit": unit,
        "baseline": baseline and round(baseline, 1),
        "ratio": ratio,
        "target": target,
        "meets": meets,
    }


def main() -> None:
    sink, echo = Sink(), Sink(echo=True)
    SINKS[sink.port] = sink
    SINKS[echo.port] = echo
    proc, base = start_proxy()
    noop = [{"type": "noop", "stream": s, "name": f"noop_{s}"} for s in ("upstream", "downstream")]
    lat0 = [
        {"type": "latency", "stream": s, "name": f"lat_{s}"} for s in ("upstream", "downstream")
    ]
    try:
        plain = proxied(base, "plain", sink.port, [])
        with_noop = proxied(base, "noop", sink.port, noop)
        echo_plain = proxied(base, "echo", echo.port, [])
        echo_lat0 = proxied(base, "echo_lat0", echo.port, lat0)
        stream(sink.port)  # warm up
        direct = max(stream(sink.port) for _ in range(2))
        through = max(stream(plain) for _ in range(2))
        through_noop = max(stream(with_noop) for _ in range(2))
        rt_direct = round_trip_us(echo.port)
        rt_proxy = round_trip_us(echo_plain)
        rt_lat0 = round_trip_us(echo_lat0)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(
        f"# stream {STREAM_BYTES} bytes in 1 MiB sendall()s to a recv_into sink; "
        f"proxy is a separate netfault-proxy process; {ROUND_TRIPS} 1-byte echo round trips; "
        "baseline = same client and server with no proxy",
        file=sys.stderr,
        flush=True,
    )
    mib = STREAM_BYTES >> 20
    added = rt_proxy[0] - rt_direct[0]
    added_lat0 = rt_lat0[0] - rt_direct[0]
    results = [
        result(
            f"throughput_{mib}MiB_no_toxics",
            through,
            "MB/s",
            direct,
            f">= {TARGET_MBPS:.0f} MB/s (Toxiproxy: 530-913)",
            through >= TARGET_MBPS,
        ),
        result(
            f"throughput_{mib}MiB_noop_both_streams",
            through_noop,
            "MB/s",
            direct,
            f">= {TARGET_MBPS:.0f} MB/s",
            through_noop >= TARGET_MBPS,
        ),
        result(
            "throughput_ratio_vs_direct",
            through / direct,
            "x",
            None,
            f">= {TARGET_RATIO} x direct (issue 4)",
            through / direct >= TARGET_RATIO,
        ),
        result(
            "rtt_p50_added_no_toxics",
            added,
            "us",
            rt_direct[0],
            f"<= {TARGET_ADDED_P50_US:.0f} us added",
            added <= TARGET_ADDED_P50_US,
        ),
        result("rtt_p99_no_toxics", rt_proxy[1], "us", rt_direct[1], "informational", True),
        result(
            "rtt_p50_added_latency0_toxic",
            added_lat0,
            "us",
            rt_direct[0],
            f"<= {TARGET_ADDED_P50_US:.0f} us added",
            added_lat0 <= TARGET_ADDED_P50_US,
        ),
        result("rtt_p99_latency0_toxic", rt_lat0[1], "us", rt_direct[1], "informational", True),
    ]
    print(json.dumps({"bench": "proxy", "results": results}))


if __name__ == "__main__":
    main()
