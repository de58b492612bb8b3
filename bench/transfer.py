"""Transfer throughput per transport and SSH server, beside same-run baselines; base64 memory.

Runs one FakeNode per SSH server (``asyncssh`` and the real OpenSSH ``sshd``) in a child process
(its own loop and core, like a real node), moves a random file with each transport and with the
baseline pipelines to the same node, and prints one JSON line last:
``{"bench": "transfer", "results": [{"name", "value", "unit", "baseline", "ratio", ...}]}``.
Targets: each SSH-based transport >= 1.0x ``rsync`` (which verifies too) and >= 0.8x
``cat | ssh``; base64 >= 0.9x ``base64 | ssh 'base64 -d'``; HTTP push >= 0.9x ``curl -T``, pull
>= 0.7x ``curl -o`` (HTTP does not depend on the SSH server: measured on the first one).
Each round runs, per server, the baselines and then the transports right after them; the best
time of each is kept, so a burst of load on this shared host hurts no side alone.
Usage: ``python bench/transfer.py [--size-mib 64] [--rss-mib 512] [--rounds 3] [--budget 80]
[--servers asyncssh openssh] [--only ssh rsync ...]`` (``--rss-mib 0`` skips the memory check):
at most ``--rounds`` rounds, as many as fit in ``--budget`` seconds, so the run stays under 2
minutes.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netfault.engine.config import NodeConfig, TransportConfig
from netfault.engine.transports import default_transports
from netfault.engine.transports.sshconn import SshEndpoint, ssh_command

SERVERS = ("asyncssh", "openssh")
# transport -> (baseline, push target, pull target) for each comparison, made in the same round
TARGETS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "ssh": (("cat", 0.8, 0.8), ("rsync", 1.0, 1.0)),
    "tailscale": (("cat", 0.8, 0.8), ("rsync", 1.0, 1.0)),
    "rsync": (("cat", 0.8, 0.8), ("rsync", 1.0, 1.0)),
    "base64": (("b64", 0.9, 0.9),),
    "http": (("curl", 0.9, 0.7),),
}

NODE_SCRIPT = """
import asyncio, json, sys
from netfault.simulator.node import FakeNode
async def main():
    async with FakeNode("bench", host=sys.argv[1], ssh_server=sys.argv[2]) as node:
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


def result(name: str, mib: int, secs: float, base_secs: float, target: float) -> dict[str, Any]:
    value, baseline = mib * 1.048576 / secs, mib * 1.048576 / base_secs
    ratio = value / baseline
    return {
        "name": name,
        "value": round(value, 1),
        "unit": "MB/s",
        "baseline": round(baseline, 1),
        "ratio": round(ratio, 3),
        "target": f">= {target}",
        "meets": ratio >= target,
    }


def baselines(n: dict[str, Any], src: Path, out: Path) -> dict[str, str]:
    """The baseline shell pipelines, by name."""
    q, o = shlex.quote(str(src)), shlex.quote(str(out))
    ep = SshEndpoint(n["host"], n["ssh_port"], n["user"], Path(n["key"]), Path(n["known_hosts"]))
    ssh_argv = ssh_command(ep, TransportConfig())
    ssh = shlex.join([*ssh_argv, n["host"]])
    rsync = f"rsync -e {shlex.quote(shlex.join(ssh_argv))}"
    url = f"http://{n['host']}:{n['http_port']}/files/data/curl.bin"
    auth = shlex.quote(f"Authorization: Bearer {n['token']}")
    return {
        "cat_push": f"cat {q} | {ssh} 'cat > data/base.bin'",
        "cat_pull": f"{ssh} 'cat data/base.bin' > {o}",
        "rsync_push": f"{rsync} {q} {n['host']}:data/rbase.bin",
        "rsync_pull": f"{rsync} {n['host']}:data/rbase.bin {o}",
        "b64_push": f"base64 {q} | {ssh} 'base64 -d > data/base.bin'",
        "b64_pull": f"{ssh} 'base64 data/base.bin' | base64 -d > {o}",
        "curl_push": f"curl -sf -T {q} -H {auth} {url} > /dev/null",
        "curl_pull": f"curl -sf -H {auth} -o {o} {url}",
    }


def node_config(n: dict[str, Any]) -> NodeConfig:
    return NodeConfig(
        hostname=n["host"],
        tailscale_ip=n["host"],
        ssh_port=n["ssh_port"],
        http_port=n["http_port"],
        ssh_user=n["user"],
        ssh_key=Path(n["key"]),
        known_hosts=Path(n["known_hosts"]),
        http_token=n["token"],
        base_path="data",
    )


