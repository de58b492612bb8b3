"""noop: passes everything through unchanged."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Toxic


class NoopToxic(Toxic):
    type_name: ClassVar[str] = "noop"
    go_name: ClassVar[str] = "NoopToxic"
    fields: ClassVar[dict[str, str]] = {}

    def passes_through(self) -> bool:
        return True
