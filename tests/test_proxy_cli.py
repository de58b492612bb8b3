"""netfault-proxy starts like toxiproxy-server: flags, -config, serves, exits on SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from netfault.simulator.proxy.cli import main


def test_version_flag_prints_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-version"]) == 0
    assert "Toxiproxy API 2.12.0" in capsys.readouterr().out


def test_cli_serves_the_config_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        up_port = upstream.getsockname()[1]
        config = tmp_path / "toxiproxy.json"
        config.write_text(
            json.dumps(
                [
                    {
                        "name": "web",
                        "listen": "127.0.0.1:0",
                        "upstream": f"127.0.0.1:{up_port}",
                        "toxics": [{"type": "latency", "attributes": {"latency": 1}}],
                    }
                ]
            )
        )
        cmd = [
            sys.executable,
            "-m",
            "netfault.simulator.proxy.cli",
            "-host",
            "127.0.0.1",
            "-port",
            "0",
            "-seed",
            "5",
            "-config",
            str(config),
        ]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stderr is not None
        threading.Thread(
            target=lambda: [lines.put(line) for line in proc.stderr or []], daemon=True
        ).start()
        try:
            first = lines.get(timeout=20)
            match = re.search(r"http://127\.0\.0\.1:(\d+) \(seed 5\)", first)
            assert match, first
            assert "populated 1 proxies" in lines.get(timeout=20)
            url = f"http://127.0.0.1:{match.group(1)}/proxies"
            with urllib.request.urlopen(url, timeout=10) as reply:
                proxies = json.loads(reply.read())
            assert proxies["web"]["toxics"][0]["attributes"]["latency"] == 1
            host, port = proxies["web"]["listen"].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as client:
                server_side, _ = upstream.accept()
                with server_side:
                    server_side.sendall(b"hello")
                    assert client.recv(5) == b"hello"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_negative_spin_window_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["-spin-us", "-5"])
    assert exited.value.code == 2
    assert "-spin-us: must be >= 0, not -5" in capsys.readouterr().err


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _echo(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def test_spinning_proxy_relays_round_trips_and_goes_quiet_when_traffic_stops() -> None:
    """The default busy-poll window ends with the traffic: an idle proxy burns no CPU."""
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_echo, args=(listener,), daemon=True).start()
    cmd = [sys.executable, "-m", "netfault.simulator.proxy.cli", "-host", "127.0.0.1"]
    proc = subprocess.Popen([*cmd, "-port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        match = re.search(r"(http://\S+) ", proc.stderr.readline())
        assert match
        body = json.dumps(
            {
                "name": "echo",
                "listen": "127.0.0.1:0",
                "upstream": f"127.0.0.1:{listener.getsockname()[1]}",
            }
        ).encode()
        request = urllib.request.Request(match.group(1) + "/proxies", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as reply:
            host, port = json.loads(reply.read())["listen"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(500):
                message = i.to_bytes(4, "big")
                client.sendall(message)
                got = b""
                while len(got) < 4:
                    got += client.recv(4 - len(got))
                assert got == message
            time.sleep(0.2)  # far beyond the 200 us window
            before = _cpu_seconds(proc.pid)
            time.sleep(1.0)
            idle = _cpu_seconds(proc.pid) - before
        assert idle < 0.2, f"proxy used {idle:.2f} s of CPU in 1 s without traffic"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        listener.close()


def test_every_flag_has_help_text() -> None:
    from netfault.simulator.proxy.cli import _parser

    parser = _parser()
    assert [a.option_strings for a in parser._actions if not a.help] == []
