"""Which timeouts an operation of a scenario runs with.

One precedence, lowest first: the built-in scenario defaults < the cluster's ``preset:`` <
the cluster's ``config:`` < the step's ``preset:`` < the step's ``config:``. A step's preset
starts again from that preset's own values (so ``preset: large`` really gives 600 s even
when the cluster tightened its timeouts); a step's config then changes single fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from netfault.engine import TransportConfig

BUILT_IN = "scenario"
SCENARIO_CONFIG = TransportConfig(connect_timeout=3.0, operation_timeout=15.0, http_timeout=3.0)
PRESETS: dict[str, TransportConfig] = {
    BUILT_IN: SCENARIO_CONFIG,
    "quick": TransportConfig.for_quick_requests(),
    "large": TransportConfig.for_large_transfers(),
    "default": TransportConfig(),
}
# The fields a scenario may set in ``config:`` (durations in seconds, retries, and the race
# delay, None for no racing).
CONFIG_FIELDS = (
    "connect_timeout",
    "operation_timeout",
    "http_timeout",
    "integrity_retries",
    "race_delay",
)

Overrides = Mapping[str, float | None]


def effective_config(
    cluster_preset: str | None = None,
    cluster_config: Overrides | None = None,
    step_preset: str | None = None,
    step_config: Overrides | None = None,
) -> TransportConfig:
    """The TransportConfig of one operation, by the precedence above."""
    if step_preset is not None:
        config = PRESETS[step_preset]
    else:
        config = _changed(PRESETS[cluster_preset or BUILT_IN], cluster_config or {})
    return _changed(config, step_config or {})


def _changed(config: TransportConfig, overrides: Overrides) -> TransportConfig:
    values = {
        k: v if v is None else int(v) if k == "integrity_retries" else float(v)
        for k, v in overrides.items()
    }
    return replace(config, **values)  # type: ignore[arg-type]
