"""Runs a scenario: a fresh cluster, the engine on a virtual clock, steps, then expectations.

Faults are always cleared at the end (the cluster's exit clears them even when a step
failed), and a failing step stops the scenario: later steps would only report noise.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netfault.engine import (
    TRANSPORT_ESCALATION_ORDER,
    ClusterTransport,
    EventBus,
    EventRecorder,
    ManualClock,
    NodeConfig,
    SyncRouter,
    Thresholds,
    TransportSpec,
)
from netfault.simulator.cluster.local import LocalCluster
from netfault.simulator.cluster.spec import Cluster, NodeSpec
from netfault.simulator.scenario.checks import World
from netfault.simulator.scenario.fault_watch import FaultWatch
from netfault.simulator.scenario.model import Scenario
from netfault.simulator.scenario.presets import effective_config
from netfault.simulator.scenario.results import Failure, ScenarioResult, StepOutcome
from netfault.simulator.scenario.steps import StepContext, StepFailed, StepModel

if TYPE_CHECKING:
    from netfault.simulator.cluster.docker import DockerCluster


def make_cluster(scenario: Scenario, backend: str, seed: int) -> LocalCluster | DockerCluster:
    specs = [
        NodeSpec(n.name, n.tailscale, tuple(TransportSpec(**t) for t in n.transports), n.ssh_server)
        for n in (node.entry() for node in scenario.cluster.nodes)
    ]
    if backend == "docker":
        from netfault.simulator.cluster.docker import DockerCluster

        return DockerCluster(nodes=specs, seed=seed)
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

    def _engine(self, cluster: Cluster) -> tuple[ManualClock, World]:
        spec = self.scenario.cluster
        clock = ManualClock()
        recorder = EventRecorder()
        bus = EventBus(clock)
        bus.subscribe(recorder)
        cooldown = spec.config.route_cooldown
        thresholds = Thresholds(
            breaker_failure_threshold=spec.breaker.failure_threshold,
            breaker_recovery_timeout=spec.breaker.recovery_timeout,
            breaker_half_open_max_wait=spec.breaker.half_open_max_wait,
            sync_failover_threshold=spec.router.failover_threshold,
            sync_backup_transport=spec.router.backup_transport,
            route_cooldown=Thresholds.route_cooldown if cooldown is None else cooldown,
        )
        transport = ClusterTransport(
            clock=clock,
            thresholds=thresholds,
            events=bus,
            config=effective_config(spec.preset, spec.config.overrides()),
        )
        nodes: list[NodeConfig] = list(cluster.nodes.values())
        router = SyncRouter(
            transport,
            nodes=nodes,
            thresholds=thresholds,
            escalation_order=spec.router.escalation_order or TRANSPORT_ESCALATION_ORDER,
        )
        self.result.events = recorder.events
        return clock, World(transport, router, recorder.events, cluster)

    async def _run_in(self, cluster: Cluster, workdir: Path) -> None:
        clock, world = self._engine(cluster)

        async def on_tick() -> None:
            await self._check_invariants(world, clock, None)

        spec = self.scenario.cluster
        ctx = StepContext(
            world,
            clock,
            self.seed,
            workdir,
            spec.preset,
            spec.config.overrides(),
            on_tick,
            fault_sets=self.scenario.fault_sets,
        )
        self.result.fault_trace = ctx.trace
        ctx.watch = await asyncio.to_thread(FaultWatch, ctx)  # Docker: starts HTTP pollers
        try:
            for step in self.scenario.steps:
                await self._run_step(ctx, step)
                await self._check_invariants(world, clock, step)
            await self._final_checks(world)
        finally:
            await asyncio.to_thread(ctx.watch.close)
            await world.transport.close()

    async def _run_step(self, ctx: StepContext, step: StepModel) -> None:
        started = time.perf_counter()
        now = ctx.clock.monotonic()
        outcome = StepOutcome(step.index, step.describe(), step.where, True, now, 0.0)
        self.result.steps.append(outcome)
        try:
            outcome.detail = await step.run(ctx)
        except StepFailed as exc:
            outcome.ok, outcome.detail = False, str(exc)
            self.result.failures.append(Failure(step.where, f"step {step.describe()}", str(exc)))
            raise
        finally:
            outcome.seconds = time.perf_counter() - started
        await ctx.settle()

    async def _check_invariants(
        self, world: World, clock: ManualClock, step: StepModel | None
    ) -> None:
        after = f"after step {step.describe()}" if step else "while waiting"
        for cond in self.scenario.always:
            seen = await cond.holds(world)
            if seen is not None:
                self.result.failures.append(
                    Failure(cond.where, f"always {cond.describe()}", f"broken {after}: {seen}")
                )
                raise StepFailed(seen)
        for i, eventually in enumerate(self.scenario.eventually):
            if i not in self._held and await eventually.holds(world) is None:
                self._held[i] = clock.monotonic()

    async def _final_checks(self, world: World) -> None:
        for i, cond in enumerate(self.scenario.eventually):
            held = self._held.get(i)
            if held is None or held > cond.within:
                when = "never" if held is None else f"only at {held:g} virtual s"
                self.result.failures.append(
                    Failure(cond.where, f"eventually {cond.describe()}", f"held {when}")
                )
        for problem in await self.scenario.expect.problems(world):
            self.result.failures.append(Failure(self.scenario.expect_where, "expect", problem))


async def run_scenario(
    scenario: Scenario, *, backend: str = "local", seed: int | None = None
) -> ScenarioResult:
    return await ScenarioRunner(scenario, backend=backend, seed=seed).run()


# Scenarios run two at a time by default: each has a cluster of its own (its own loopback
# block, ephemeral ports, its own virtual clock), and most of a scenario's wall time is
# spent waiting on timeouts and throttled links rather than on a core.
DEFAULT_JOBS = 2


async def run_scenarios(
    scenarios: Sequence[Scenario],
    *,
    jobs: int = DEFAULT_JOBS,
    backend: str = "local",
    seed: int | None = None,
    starting: Callable[[Scenario], None] | None = None,
    finished: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Run ``scenarios``, at most ``jobs`` at once; results in the order given.

    ``starting`` and ``finished`` are called as each one starts and ends. Cancelling cancels
    the ones running; the ones that finished were reported to ``finished``."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, not {jobs}")
    slots = asyncio.Semaphore(jobs)

    async def one(scenario: Scenario) -> ScenarioResult:
        async with slots:
            if starting is not None:
                starting(scenario)
            result = await run_scenario(scenario, backend=backend, seed=seed)
        if finished is not None:
            finished(result)
        return result

    async with asyncio.TaskGroup() as group:  # one raising or a cancel stops them all
        tasks = [group.create_task(one(s)) for s in scenarios]
    return [task.result() for task in tasks]
