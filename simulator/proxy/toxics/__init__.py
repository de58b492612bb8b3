"""Toxic types, one per module, registered by their Toxiproxy type name."""

from __future__ import annotations

from typing import Any

from netfault.simulator.proxy.toxics.bandwidth import BandwidthAttributes, BandwidthToxic
from netfault.simulator.proxy.toxics.base import (
    Chunk,
    Kind,
    LinkContext,
    NoAttributes,
    Timer,
    Toxic,
    ToxicState,
)
from netfault.simulator.proxy.toxics.corrupt import CorruptAttributes, CorruptToxic
from netfault.simulator.proxy.toxics.flap import FlapAttributes, FlapToxic
from netfault.simulator.proxy.toxics.latency import LatencyAttributes, LatencyToxic
from netfault.simulator.proxy.toxics.limit_data import LimitDataAttributes, LimitDataToxic
from netfault.simulator.proxy.toxics.noop import NoopToxic
from netfault.simulator.proxy.toxics.reset_peer import ResetPeerAttributes, ResetPeerToxic
from netfault.simulator.proxy.toxics.slicer import SlicerAttributes, SlicerToxic
from netfault.simulator.proxy.toxics.slow_close import SlowCloseAttributes, SlowCloseToxic
from netfault.simulator.proxy.toxics.timeout import TimeoutAttributes, TimeoutToxic

REGISTRY: dict[str, type[Toxic[Any]]] = {
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
        FlapToxic,
    )
}

__all__ = [
    "REGISTRY",
    "BandwidthAttributes",
    "BandwidthToxic",
    "Chunk",
    "CorruptAttributes",
    "CorruptToxic",
    "FlapAttributes",
    "FlapToxic",
    "Kind",
    "LatencyAttributes",
    "LatencyToxic",
    "LimitDataAttributes",
    "LimitDataToxic",
    "LinkContext",
    "NoAttributes",
    "NoopToxic",
    "ResetPeerAttributes",
    "ResetPeerToxic",
    "SlicerAttributes",
    "SlicerToxic",
    "SlowCloseAttributes",
    "SlowCloseToxic",
    "TimeoutAttributes",
    "TimeoutToxic",
    "Timer",
    "Toxic",
    "ToxicState",
]
