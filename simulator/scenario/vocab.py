"""The closed vocabularies a scenario compares against, derived from the engine itself.

Nothing here is a copied list: error kinds come from the engine's exception classes and its
classifier, event types from ``EventType``, transports from the transport registry, breaker
states from ``BreakerState``, alert names and stats keys from ``RouterStats``. A kind the
engine adds flows into scenario validation without touching this module.
"""

from __future__ import annotations

import inspect
from functools import cache

from netfault.engine import errors, sync_remote
from netfault.engine.breaker import BreakerState
from netfault.engine.clock import ManualClock
from netfault.engine.config import NodeConfig
from netfault.engine.events import EventBus, EventType
from netfault.engine.http_client import http_routes
from netfault.engine.router_stats import RouterStats
from netfault.engine.transports import default_transports

# The one kind the engine writes without an exception class: an HTTP answer with a 5xx
# status (engine/http_failover.py). tests/test_scenario_vocab.py fails if another appears.
STATUS_KINDS = ("http_5xx",)
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


def _subclasses(cls: type[errors.NetfaultError]) -> list[type[errors.NetfaultError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def _classifier_kinds() -> set[str]:
    """Kinds ``errors.error_kind`` gives to exceptions that are not the engine's own."""
    probes: list[BaseException] = [
        TimeoutError(),
        ConnectionResetError(),
        ConnectionRefusedError(),
        OSError(),
        Exception(),
    ]
    return {errors.error_kind(p) for p in probes}


@cache
def error_kinds() -> tuple[str, ...]:
    """Every ``error_kind`` an attempt, an operation or an event can carry."""
    assert inspect.ismodule(sync_remote)  # imported so that its SyncError is registered
    kinds = {c.kind for c in _subclasses(errors.NetfaultError) if isinstance(c.kind, str)}
    return tuple(sorted(kinds | _classifier_kinds() | set(STATUS_KINDS)))


def _stats_probe() -> RouterStats:
    clock = ManualClock()
    stats = RouterStats(clock, EventBus(clock))
    for _ in range(100):  # far past every per-hour threshold
        stats.record_failure("probe")
        stats.record_escalation("probe")
    return stats


@cache
def alert_names() -> tuple[str, ...]:
    """The router's alert metrics (each threshold crossed once on a probe)."""
    return tuple(a["metric"] for a in _stats_probe().alerts(total_nodes=1, disabled=1))


@cache
def stats_keys() -> tuple[str, ...]:
    """The keys of ``SyncRouter.get_stats()``."""
    return tuple(_stats_probe().snapshot({}, 1, 0))
