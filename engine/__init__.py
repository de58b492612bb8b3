"""netfault's reference transport engine: failover, breakers, escalation, events."""

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
