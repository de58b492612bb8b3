"""200 concurrent connections through one netfault-proxy process with a latency and a
bandwidth toxic: every byte arrives intact and the proxy gives back every fd."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from netfault.simulator.proxy.load import DigestSink, LoadResult, process_usage, run_load

CONNECTIONS = 200
SIZE = 1 << 20
WAIT = 120.0  # seconds the whole load may take on a loaded machine before the test fails


@pytest.fixture
def proxy_process() -> Iterator[tuple[int, str]]:
    cmd = [sys.executable, "-m", "netfault.simulator.proxy.cli", "-host", "127.0.0.1"]
    proc = subprocess.Popen([*cmd, "-port", "0", "-seed", "1"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        match = re.search(r"(http://\S+) ", proc.stderr.readline())
        assert match, "netfault-proxy did not print its API address"
        yield proc.pid, match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _post(base: str, path: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        answer: dict[str, object] = json.loads(reply.read())
        return answer


async def _load_through(pid: int, base: str, held: list[int]) -> LoadResult:
    """Create the proxy with its toxics in front of a digest sink and run the load; the
    proxy's fds once every connection is open go into `held`."""
    sink = DigestSink()
    upstream = await sink.start()
    try:
        body = {"name": "load", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"}
        made = await asyncio.to_thread(_post, base, "/proxies", body)
        port = int(str(made["listen"]).rsplit(":", 1)[1])
        for toxic in (
            {"type": "latency", "stream": "upstream", "attributes": {"latency": 20}},
            {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 4000}},
        ):
            await asyncio.to_thread(_post, base, "/proxies/load/toxics", toxic)

        async def all_open() -> None:
            await sink.wait_accepted(CONNECTIONS)
            held.append(process_usage(pid).fds)

        result = await run_load(port, CONNECTIONS, SIZE, within=WAIT, all_open=all_open)
    finally:
        await sink.close()
    return result


def test_200_connections_with_toxics_deliver_every_byte_and_release_every_fd(
    proxy_process: tuple[int, str],
) -> None:
    pid, base = proxy_process
    before = process_usage(pid).fds
    held: list[int] = []
    result = asyncio.run(_load_through(pid, base, held))
    assert result.failures == ()
    assert result.verified == CONNECTIONS
    # all at once: the listener plus a client and an upstream socket per connection
    assert held[0] >= before + 1 + 2 * CONNECTIONS
    deadline = time.monotonic() + WAIT
    while (fds := process_usage(pid).fds) != before + 1:  # + the proxy's listening socket
        assert time.monotonic() < deadline, f"proxy holds {fds} fds, {before + 1} expected"
        time.sleep(0.01)
