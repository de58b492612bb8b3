"""What a verified transfer adds on each SSH server: rsync over one warm OpenSSH master, alone
and beside the sessions and hashes a transport runs, with the node process's CPU.

The rsync transport moves its bytes with rsync over an OpenSSH ControlMaster and verifies with
sha256 on both ends: a pull asks the node for size + sha256 in a session beside the data, a
push hashes the local file beside the data and the node's copy after the last byte. This bench
times those parts apart, on a master opened beforehand (no handshake unless named), against a
node of each server (``asyncssh`` and the real OpenSSH ``sshd``) in its own process:

- ``pull``/``push``: a 64 MiB rsync, alone; ``..._own_conn``: the same over a connection of
  its own (``rsync -e ssh``, handshake included, like the transfer bench's baseline);
- ``..._with_sha_same_conn`` / ``..._other_conn``: beside a size + sha256 session of the same
  file on the same master / on a second one (multiplexing vs a connection per session);
- ``..._with_local_sha``: beside an ``openssl dgst`` of the local file;
- ``node_sha_after``: the node's sha256 of the copy as one more session (a push's tail).

Each figure is the median of ``--rounds`` alternating runs; ``node_cpu_s`` is the asyncssh
node process's own CPU (an OpenSSH node's per-connection processes are not its children).
Informational: no targets. Prints one JSON object as the last line.
Usage: ``python bench/ssh_sessions.py [--size-mib 64] [--rounds 7] [--servers asyncssh openssh]``
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from transfer import SERVERS, start_node

from netfault.engine.config import TransportConfig
from netfault.engine.transports import remote as rc
from netfault.engine.transports.sshconn import SshEndpoint, ssh_command

TICK = os.sysconf("SC_CLK_TCK")


def node_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` itself."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def master(argv: list[str], host: str, socket_path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*argv, "-N", "-M", "-S", str(socket_path), host])
    for _ in range(1000):  # bounded: 20 s
        if socket_path.exists():
            return proc
        time.sleep(0.02)
    proc.kill()
    raise SystemExit("the OpenSSH master did not open its control socket")


def ssh_argv(n: dict[str, Any]) -> list[str]:
    """The engine's ssh options for node ``n`` (the ones its transports and baselines use)."""
    ep = SshEndpoint(n["host"], n["ssh_port"], n["user"], Path(n["key"]), Path(n["known_hosts"]))
    return ssh_command(ep, TransportConfig())


def cases(n: dict[str, Any], src: Path, out: Path, work: Path) -> dict[str, str]:
    """Shell commands by name; the masters (control sockets c1, c2) are opened by the caller."""
    host = n["host"]
    mux = [
        shlex.join([*ssh_argv(n), "-o", f"ControlPath={work / c}", "-o", "ControlMaster=no"])
        for c in ("c1", "c2")
    ]
    e = shlex.quote(mux[0])
    pull = f"rsync --whole-file --inplace -e {e} {host}:data/f.bin {shlex.quote(str(out))}"
    push = f"rsync --whole-file --inplace -e {e} {shlex.quote(str(src))} {host}:data/g.bin"
    sha = shlex.quote(rc.cmd_stat_sha("data/f.bin"))
    local = f"openssl dgst -sha256 {shlex.quote(str(src))} > /dev/null"
    own = shlex.quote(shlex.join(ssh_argv(n)))
    remote = [f"{m} {host} {sha} > /dev/null" for m in mux]
    out_cases = {}
    for name, rsync in (("pull", pull), ("push", push)):
        out_cases[name] = rsync
        # plain ``rsync -e ssh``: the same copy with a handshake of its own (the baseline)
        out_cases[f"{name}_own_conn"] = rsync.replace(f"-e {e}", f"-e {own}")
        out_cases[f"{name}_with_sha_same_conn"] = f"{remote[0]} & {rsync}; wait"
        out_cases[f"{name}_with_sha_other_conn"] = f"{remote[1]} & {rsync}; wait"
        out_cases[f"{name}_with_local_sha"] = f"{local} & {rsync}; wait"
    out_cases["node_sha_after"] = remote[0]
    return out_cases


def measure(server: str, host: str, src: Path, rounds: int) -> list[dict[str, Any]]:
    proc, n = start_node(server, host)
    times: dict[str, list[tuple[float, float]]] = {}
    masters: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmp:
            work, out = Path(tmp), Path(tmp) / "out.bin"
            masters = [master(ssh_argv(n), n["host"], work / c) for c in ("c1", "c2")]
            subprocess.run(["cp", str(src), str(Path(n["home"], "data", "f.bin"))], check=True)
            commands = cases(n, src, out, work)
            for _ in range(rounds):
                for name, command in commands.items():
                    out.unlink(missing_ok=True)
                    Path(n["home"], "data", "g.bin").unlink(missing_ok=True)
                    cpu, started = node_cpu(proc.pid), time.perf_counter()
                    subprocess.run(command, shell=True, check=True)
                    wall = time.perf_counter() - started
                    times.setdefault(name, []).append((wall, node_cpu(proc.pid) - cpu))
    finally:
        for m in masters:
            m.kill()
            m.wait()
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    medians = {name: statistics.median(w for w, _ in runs) for name, runs in times.items()}
    rows = []
    for name, runs in times.items():
        # a part's baseline: the same direction's rsync alone, measured in the same rounds
        alone = name.split("_", 1)[0]
        baseline = medians[alone] if alone in ("push", "pull") and name != alone else None
        rows.append(
            {
                "name": f"{server}_{name}",
                "value": round(medians[name], 3),
                "unit": "s",
                "baseline": None if baseline is None else round(baseline, 3),
                "ratio": None if baseline is None else round(medians[name] / baseline, 3),
                "target": "informational",
                "meets": True,
                "best": round(min(w for w, _ in runs), 3),
                "node_cpu_s": round(statistics.median(c for _, c in runs), 3)
                if server == "asyncssh"
                else None,
                "rounds": rounds,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nf-bench-") as tmp:
        src = Path(tmp) / "src.bin"
        with src.open("wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(1 << 20))
        for i, server in enumerate(args.servers):
            results += measure(server, f"127.0.0.{41 + i}", src, args.rounds)
    for r in results:
        cpu = "" if r["node_cpu_s"] is None else f" node CPU {r['node_cpu_s']} s"
        print(f"{r['name']:36} median {r['value']} s best {r['best']} s{cpu}", file=sys.stderr)
    print(json.dumps({"bench": "ssh_sessions", "results": results}))


if __name__ == "__main__":
    main()
