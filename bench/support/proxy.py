"""What the proxy benches share: a netfault-proxy child process, its API, result rows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from typing import Any


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as reply:
        text = reply.read()
    return json.loads(text) if text else None


def start_proxy(*extra: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "netfault.simulator.proxy.cli", "-port", "0", "-seed", "1"]
    cmd += extra
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"(http://\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"proxy did not start: {line!r}")
    return proc, match.group(1)


def result(
    name: str,
    value: float,
    unit: str,
    baseline: float | None,
    target: str,
    meets: bool,
    *,
    ratio: bool = True,
) -> dict[str, Any]:
    """One JSON row; `ratio` is value/baseline, left null where it means nothing (added us)."""
    quotient = round(value / baseline, 3) if baseline and ratio else None
    return {
        "name": name,
        "value": round(value, 3 if unit == "x" else 1),
        "unit": unit,
        "baseline": baseline and round(baseline, 1),
        "ratio": quotient,
        "target": target,
        "meets": meets,
    }
