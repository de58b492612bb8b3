"""slow_close: the end of stream leaves `delay` ms late."""

from __future__ import annotations

from typing import ClassVar

from netfault.simulator.proxy.toxics.base import LinkContext, Toxic, ToxicState


class SlowCloseToxic(Toxic):
    type_name: ClassVar[str] = "slow_close"
    go_name: ClassVar[str] = "SlowCloseToxic"
    fields: ClassVar[dict[str, str]] = {"delay": "int"}

    def eof_time(self, t: float, ctx: LinkContext, st: ToxicState) -> float:
        return max(t, ctx.now()) + int(self.attrs["delay"]) / 1000.0
