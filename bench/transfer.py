"""Transfer throughput per transport beside its OpenSSH/curl baseline, and base64 push memory.

Runs a FakeNode in a child process (its own loop and core, like a real node), moves a random
file with each transport and with the baseline pipeline, and prints one JSON line last:
``{"bench": "transfer", "results": [{"name", "value", "unit", "baseline", "ratio", ...}]}``.
Each transport runs right after its baseline, push then pull, for ``--rounds`` rounds; the best
time of each is kept, so a burst of load on this shared host hurts neither side alone.
Usage: ``python bench/transfer.py [--size-mib 256] [--rss-mib 1024] [--rounds 3]
[--budget 75] [--only ssh http ...]`` (``--rss-mib 0`` skips the memory check): at most
``--rounds`` rounds, as many as fit in ``--budget`` seconds, so the run stays under 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import filecmp
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.transports import default_transports
from netfault.engine.transports.rsync import ssh_command
from netfault.engine.transports.sshconn import SshEndpoint

NODE_SCRIPT = """
import asyncio, json, sys
from netfault.simulator.node import FakeNode
async def main():
    async with FakeNode("bench", host="127.0.0.21") as node:
        c = node.node_config()
        print(json.dumps({"host": c.hostname, "ssh_port": c.ssh_port, "http_port": c.http_port,
              "user": c.ssh_user, "key": str(c.ssh_key), "known_hosts": str(c.known_hosts),
              "token": c.http_token, "home": str(node.home)}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""

RSS_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.transports import Base64Transport
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
n = json.loads(sys.argv[1])
node = NodeConfig(hostname=n["host"], ssh_port=n["ssh_port"], ssh_user=n["user"],
                  ssh_key=Path(n["key"]), known_hosts=Path(n["known_hosts"]), base_path="data")
async def main():
    t = Base64Transport()
    small = Path(sys.argv[3])
    await t.push(node, small, "rss-warm.bin", TransportConfig())  # imports, ciphers, threads
    before = hwm()
    await t.push(node, Path(sys.argv[2]), "rss.bin", TransportConfig.for_large_transfers())
    print(json.dumps({"before": before, "after": hwm()}))
asyncio.run(main())
"""


def sh(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return time.perf_counter() - started


def timed(coro: Any) -> float:
    started = time.perf_counter()
    asyncio.run(coro)
    return time.perf_counter() - started


def result(name: str, mib: int, secs: float, base_secs: float) -> dict[str, Any]:
    value, baseline = mib * 1.048576 / secs, mib * 1.048576 / base_secs
    ratio = value / baseline
    return {
        "name": name,
        "value": round(value, 1),
        "unit": "MB/s",
        "baseline": round(baseline, 1),
        "ratio": round(ratio, 3),
        "target": ">= 0.9",
        "meets": ratio >= 0.9,
    }


def baselines(n: dict[str, Any], src: Path, out: Path) -> dict[str, str]:
    """The baseline shell pipelines, by name."""
    q, o = shlex.quote(str(src)), shlex.quote(str(out))
    ep = SshEndpoint(n["host"], n["ssh_port"], n["user"], Path(n["key"]), Path(n["known_hosts"]))
    ssh = shlex.join([*ssh_command(ep, TransportConfig()), n["host"]])
    url = f"http://{n['host']}:{n['http_port']}/files/data/curl.bin"
    auth = shlex.quote(f"Authorization: Bearer {n['token']}")
    return {
        "cat_push": f"cat {q} | {ssh} 'cat > data/base.bin'",
        "cat_pull": f"{ssh} 'cat data/base.bin' > {o}",
        "b64_push": f"base64 {q} | {ssh} 'base64 -d > data/base.bin'",
        "b64_pull": f"{ssh} 'base64 data/base.bin' | base64 -d > {o}",
        "curl_push": f"curl -sf -T {q} -H {auth} {url} > /dev/null",
        "curl_pull": f"curl -sf -H {auth} -o {o} {url}",
    }


PAIRS = {
    "ssh": ("cat_push", "cat_pull"),
    "rsync": ("cat_push", "cat_pull"),
    "base64": ("b64_push", "b64_pull"),
    "http": ("curl_push", "curl_pull"),
}


def measure(
    n: dict[str, Any], size_mib: int, work: Path, rounds: int, only: list[str], budget: float
) -> list[dict[str, Any]]:
    """Best of up to ``rounds`` for each transport and its baseline, run alternately.

    Each round runs, per direction, the baseline pipeline and then the transport right after
    it, so both see the same machine load; the best time of each over all rounds is kept. A
    round starts only if, at the pace of the previous one, it ends within ``budget`` seconds.
    """
    src, out = work / "src.bin", work / "out.bin"
    with src.open("wb") as fh:
        for _ in range(size_mib):
            fh.write(os.urandom(1 << 20))
    pipelines = baselines(n, src, out)
    node = NodeConfig(
        hostname=n["host"],
        ssh_port=n["ssh_port"],
        http_port=n["http_port"],
        ssh_user=n["user"],
        ssh_key=Path(n["key"]),
        known_hosts=Path(n["known_hosts"]),
        http_token=n["token"],
        base_path="data",
    )
    config = TransportConfig.for_large_transfers()
    best: dict[str, float] = {}

    def keep(key: str, secs: float) -> None:
        best[key] = min(best.get(key, secs), secs)

    started = time.perf_counter()
    ran = 0
    for done in range(rounds):
        elapsed = time.perf_counter() - started
        if done and elapsed + elapsed / done > budget:
            break
        ran += 1
        for name in only:
            bpush, bpull = PAIRS[name]
            t = default_transports()[name]
            remote = f"{name}.bin"
            keep(bpush, sh(pipelines[bpush]))
            keep(f"{name}_push", timed(t.push(node, src, remote, config)))
            out.unlink(missing_ok=True)
            keep(bpull, sh(pipelines[bpull]))
            out.unlink(missing_ok=True)
            keep(f"{name}_pull", timed(t.pull(node, remote, out, config)))
            assert filecmp.cmp(out, src, shallow=False), f"{name} pull differs"
            Path(n["home"], "data", remote).unlink()
    results = []
    for name in only:
        bpush, bpull = PAIRS[name]
        results.append(
            result(f"{name}_push_{size_mib}MiB", size_mib, best[f"{name}_push"], best[bpush])
        )
        results.append(
            result(f"{name}_pull_{size_mib}MiB", size_mib, best[f"{name}_pull"], best[bpull])
        )
    for r in results:
        r["rounds"] = ran
    return results


def rss(n: dict[str, Any], rss_mib: int, work: Path) -> dict[str, Any]:
    big, small = work / "big.bin", work / "small.bin"
    small.write_bytes(os.urandom(1 << 20))
    with big.open("wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(rss_mib):
            fh.write(block)
    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, json.dumps(n), str(big), str(small)],
        check=True,
        capture_output=True,
        text=True,
    )
    big.unlink()
    peak = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = (peak["after"] - peak["before"]) / (1 << 20)
    return {
        "name": f"base64_push_{rss_mib}MiB_peak_rss_growth",
        "value": round(growth, 1),
        "unit": "MiB",
        "baseline": None,
        "ratio": None,
        "target": "< 64",
        "meets": growth < 64,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rss-mib", type=int, default=1024, help="0 skips the memory check")
    parser.add_argument("--rounds", type=int, default=3, help="at most this many rounds")
    parser.add_argument("--budget", type=float, default=75.0, help="seconds for the rounds")
    parser.add_argument("--only", nargs="*", choices=list(PAIRS), default=list(PAIRS))
    args = parser.parse_args()
    node_proc = subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node_proc.stdout is not None
        n = json.loads(node_proc.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmp:
            results = measure(n, args.size_mib, Path(tmp), args.rounds, args.only, args.budget)
            if args.rss_mib:
                results.append(rss(n, args.rss_mib, Path(tmp)))
    finally:
        assert node_proc.stdin is not None
        node_proc.stdin.close()
        node_proc.wait(timeout=30)
    for r in results:
        print(
            f"{r['name']:40} {r['value']:>8} {r['unit']:5} baseline {r['baseline']}",
            file=sys.stderr,
        )
    print(json.dumps({"bench": "transfer", "results": results}))


if __name__ == "__main__":
    main()
