"""Node and transport configuration, with the architecture guide's fields and presets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from netfault.engine.thresholds import Thresholds, load_thresholds

TRANSPORT_TYPES = ("tailscale", "ssh", "rsync", "base64", "http", "p2p")

# -- Failover order: the one definition ----------------------------------------------------
# An operation tries a node's transports in this order (``NodeConfig.transport_order``):
#   1. a per-call list wins: ``transfer_file(transports=[...])``, the CLI's ``--transports``,
#      the router's forced/preferred/backup transport in front of its chain;
#   2. else the node's hosts-file ``transports:`` by (last_resort, priority, position);
#   3. else the default of the caller: ``DEFAULT_FILE_TRANSPORTS`` for ``transfer_file``
#      (the architecture guide's order), ``SYNC_ESCALATION_ORDER`` for the router's syncs
#      (the escalation runbook's), ``SCRIPT_METHODS`` for the script API's robust_* helpers.
# "tailscale" is dropped for a node without ``tailscale_ip``. HTTP API calls fail over across
# the node's addresses in ``HTTP_ROUTE_ORDER`` (a route without an address is skipped).
DEFAULT_FILE_TRANSPORTS = ("tailscale", "ssh", "base64", "http")
SYNC_ESCALATION_ORDER = ("p2p", "http", "rsync", "base64")
SCRIPT_METHODS = ("rsync", "scp", "base64")
HTTP_ROUTE_ORDER = ("tailscale", "hostname")


@dataclass(frozen=True)
class TransportSpec:
    """One entry of a node's ``transports:`` list in the hosts file."""

    type: str
    priority: int = 100
    fallback: bool = False
    last_resort: bool = False


@dataclass(frozen=True)
class NodeConfig:
    """How to reach one node. ``name`` defaults to ``hostname``."""

    hostname: str
    tailscale_ip: str | None = None
    ssh_port: int = 22
    http_port: int = 8080
    http_scheme: str = "http"
    base_path: str = "netfault"
    name: str = ""
    ssh_user: str | None = None
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    p2p_port: int = 8770
    http_token: str | None = None
    tailscale_ssh_port: int | None = None
    tailscale_http_port: int | None = None
    transports: tuple[TransportSpec, ...] = ()
    allow_absolute_paths: bool = False  # see netfault.engine.paths

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.hostname)

    def transport_order(self, default: Sequence[str] = DEFAULT_FILE_TRANSPORTS) -> list[str]:
        """Transports to try, best first: the configured list by priority, else ``default``
        (see "Failover order" above)."""
        if self.transports:
            ranked = sorted(
                enumerate(self.transports),
                key=lambda item: (item[1].last_resort, item[1].priority, item[0]),
            )
            names = [spec.type for _, spec in ranked]
        else:
            names = list(default)
        if self.tailscale_ip is None:
            names = [n for n in names if n != "tailscale"]
        return names

    def with_changes(self, **changes: object) -> NodeConfig:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TransportConfig:
    """Timeouts and tuning for one operation."""

    connect_timeout: float = 30.0
    operation_timeout: float = 180.0
    http_timeout: float = 30.0
    integrity_retries: int = 1
    chunk_size: int = 4 * 1024 * 1024
    verify_checksum: bool = True
    race_delay: float | None = 0.5  # start the next route's connection after this; None: never
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_thresholds(cls, thresholds: Thresholds | None = None) -> TransportConfig:
        t = thresholds or load_thresholds()
        return cls(
            connect_timeout=t.connect_timeout,
            operation_timeout=t.operation_timeout,
            http_timeout=t.http_timeout,
            race_delay=t.race_delay,
        )

    @classmethod
    def for_large_transfers(cls) -> TransportConfig:
        """Models, archives: connect 60 s, operation 600 s."""
        return cls(connect_timeout=60.0, operation_timeout=600.0, http_timeout=600.0)

    @classmethod
    def for_quick_requests(cls) -> TransportConfig:
        """API calls and status checks: connect 10 s, operation 30 s."""
        return cls(connect_timeout=10.0, operation_timeout=30.0, http_timeout=30.0)
