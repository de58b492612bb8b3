"""netfault's reference transport engine: failover, breakers, escalation, events."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netfault.engine.breaker import BreakerRegistry, BreakerState, CircuitBreaker
    from netfault.engine.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
    from netfault.engine.config import (
        DEFAULT_FILE_TRANSPORTS,
        SYNC_ESCALATION_ORDER,
        TRANSPORT_TYPES,
        NodeConfig,
        TransportConfig,
        TransportSpec,
    )
    from netfault.engine.errors import (
        CANCELLED_KIND,
        ERROR_KINDS,
        REQUEST_KINDS,
        AttemptError,
        AuthenticationError,
        BadRemotePathError,
        CircuitOpenError,
        ConfigError,
        ConnectError,
        ConnectionReset,
        IntegrityError,
        IsDirectoryError,
        LocalPermissionError,
        MissingKeyError,
        NetfaultError,
        NodeDisabledError,
        NotFoundError,
        RemoteStorageError,
        RequestError,
        ServerError,
        TransportError,
        TransportTimeout,
        TransportUnavailable,
        most_telling,
    )
    from netfault.engine.events import (
        Event,
        EventBus,
        EventRecorder,
        EventType,
        JsonlEventLog,
        read_event_log,
    )
    from netfault.engine.failover import Escalation
    from netfault.engine.hosts import load_hosts
    from netfault.engine.http_client import http_routes
    from netfault.engine.paths import confine_remote_path
    from netfault.engine.race import RaceEntry, RaceOutcome, RaceResult, race
    from netfault.engine.results import Attempt, HttpResult, ProbeResult, TransferResult
    from netfault.engine.route_memory import RouteMemory, RouteName, RouteStatus
    from netfault.engine.router import TRANSPORT_ESCALATION_ORDER, SyncRouter, get_sync_router
    from netfault.engine.router_stats import RouterStats
    from netfault.engine.sync import (
        DatabaseSyncManager,
        LocalStats,
        NodeSyncState,
        SyncRoundResult,
    )
    from netfault.engine.sync_remote import SyncError
    from netfault.engine.sync_sqlite import SQLiteSyncManager
    from netfault.engine.thresholds import Thresholds, load_thresholds
    from netfault.engine.transport import ClusterTransport
    from netfault.engine.transports import default_transports
    from netfault.engine.transports.base import Direction, Progress, Transport
    from netfault.engine.transports.remote import part_name
    from netfault.engine.yamlsrc import Located, load_located

# Each name is imported from its module on first use, so importing one submodule (the
# command line, for `netfault --help`) does not pay for asyncssh and aiohttp.
_EXPORTS = {
    "BreakerRegistry": "netfault.engine.breaker",
    "BreakerState": "netfault.engine.breaker",
    "CircuitBreaker": "netfault.engine.breaker",
    "SYSTEM_CLOCK": "netfault.engine.clock",
    "Clock": "netfault.engine.clock",
    "ManualClock": "netfault.engine.clock",
    "SystemClock": "netfault.engine.clock",
    "DEFAULT_FILE_TRANSPORTS": "netfault.engine.config",
    "SYNC_ESCALATION_ORDER": "netfault.engine.config",
    "TRANSPORT_TYPES": "netfault.engine.config",
    "NodeConfig": "netfault.engine.config",
    "TransportConfig": "netfault.engine.config",
    "TransportSpec": "netfault.engine.config",
    "CANCELLED_KIND": "netfault.engine.errors",
    "ERROR_KINDS": "netfault.engine.errors",
    "REQUEST_KINDS": "netfault.engine.errors",
    "AttemptError": "netfault.engine.errors",
    "AuthenticationError": "netfault.engine.errors",
    "BadRemotePathError": "netfault.engine.errors",
    "CircuitOpenError": "netfault.engine.errors",
    "ConfigError": "netfault.engine.errors",
    "ConnectError": "netfault.engine.errors",
    "ConnectionReset": "netfault.engine.errors",
    "IntegrityError": "netfault.engine.errors",
    "IsDirectoryError": "netfault.engine.errors",
    "LocalPermissionError": "netfault.engine.errors",
    "MissingKeyError": "netfault.engine.errors",
    "NetfaultError": "netfault.engine.errors",
    "NodeDisabledError": "netfault.engine.errors",
    "NotFoundError": "netfault.engine.errors",
    "RemoteStorageError": "netfault.engine.errors",
    "RequestError": "netfault.engine.errors",
    "ServerError": "netfault.engine.errors",
    "TransportError": "netfault.engine.errors",
    "TransportTimeout": "netfault.engine.errors",
    "TransportUnavailable": "netfault.engine.errors",
    "most_telling": "netfault.engine.errors",
    "Event": "netfault.engine.events",
    "EventBus": "netfault.engine.events",
    "EventRecorder": "netfault.engine.events",
    "EventType": "netfault.engine.events",
    "JsonlEventLog": "netfault.engine.events",
    "read_event_log": "netfault.engine.events",
    "Escalation": "netfault.engine.failover",
    "load_hosts": "netfault.engine.hosts",
    "http_routes": "netfault.engine.http_client",
    "confine_remote_path": "netfault.engine.paths",
    "RaceEntry": "netfault.engine.race",
    "RaceOutcome": "netfault.engine.race",
    "RaceResult": "netfault.engine.race",
    "race": "netfault.engine.race",
    "Attempt": "netfault.engine.results",
    "HttpResult": "netfault.engine.results",
    "ProbeResult": "netfault.engine.results",
    "TransferResult": "netfault.engine.results",
    "RouteMemory": "netfault.engine.route_memory",
    "RouteName": "netfault.engine.route_memory",
    "RouteStatus": "netfault.engine.route_memory",
    "TRANSPORT_ESCALATION_ORDER": "netfault.engine.router",
    "SyncRouter": "netfault.engine.router",
    "get_sync_router": "netfault.engine.router",
    "RouterStats": "netfault.engine.router_stats",
    "DatabaseSyncManager": "netfault.engine.sync",
    "LocalStats": "netfault.engine.sync",
    "NodeSyncState": "netfault.engine.sync",
    "SyncRoundResult": "netfault.engine.sync",
    "SyncError": "netfault.engine.sync_remote",
    "SQLiteSyncManager": "netfault.engine.sync_sqlite",
    "Thresholds": "netfault.engine.thresholds",
    "load_thresholds": "netfault.engine.thresholds",
    "ClusterTransport": "netfault.engine.transport",
    "default_transports": "netfault.engine.transports",
    "Direction": "netfault.engine.transports.base",
    "Progress": "netfault.engine.transports.base",
    "Transport": "netfault.engine.transports.base",
    "part_name": "netfault.engine.transports.remote",
    "Located": "netfault.engine.yamlsrc",
    "load_located": "netfault.engine.yamlsrc",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "most_telling",
    "CANCELLED_KIND",
    "ERROR_KINDS",
    "DEFAULT_FILE_TRANSPORTS",
    "SYNC_ESCALATION_ORDER",
    "TRANSPORT_TYPES",
    "Located",
    "Progress",
    "load_located",
    "SYSTEM_CLOCK",
    "TRANSPORT_ESCALATION_ORDER",
    "REQUEST_KINDS",
    "Attempt",
    "AttemptError",
    "AuthenticationError",
    "BadRemotePathError",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ClusterTransport",
    "ConfigError",
    "ConnectError",
    "ConnectionReset",
    "DatabaseSyncManager",
    "LocalStats",
    "NodeSyncState",
    "SQLiteSyncManager",
    "SyncError",
    "SyncRoundResult",
    "Direction",
    "Event",
    "EventBus",
    "EventRecorder",
    "EventType",
    "Escalation",
    "HttpResult",
    "IntegrityError",
    "IsDirectoryError",
    "LocalPermissionError",
    "MissingKeyError",
    "JsonlEventLog",
    "ManualClock",
    "NetfaultError",
    "NodeConfig",
    "NodeDisabledError",
    "NotFoundError",
    "ProbeResult",
    "RaceEntry",
    "RaceOutcome",
    "RaceResult",
    "RemoteStorageError",
    "RequestError",
    "RouteMemory",
    "RouteName",
    "RouteStatus",
    "RouterStats",
    "ServerError",
    "SyncRouter",
    "SystemClock",
    "Thresholds",
    "Transport",
    "TransportConfig",
    "TransportError",
    "TransportSpec",
    "TransportTimeout",
    "TransportUnavailable",
    "TransferResult",
    "confine_remote_path",
    "default_transports",
    "get_sync_router",
    "http_routes",
    "load_hosts",
    "load_thresholds",
    "part_name",
    "race",
    "read_event_log",
]
