"""netfault's reference transport engine: failover, breakers, escalation, events."""

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
from netfault.engine.race import RaceEntry, RaceOutcome, RaceResult, race
from netfault.engine.results import Attempt, HttpResult, ProbeResult, TransferResult
from netfault.engine.route_memory import RouteMemory, RouteName, RouteStatus
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
    "RaceEntry",
    "RaceOutcome",
    "RaceResult",
    "RemoteStorageError",
    "RouteMemory",
    "RouteName",
    "RouteStatus",
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
    "race",
    "read_event_log",
]
