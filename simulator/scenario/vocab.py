"""The closed vocabularies a scenario compares against, derived from the engine itself.

Nothing here is a copied list: error kinds are the engine's ``ERROR_KINDS`` (its exception
classes and ``cancelled``), event types come from ``EventType``, transports from the
transport registry, breaker states from ``BreakerState``, alert names and stats keys from
``RouterStats``. A kind the engine adds flows into scenario validation without touching
this module.
"""

from __future__ import annotations

from functools import cache

from netfault.engine import (
    ERROR_KINDS,
    BreakerState,
    EventBus,
    EventType,
    ManualClock,
    NodeConfig,
    RouterStats,
    SyncError,
    default_transports,
    http_routes,
)

BREAKER_STATES: tuple[str, ...] = tuple(s.value for s in BreakerState)
EVENT_TYPES: tuple[str, ...] = tuple(e.value for e in EventType)


@cache
def transports() -> tuple[str, ...]:
    """Transport names, as the engine's registry keys them."""
    return tuple(default_transports())


@cache
def http_route_names() -> tuple[str, ...]:
    """The routes an HTTP request fails over across (a node with every address)."""
    return tuple(r.name for r in http_routes(NodeConfig("probe", tailscale_ip="100.64.0.1")))


@cache
def attempt_names() -> tuple[str, ...]:
    """What an attempt or an event names as its transport: a transport or ``http:ROUTE``."""
    return transports() + tuple(f"http:{r}" for r in http_route_names())


@cache
def error_kinds() -> tuple[str, ...]:
    """Every ``error_kind`` an attempt, an operation or an event can carry: the engine's
    closed vocabulary, and the database sync's own."""
    return tuple(sorted(ERROR_KINDS | {SyncError.kind}))


def _stats_probe() -> RouterStats:
    """Router counters with every alert's threshold crossed: one node, disabled, that
    failed and escalated far more often than an hour allows."""
    clock = ManualClock()
    stats = RouterStats(clock, EventBus(clock))
    stats.add_node([])
    stats.move([], [], disabled_delta=1)
    for _ in range(100):
        stats.record_failure("probe")
        stats.record_escalation()
    return stats


@cache
def alert_names() -> tuple[str, ...]:
    """The router's alert metrics (each threshold crossed once on a probe)."""
    return tuple(a["metric"] for a in _stats_probe().snapshot()["alerts"])


@cache
def stats_keys() -> tuple[str, ...]:
    """The keys of ``SyncRouter.get_stats()``."""
    return tuple(_stats_probe().snapshot())
