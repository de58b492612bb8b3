"""Every timeout and threshold in one place, each overridable by a NETFAULT_* variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from netfault.engine.errors import ConfigError

ENV_PREFIX = "NETFAULT_"


@dataclass(frozen=True)
class Thresholds:
    connect_timeout: float = 30.0
    operation_timeout: float = 180.0
    http_timeout: float = 30.0
    breaker_failure_threshold: int = 3
    breaker_recovery_timeout: float = 300.0
    breaker_half_open_max_wait: float = 600.0
    sync_failover_threshold: int = 1
    sync_backup_transport: str | None = None
    transport_history_size: int = 200
    race_delay: float | None = 0.5  # None (NETFAULT_RACE_DELAY=off): strictly sequential failover
    route_cooldown: float = 60.0

    @staticmethod
    def env_name(field_name: str) -> str:
        return ENV_PREFIX + field_name.upper()


def load_thresholds(env: Mapping[str, str] | None = None) -> Thresholds:
    """Defaults overridden by ``NETFAULT_<FIELD>`` variables (e.g. NETFAULT_CONNECT_TIMEOUT).

    An optional field is unset by ``off`` or ``none`` (e.g. NETFAULT_RACE_DELAY=off).
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for f in fields(Thresholds):
        name = Thresholds.env_name(f.name)
        raw = env.get(name)
        if raw is None or raw == "":
            continue
        if "None" in str(f.type) and raw.lower() in ("off", "none"):
            values[f.name] = None
            continue
        kind = {"float": float, "int": int}.get(str(f.type).replace(" | None", ""), str)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{raw!r} is not a valid {kind.__name__}", key=name) from None
        if isinstance(value, int | float) and value < 0:
            raise ConfigError(f"{raw!r} must not be negative", key=name)
        values[f.name] = value
    return Thresholds(**values)  # type: ignore[arg-type]
