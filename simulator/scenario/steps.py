"""Executing one scenario step against the cluster, the engine and the virtual clock."""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import Any

from netfault.engine.clock import ManualClock
from netfault.engine.config import TransportConfig
from netfault.engine.errors import CANCELLED_KIND
from netfault.engine.results import HttpResult, ProbeResult, TransferResult
from netfault.simulator.cluster.controller import AppliedFault
from netfault.simulator.scenario.checks import World, check_condition
from netfault.simulator.scenario.db_step import DbSync
from netfault.simulator.scenario.model import Step

MAX_WAIT_TICKS = 10_000


class StepFailed(AssertionError):
    """A step's expectation did not hold; the message says expected vs seen."""


def payload(seed: int, node: str, path: str, size: int) -> bytes:
    """The deterministic content a scenario moves for (seed, node, path)."""
    return random.Random(f"{seed}:{node}:{path}").randbytes(size)


class StepRunner:
    """Runs steps; keeps named faults and the local working directory."""

    def __init__(
        self,
        world: World,
        clock: ManualClock,
        seed: int,
        workdir: Path,
        configs: dict[str, TransportConfig],
        on_tick: Any,
    ) -> None:
        self.world = world
        self.clock = clock
        self.seed = seed
        self.workdir = workdir
        self.configs = configs
        self.named: dict[str, list[AppliedFault]] = {}
        self.on_tick = on_tick
        self.db: DbSync | None = None

    async def run(self, step: Step) -> str:
        handler = getattr(self, f"_do_{step.kind}")
        detail: str = await handler(step.args)
        return detail

    # -- faults and clock ------------------------------------------------------
    async def _do_fault(self, args: dict[str, Any]) -> str:
        fault = await asyncio.to_thread(
            self.world.cluster.faults.apply,
            args["kind"],
            args["node"],
            route=args.get("route"),
            service=args.get("service"),
            **args["params"],
        )
        self.named.setdefault(args.get("as") or args["kind"], []).append(fault)
        described: str = fault.describe()
        return described

    async def _do_faults(self, args: dict[str, Any]) -> str:
        applied = [
            await self._do_fault(dict(f, **{"as": args.get("as") or args["set"]}))
            for f in args["faults"]
        ]
        return "; ".join(applied)

    async def _do_clear(self, name: str) -> str:
        controller = self.world.cluster.faults
        if name == "all":
            await asyncio.to_thread(controller.clear_all)
            self.named.clear()
            return "all faults cleared"
        if name not in self.named:
            raise StepFailed(f"no active fault named {name!r} (have: {sorted(self.named)})")
        for fault in self.named.pop(name):
            await asyncio.to_thread(controller.clear, fault)
        return f"cleared {name}"

    async def _do_advance(self, seconds: float) -> str:
        self.clock.advance(seconds)
        return f"virtual clock +{seconds:g}s"

    # -- operations --------------------------------------------------------------
    async def _do_transfer(self, args: dict[str, Any]) -> str:
        node, path, size = args["node"], args["path"], args["size"]
        cfg = self.world.router._node(node)
        data = payload(self.seed, node, path, size)
        local = self.workdir / hashlib.sha1(f"{node}:{path}".encode()).hexdigest()
        if args["direction"] == "push":
            await asyncio.to_thread(local.write_bytes, data)
        else:
            await self._place_on_node(node, path, data)
            await asyncio.to_thread(local.unlink, True)
        result = await self.world.transport.transfer_file(
            local,
            path,
            cfg,
            args["direction"],
            self.configs[args.get("preset", "scenario")],
            transports=args.get("transports"),
        )
        if result.success and args["direction"] == "push":
            self.world.remember_push(node, path, data)
        expect = dict(args.get("expect", {}))
        if expect.pop("content_equal", True) and result.success:
            await self._check_content(args["direction"], node, path, local, data)
        check_operation(result, expect)
        return summarize(result)

    async def _place_on_node(self, node: str, path: str, data: bytes) -> None:
        target = self.world.cluster.home_path(node, path)
        if target is None:
            raise StepFailed("pull needs a backend whose node files are reachable here")

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

        await asyncio.to_thread(write)
        self.world.remember_push(node, path, data)

    async def _check_content(
        self, direction: str, node: str, path: str, local: Path, data: bytes
    ) -> None:
        if direction == "push":
            seen = await self.world.cluster.read_remote(node, path)
        else:
            seen = await asyncio.to_thread(lambda: local.read_bytes() if local.exists() else None)
        if seen != data:
            got = "no file" if seen is None else f"{len(seen)} bytes that differ"
            raise StepFailed(f"content: expected the {len(data)} bytes sent, seen {got}")

    async def _do_sync(self, args: dict[str, Any]) -> str:
        node, path = args["node"], args["path"]
        data = payload(self.seed, node, path, args["size"])
        local = self.workdir / hashlib.sha1(f"sync:{node}:{path}".encode()).hexdigest()
        await asyncio.to_thread(local.write_bytes, data)
        result = await self.world.router.sync_to_node(
            node,
            local,
            args.get("force_transport"),
            remote_path=path,
            config=self.configs["scenario"],
        )
        if result.success:
            self.world.remember_push(node, path, data)
        check_operation(result, dict(args.get("expect", {})))
        return summarize(result)

    async def _do_db_sync(self, args: dict[str, Any]) -> str:
        if self.db is None:
            self.db = DbSync(self.world, self.workdir, self.seed, self.configs["scenario"])
        seen, detail = await self.db.run(args)
        problems = [
            f"{k}: expected {v!r}, seen {seen[k]!r}"
            for k, v in args.get("expect", {}).items()
            if seen[k] != v
        ]
        if problems:
            raise StepFailed("; ".join(problems) + f" [{detail}]")
        return detail

    async def _do_http(self, args: dict[str, Any]) -> str:
        node = self.world.router._node(args["node"])
        port = node.p2p_port if args.get("port") == "p2p" else None
        result = await self.world.transport.http_request_with_failover(
            node, args["endpoint"], args["method"], config=self.configs["scenario"], port=port
        )
        check_operation(result, dict(args.get("expect", {})))
        return summarize(result)

    async def _do_test_transport(self, args: dict[str, Any]) -> str:
        probe: ProbeResult = await self.world.router.test_transport(args["node"], args["transport"])
        expected = args.get("expect", {}).get("success")
        if expected is not None and probe.success != expected:
            raise StepFailed(
                f"success: expected {expected}, seen {probe.success} ({probe.message})"
            )
        return f"{probe.transport}: {'ok' if probe.success else 'failed'} - {probe.message}"

    # -- router and breakers -----------------------------------------------------------
    async def _do_reenable(self, node: str) -> str:
        self.world.router.reenable_node(node)
        return f"{node} re-enabled"

    async def _do_prefer(self, args: dict[str, Any]) -> str:
        self.world.router.set_preferred_transport(args["node"], args["transport"])
        return f"{args['node']} prefers {args['transport']}"

    async def _do_reset_transport_failures(self, node: str) -> str:
        self.world.router.reset_transport_failures(node)
        return f"{node}: transport failures reset"

    async def _do_reset_breakers(self, node: str) -> str:
        self.world.transport.reset_circuit_breakers(None if node == "all" else node)
        return f"breakers reset ({node})"

    # -- control flow ------------------------------------------------------------------
    async def _do_check(self, cond: Any) -> str:
        seen = await check_condition(self.world, cond)
        if seen is not None:
            raise StepFailed(f"{cond.describe()}: {seen}")
        return f"{cond.describe()} holds"

    async def _do_repeat(self, args: dict[str, Any]) -> str:
        for _ in range(args["times"]):
            for child in args["steps"]:
                await self.run(child)
        return f"{args['times']} rounds"

    async def _do_wait_for(self, args: dict[str, Any]) -> str:
        cond, tick, within = args["condition"], args["tick"], args["within"]
        waited = 0.0
        for _ in range(MAX_WAIT_TICKS):
            if await check_condition(self.world, cond) is None:
                return f"{cond.describe()} after {waited:g} virtual s"
            if waited + tick > within + 1e-9:
                break
            if args["repeat"] is not None:
                await self.run(args["repeat"])
                if await check_condition(self.world, cond) is None:
                    return f"{cond.describe()} after {waited:g} virtual s"
            self.clock.advance(tick)
            waited += tick
            await self.on_tick()
        seen = await check_condition(self.world, cond)
        raise StepFailed(f"{cond.describe()} not reached within {within:g} virtual s: {seen}")


def summarize(result: TransferResult | HttpResult) -> str:
    tried = " -> ".join(
        a.transport + ("" if a.success else f"({a.error_kind})") for a in result.attempts
    )
    if result.success:
        return f"{result.transport_used} won [{tried}]"
    return f"failed ({result.error_kind}) [{tried or 'no attempt'}]"


def check_operation(result: TransferResult | HttpResult, expect: dict[str, Any]) -> None:
    """Compare an operation's result with a step's ``expect:`` mapping."""
    seen: dict[str, Any] = {
        "success": result.success,
        "transport_used": result.transport_used,
        "route": result.transport_used,
        "tried": [a.transport for a in result.attempts],
        "failed": [  # a connection that lost a race was cancelled, not failed
            a.transport for a in result.attempts if not a.success and a.error_kind != CANCELLED_KIND
        ],
        "error_kind": result.error_kind,
        "attempts": len(result.attempts),
        "status": getattr(result, "status", None),
    }
    problems = [f"{k}: expected {v!r}, seen {seen[k]!r}" for k, v in expect.items() if seen[k] != v]
    if problems:
        raise StepFailed("; ".join(problems) + f" [{summarize(result)}; error: {result.error}]")
