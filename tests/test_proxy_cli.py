"""netfault-proxy starts like toxiproxy-server: flags, -config, serves, exits on SIGTERM."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
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
