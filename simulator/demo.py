"""``netfault demo``: the engine against embedded fake nodes under real faults.

Each case starts from a clean node, switches on a fault, runs one operation through
``ClusterTransport`` or ``SyncRouter`` and checks what a user would see: the transport
that won, the bytes on the node, the breaker's state, the node disabled. It prints a
table and exits 1 if any expectation failed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from netfault.engine import (
    ClusterTransport,
    EventRecorder,
    EventType,
    ManualClock,
    NodeConfig,
    SyncRouter,
    Thresholds,
    TransportConfig,
)
from netfault.simulator.node import FakeNode

QUICK = TransportConfig(connect_timeout=3.0, operation_timeout=20.0, http_timeout=5.0)


@dataclass
class Case:
    name: str
    fault: str
    run: Callable[[FakeNode, ClusterTransport, Path], Awaitable[str]]


@dataclass
class Outcome:
    case: str
    fault: str
    passed: bool
    detail: str
    seconds: float


class ExpectationFailed(AssertionError):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ExpectationFailed(message)


async def _push(node: FakeNode, ct: ClusterTransport, src: Path, order: list[str]) -> str:
    result = await ct.transfer_file(
        src, "demo/payload.bin", node.node_config(), "push", QUICK, transports=order
    )
    expect(result.success, f"push failed: {result.error}")
    on_node = node.home / "data" / "demo" / "payload.bin"
    same = await asyncio.to_thread(lambda: on_node.read_bytes() == src.read_bytes())
    expect(same, "bytes on the node differ from the source")
    tried = " -> ".join(
        f"{a.transport}{'' if a.success else '(' + str(a.error_kind) + ')'}"
        for a in result.attempts
    )
    return f"{result.transport_used} won; {tried}"


async def case_clean(node: FakeNode, ct: ClusterTransport, src: Path) -> str:
    detail = await _push(node, ct, src, ["ssh", "base64", "http"])
    expect(detail.startswith("ssh won"), detail)
    return detail


async def case_mangling(node: FakeNode, ct: ClusterTransport, src: Path) -> str:
    node.faults.binary_mangling = True
    detail = await _push(node, ct, src, ["ssh", "base64", "http"])
    expect(detail.startswith("base64 won"), detail)
    return detail


async def case_auth(node: FakeNode, ct: ClusterTransport, src: Path) -> str:
    node.faults.auth_refused = True
    detail = await _push(node, ct, src, ["ssh", "base64", "http"])
    expect(detail.startswith("http won"), detail)
    return detail


async def case_disk_full(node: FakeNode, ct: ClusterTransport, src: Path) -> str:
    node.faults.disk_quota = 1024
    result = await ct.transfer_file(
        src, "demo/full.bin", node.node_config(), "push", QUICK, transports=["ssh", "http"]
    )
    expect(not result.success, "push to a full disk reported success")
    expect(
        not (node.home / "data" / "demo" / "full.bin").exists(),
        "a partial file was left under the final name",
    )
    return "failed cleanly: " + ", ".join(f"{a.transport}({a.error_kind})" for a in result.attempts)


async def case_breaker(node: FakeNode, ct: ClusterTransport, src: Path) -> str:
    clock = ManualClock()
    events = EventRecorder()
    local = ClusterTransport(ct.transports, clock=clock, config=QUICK)
    local.events.subscribe(events)
    node.faults.auth_refused = True
    node.faults.http_mode = "down"
    cfg = node.node_config()
    for _ in range(3):
        await local.transfer_file(src, "demo/x.bin", cfg, "push", transports=["ssh", "http"])
    expect(not local.can_attempt(cfg), "breaker still closed after 3 failed operations")
    node.faults.clear()
    clock.advance(300)
    result = await local.transfer_file(src, "demo/x.bin", cfg, "push", transports=["ssh"])
    expect(result.success, f"half-open probe failed: {result.error}")
    states = [e.data["to"] for e in events.of_type(EventType.BREAKER_TRANSITION)]
    expect(states == ["open", "half_open", "closed"], f"transitions were {states}")
    return "closed -> " + " -> ".join(states) + " (300 s on a manual clock)"


async def case_escalation(node: FakeNode, ct: ClusterTransport, src: Path) -> str:
    events = EventRecorder()
    thresholds = Thresholds(breaker_failure_threshold=10)
    local = ClusterTransport(
        ct.transports, clock=ManualClock(), config=QUICK, thresholds=thresholds
    )
    local.events.subscribe(events)
    cfg = node.node_config().with_changes(p2p_port=node.http_port)
    router = SyncRouter(local, nodes=[cfg], thresholds=thresholds)
    node.faults.auth_refused = True
    node.faults.http_mode = "5xx"
    result = await router.sync_to_node(cfg.name, src, remote_path="demo/sync.bin", config=QUICK)
    expect(not result.success, "sync succeeded with every transport broken")
    disabled = router.get_disabled_nodes()
    expect(cfg.name in disabled, "node was not disabled after every transport failed")
    names = [str(e.type) for e in events.of_type(EventType.SYNC_STALLED, EventType.NODE_DISABLED)]
    return (
        f"{disabled[cfg.name]['reason']}: {disabled[cfg.name]['failed_transports']}; "
        f"{len(names)} escalation events"
    )


CASES = [
    Case("clean push", "none", case_clean),
    Case("binary-mangling SSH channel", "binary_mangling", case_mangling),
    Case("SSH authentication refused", "auth_refused", case_auth),
    Case("remote disk full", "disk_full", case_disk_full),
    Case("breaker opens and recovers", "auth_refused + http_down", case_breaker),
    Case("every transport exhausted", "auth_refused + http_5xx", case_escalation),
]


TABLE_WIDTH = 80


async def run_demo(console: Console | None = None) -> list[Outcome]:
    console = console or Console()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="netfault-demo-") as tmp:
        src = Path(tmp) / "payload.bin"
        src.write_bytes(os.urandom(3 * 1024 * 1024 + 17) + bytes(range(256)) * 64)
        async with FakeNode("demo-node", host="127.0.0.1") as node:
            ct = ClusterTransport(config=QUICK)
            try:
                for case in CASES:
                    outcomes.append(await _run_case(case, node, ct, src))
                    node.faults.clear()
            finally:
                await ct.close()
    console.print(_table(outcomes, min(console.width, TABLE_WIDTH)))
    return outcomes


def _table(outcomes: list[Outcome], width: int) -> Table:
    """One row per case, the fault under its name, so the table fits ``width`` columns."""
    table = Table(title="netfault demo: the engine against a fake node", width=width)
    table.add_column("case [dim](fault)[/dim]", ratio=2)
    table.add_column("result", no_wrap=True)
    table.add_column("what happened", ratio=3)
    table.add_column("s", no_wrap=True, justify="right")
    for o in outcomes:
        table.add_row(
            f"{o.case}\n[dim]({o.fault})[/dim]",
            "[green]pass[/green]" if o.passed else "[red]FAIL[/red]",
            o.detail,
            f"{o.seconds:.2f}",
        )
    return table


async def _run_case(case: Case, node: FakeNode, ct: ClusterTransport, src: Path) -> Outcome:
    ct.reset_circuit_breakers()
    started = time.perf_counter()
    try:
        detail = await case.run(node, ct, src)
        passed = True
    except ExpectationFailed as exc:
        detail, passed = str(exc), False
    return Outcome(case.name, case.fault, passed, detail, time.perf_counter() - started)


__all__ = ["CASES", "NodeConfig", "run_demo"]
