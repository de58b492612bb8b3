"""Runs a scenario: a fresh cluster, the engine on a virtual clock, steps, then expectations.

Faults are always cleared at the end (the cluster's exit clears them even when a step
failed), and a failing step stops the scenario: later steps would only report noise.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig, TransportConfig, TransportSpec
from netfault.engine.events import EventBus, EventRecorder
from netfault.engine.router import TRANSPORT_ESCALATION_ORDER, SyncRouter
from netfault.engine.thresholds import Thresholds
from netfault.engine.transport import ClusterTransport
from netfault.simulator.cluster.spec import NodeSpec
from netfault.simulator.scenario.checks import (
    World,
    breaker_sequence,
    check_condition,
    event_matches,
    find_in_order,
    subset_mismatch,
)
from netfault.simulator.scenario.model import Condition, Scenario, Step
from netfault.simulator.scenario.results import Failure, ScenarioResult, StepOutcome
from netfault.simulator.scenario.steps import StepFailed, StepRunner

SCENARIO_CONFIG = TransportConfig(connect_timeout=3.0, operation_timeout=15.0, http_timeout=3.0)


def transport_configs(overrides: dict[str, float | None]) -> dict[str, TransportConfig]:
    base = {
        "scenario": SCENARIO_CONFIG,
        "quick": TransportConfig.for_quick_requests(),
        "large": TransportConfig.for_large_transfers(),
        "default": TransportConfig(),
    }
    overrides = {k: v for k, v in overrides.items() if k != "route_cooldown"}  # a Thresholds one
    return {k: TransportConfig(**{**vars(v), **overrides}) for k, v in base.items()}


def make_cluster(scenario: Scenario, backend: str, seed: int) -> Any:
    specs = [
        NodeSpec(
            n.name, n.tailscale, tuple(TransportSpec(**t) for t in n.transports), n.ssh_server
        )
        for n in scenario.cluster.nodes
    ]
    if backend == "docker":
        from netfault.simulator.cluster.docker import DockerCluster

        return DockerCluster(nodes=specs, seed=seed)
    from netfault.simulator.cluster.local import LocalCluster

    return LocalCluster(nodes=specs, seed=seed)


class ScenarioRunner:
    def __init__(
        self, scenario: Scenario, *, backend: str = "local", seed: int | None = None
    ) -> None:
        self.scenario = scenario
        self.backend = backend
        self.seed = scenario.seed if seed is None else seed
        self.result = ScenarioResult(scenario, self.seed)
        self._held: dict[int, float] = {}

    async def run(self) -> ScenarioResult:
        started = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(prefix="netfault-scenario-"))
        try:
            async with make_cluster(self.scenario, self.backend, self.seed) as cluster:
                await self._run_in(cluster, workdir)
        except StepFailed:
            pass
        except Exception as exc:  # a broken cluster or engine is reported, not raised
            self.result.error = f"{type(exc).__name__}: {exc}"
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            self.result.seconds = time.perf_counter() - started
        return self.result

    def _engine(self, cluster: Any) -> tuple[ManualClock, World, dict[str, TransportConfig]]:
        spec = self.scenario.cluster
        clock = ManualClock()
        recorder = EventRecorder()
        bus = EventBus(clock)
        bus.subscribe(recorder)
        cooldown = spec.config.get("route_cooldown")
        thresholds = Thresholds(
            breaker_failure_threshold=int(spec.breaker.get("failure_threshold", 3)),
            breaker_recovery_timeout=spec.breaker.get("recovery_timeout", 300.0),
            breaker_half_open_max_wait=spec.breaker.get("half_open_max_wait", 600.0),
            sync_failover_threshold=int(spec.router.get("failover_threshold", 1)),
            sync_backup_transport=spec.router.get("backup_transport"),
            route_cooldown=cooldown if cooldown is not None else Thresholds.route_cooldown,
        )
        configs = transport_configs(spec.config)
        transport = ClusterTransport(
            clock=clock, thresholds=thresholds, events=bus, config=configs[spec.preset]
        )
        nodes: list[NodeConfig] = list(cluster.nodes.values())
        router = SyncRouter(
            transport,
            nodes=nodes,
            thresholds=thresholds,
            escalation_order=spec.router.get("escalation_order", TRANSPORT_ESCALATION_ORDER),
        )
        self.result.events = recorder.events
        return clock, World(transport, router, recorder.events, cluster), configs

    async def _run_in(self, cluster: Any, workdir: Path) -> None:
        clock, world, configs = self._engine(cluster)

        async def on_tick() -> None:
            await self._check_invariants(world, clock, None)

        runner = StepRunner(world, clock, self.seed, workdir, configs, on_tick)
        try:
            for step in self.scenario.steps:
                await self._run_step(runner, step, clock)
                await self._check_invariants(world, clock, step)
            await self._final_checks(world)
        finally:
            await world.transport.close()

    async def _run_step(self, runner: StepRunner, step: Step, clock: ManualClock) -> None:
        started = time.perf_counter()
        outcome = StepOutcome(step.index, step.describe(), step.where, True, clock.monotonic(), 0.0)
        self.result.steps.append(outcome)
        try:
            outcome.detail = await runner.run(step)
        except StepFailed as exc:
            outcome.ok, outcome.detail = False, str(exc)
            self.result.failures.append(Failure(step.where, f"step {step.describe()}", str(exc)))
            raise
        finally:
            outcome.seconds = time.perf_counter() - started

    async def _check_invariants(self, world: World, clock: ManualClock, step: Step | None) -> None:
        after = f"after step {step.describe()}" if step else "while waiting"
        for cond in self.scenario.always:
            seen = await check_condition(world, cond)
            if seen is not None:
                self.result.failures.append(
                    Failure(cond.where, f"always {cond.describe()}", f"broken {after}: {seen}")
                )
                raise StepFailed(seen)
        for i, cond in enumerate(self.scenario.eventually):
            if i not in self._held and await check_condition(world, cond) is None:
                self._held[i] = clock.monotonic()

    async def _final_checks(self, world: World) -> None:
        for i, cond in enumerate(self.scenario.eventually):
            held = self._held.get(i)
            assert cond.within is not None
            if held is None or held > cond.within:
                when = "never" if held is None else f"only at {held:g} virtual s"
                self._fail(
                    cond, f"eventually {cond.describe()} within {cond.within:g}s", f"held {when}"
                )
        problems = check_expectations(self.scenario.expect, world)
        for node, paths in self.scenario.expect.get("files", {}).items():
            for path in paths:
                where = self.scenario.expect_where
                seen = await check_condition(
                    world, Condition("file", {"node": node, "path": path}, where)
                )
                if seen is not None:
                    problems.append(f"files: {seen}")
        for problem in problems:
            self.result.failures.append(Failure(self.scenario.expect_where, "expect", problem))

    def _fail(self, cond: Condition, what: str, message: str) -> None:
        self.result.failures.append(Failure(cond.where, what, message))


def check_expectations(expect: dict[str, Any], world: World) -> list[str]:
    """Every scenario-level expectation that does not hold, as 'key: expected vs seen'."""
    problems = []
    for node, states in expect.get("breaker", {}).items():
        seen = breaker_sequence(world.events, node)
        if seen != states:
            problems.append(
                f"breaker {node}: expected {' -> '.join(states)}, seen {' -> '.join(seen)}"
            )
    disabled = world.router.get_disabled_nodes()
    for node, want in expect.get("disabled", {}).items():
        if want is False:
            if node in disabled:
                problems.append(f"disabled {node}: expected enabled, seen {disabled[node]}")
        elif node not in disabled:
            problems.append(f"disabled {node}: expected disabled, seen enabled")
        else:
            mismatch = subset_mismatch(want, disabled[node])
            if mismatch:
                problems.append(f"disabled {node}: {mismatch}")
    if "events" in expect:
        missing = find_in_order(world.events, expect["events"])
        if missing:
            problems.append(f"events: {missing}")
    for spec in expect.get("no_events", []):
        if any(event_matches(e, spec) for e in world.events):
            problems.append(f"no_events: {spec} was emitted")
    if "stats" in expect:
        mismatch = subset_mismatch(expect["stats"], world.router.get_stats())
        if mismatch:
            problems.append(f"stats {mismatch}")
    seen_alerts = {e.outcome for e in world.events if e.type == "ALERT" and e.outcome}
    for metric in expect.get("alerts", []):
        if metric not in seen_alerts:
            problems.append(f"alerts: expected {metric}, seen {sorted(seen_alerts) or 'none'}")
    return problems


async def run_scenario(
    scenario: Scenario, *, backend: str = "local", seed: int | None = None
) -> ScenarioResult:
    return await ScenarioRunner(scenario, backend=backend, seed=seed).run()