Keep = Callable[[str, float], None]


def one_round(n: dict[str, Any], src: Path, out: Path, names: list[str], keep: Keep) -> None:
    """Each baseline these transports are compared with, then each transport; push, pull."""
    pipelines = baselines(n, src, out)
    node, config = node_config(n), TransportConfig.for_large_transfers()
    for base in dict.fromkeys(b for name in names for b, _, _ in TARGETS[name]):
        # A copy left by the previous round would turn the rsync baseline into a delta
        # transfer that sends almost nothing: every baseline writes a new file, as the
        # transports do.
        for left in ("base.bin", "rbase.bin"):
            Path(n["home"], "data", left).unlink(missing_ok=True)
        # "base:" keeps the rsync baseline apart from the rsync transport
        keep(f"base:{base}_push", sh(pipelines[f"{base}_push"]))
        keep(f"base:{base}_pull", sh(pipelines[f"{base}_pull"]))
        out.unlink(missing_ok=True)
    for name in names:
        t = default_transports()[name]
        remote = f"{name}.bin"
        keep(f"{name}_push", timed(t.push(node, src, remote, config)))
        keep(f"{name}_pull", timed(t.pull(node, remote, out, config)))
        assert filecmp.cmp(out, src, shallow=False), f"{name} pull differs"
        out.unlink()
        Path(n["home"], "data", remote).unlink()


def measure(
    nodes: dict[str, dict[str, Any]],
    size_mib: int,
    work: Path,
    rounds: int,
    only: list[str],
    budget: float,
) -> list[dict[str, Any]]:
    """Best of up to ``rounds`` for each (server, transport) and its baselines.

    A round starts only if, at the pace of the previous one, it ends within ``budget`` seconds.
    """
    src, out = work / "src.bin", work / "out.bin"
    with src.open("wb") as fh:
        for _ in range(size_mib):
            fh.write(os.urandom(1 << 20))
    best: dict[str, float] = {}
    first = next(iter(nodes))
    plan = {s: [t for t in only if t != "http" or s == first] for s in nodes}
    started, ran = time.perf_counter(), 0
    for done in range(rounds):
        elapsed = time.perf_counter() - started
        if done and elapsed + elapsed / done > budget:
            break
        ran += 1
        for server, n in nodes.items():

            def keep(key: str, secs: float, server: str = server) -> None:
                key = f"{server}:{key}"
                best[key] = min(best.get(key, secs), secs)

            one_round(n, src, out, plan[server], keep)
    results = []
    for server, names in plan.items():
        for name in names:
            for base, *targets in TARGETS[name]:
                for direction, target in zip(("push", "pull"), targets, strict=True):
                    secs = best[f"{server}:{name}_{direction}"]
                    base_secs = best[f"{server}:base:{base}_{direction}"]
                    label = f"{server}_{name}_{direction}_{size_mib}MiB_vs_{base}"
                    results.append(result(label, size_mib, secs, base_secs, target))
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


def start_node(server: str, host: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", NODE_SCRIPT, host, server],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        raise SystemExit(f"the {server} node did not start (exit {proc.returncode})")
    return proc, json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rss-mib", type=int, default=512, help="0 skips the memory check")
    parser.add_argument("--rounds", type=int, default=3, help="at most this many rounds")
    parser.add_argument("--budget", type=float, default=80.0, help="seconds for the rounds")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--only", nargs="*", choices=list(TARGETS), default=list(TARGETS))
    args = parser.parse_args()
    procs: list[subprocess.Popen[str]] = []
    nodes: dict[str, dict[str, Any]] = {}
    try:
        for i, server in enumerate(args.servers):
            proc, nodes[server] = start_node(server, f"127.0.0.{21 + i}")
            procs.append(proc)
        with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmp:
            results = measure(nodes, args.size_mib, Path(tmp), args.rounds, args.only, args.budget)
            if args.rss_mib:
                results.append(rss(nodes[args.servers[0]], args.rss_mib, Path(tmp)))
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
    for r in results:
        print(
            f"{r['name']:44} {r['value']:>8} {r['unit']:5} baseline {r['baseline']} "
            f"ratio {r['ratio']} target {r['target']}",
            file=sys.stderr,
        )
    print(json.dumps({"bench": "transfer", "results": results}))


if __name__ == "__main__":
    main()
