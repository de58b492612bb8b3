"""noop: passes everything through unchanged."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy.toxics.base import NoAttributes, Toxic


class NoopToxic(Toxic[NoAttributes]):
    type_name: ClassVar[str] = "noop"
    go_name: ClassVar[str] = "NoopToxic"

    def passes_through(self) -> bool:
        return True
