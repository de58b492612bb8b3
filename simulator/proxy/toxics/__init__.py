"""Toxic types, one per module, registered by their Toxiproxy type name."""

from __future__ import annotations

from netfault.simulator.proxy.toxics.bandwidth import BandwidthToxic
from netfault.simulator.proxy.toxics.base import Chunk, Kind, LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.toxics.corrupt import CorruptToxic
from netfault.simulator.proxy.toxics.latency import LatencyToxic
from netfault.simulator.proxy.toxics.limit_data import LimitDataToxic
from netfault.simulator.proxy.toxics.noop import NoopToxic
from netfault.simulator.proxy.toxics.reset_peer import ResetPeerToxic
from netfault.simulator.proxy.toxics.slicer import SlicerToxic
from netfault.simulator.proxy.toxics.slow_close import SlowCloseToxic
from netfault.simulator.proxy.toxics.timeout import TimeoutToxic

REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (
        NoopToxic,
        LatencyToxic,
        BandwidthToxic,
        SlowCloseToxic,
        TimeoutToxic,
        ResetPeerToxic,
        SlicerToxic,
        LimitDataToxic,
        CorruptToxic,
    )
}

__all__ = [
    "REGISTRY",
    "BandwidthToxic",
    "Chunk",
    "CorruptToxic",
    "Kind",
    "LatencyToxic",
    "LimitDataToxic",
    "LinkContext",
    "NoopToxic",
    "ResetPeerToxic",
    "SlicerToxic",
    "SlowCloseToxic",
    "TimeoutToxic",
    "Toxic",
    "ToxicState",
]
