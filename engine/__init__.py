"""netfault's reference transport engine: failover, breakers, escalation, events."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netfault.engine.breaker import BreakerRegistry, BreakerState, CircuitBreaker
    from netfault.engine.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
    from netfault.engine.config import NodeConfig, TransportConfig, TransportSpec
    from netfault.engine.errors import (
        AllTransportsFailed,
        AuthenticationError,
        CircuitOpenError,
        ConfigError,
        ConnectError,
        ConnectionReset,
        IntegrityError,
        NetfaultError,
        NodeDisabledError,
        RemoteStorageError,
        TransportError,
        TransportTimeout,
        TransportUnavailable,
    )
    from netfault.engine.events import (
        Event,
        EventBus,
        EventRecorder,
        EventType,
        JsonlEventLog,
        read_event_log,
    )
    from netfault.engine.hosts import load_hosts
    from netfault.engine.results import Attempt, HttpResult, ProbeResult, TransferResult
    from netfault.engine.router import TRANSPORT_ESCALATION_ORDER, SyncRouter, get_sync_router
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
    from netfault.engine.transports.base import Direction, Transport

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
    "NodeConfig": "netfault.engine.config",
    "TransportConfig": "netfault.engine.config",
    "TransportSpec": "netfault.engine.config",
    "AllTransportsFailed": "netfault.engine.errors",
    "AuthenticationError": "netfault.engine.errors",
    "CircuitOpenError": "netfault.engine.errors",
    "ConfigError": "netfault.engine.errors",
    "ConnectError": "netfault.engine.errors",
    "ConnectionReset": "netfault.engine.errors",
    "IntegrityError": "netfault.engine.errors",
    "NetfaultError": "netfault.engine.errors",
    "NodeDisabledError": "netfault.engine.errors",
    "RemoteStorageError": "netfault.engine.errors",
    "TransportError": "netfault.engine.errors",
    "TransportTimeout": "netfault.engine.errors",
    "TransportUnavailable": "netfault.engine.errors",
    "Event": "netfault.engine.events",
    "EventBus": "netfault.engine.events",
    "EventRecorder": "netfault.engine.events",
    "EventType": "netfault.engine.events",
    "JsonlEventLog": "netfault.engine.events",
    "read_event_log": "netfault.engine.events",
    "load_hosts": "netfault.engine.hosts",
    "Attempt": "netfault.engine.results",
    "HttpResult": "netfault.engine.results",
    "ProbeResult": "netfault.engine.results",
    "TransferResult": "netfault.engine.results",
    "TRANSPORT_ESCALATION_ORDER": "netfault.engine.router",
    "SyncRouter": "netfault.engine.router",
    "get_sync_router": "netfault.engine.router",
    "DatabaseSyncManager": "netfault.engine.sync",
    "LocalStats": "netfault.engine.sync",
    "NodeSyncState": "netfault.engine.sync",
    "SyncRoundResult": "netfault.engine.sync",
    "SyncError": "netfault.engine.sync_remote",
    "SQLiteSyncManager": "netfault.engine.sync_sqlite",
    "Thresholds": "netfault.engine.thresholds",
    "load_thresholds": "netfault.engine.thresholds",
    "ClusterTransport": "netfault.engine.transport",
    "Direction": "netfault.engine.transports.base",
    "Transport": "netfault.engine.transports.base",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "SYSTEM_CLOCK",
    "TRANSPORT_ESCALATION_ORDER",
    "AllTransportsFailed",
    "Attempt",
    "AuthenticationError",
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
    "HttpResult",
    "IntegrityError",
    "JsonlEventLog",
    "ManualClock",
    "NetfaultError",
    "NodeConfig",
    "NodeDisabledError",
    "ProbeResult",
    "RemoteStorageError",
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
    "get_sync_router",
    "load_hosts",
    "load_thresholds",
    "read_event_log",
]
