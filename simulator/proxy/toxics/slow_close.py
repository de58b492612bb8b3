"""slow_close: the end of stream leaves `delay` ms late."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy.toxics.base import LinkContext, Toxic, ToxicState
from netfault.simulator.proxy.trace import FaultAction


@dataclass(frozen=True, slots=True)
class SlowCloseAttributes:
    delay: int = 0  # ms


class SlowCloseToxic(Toxic[SlowCloseAttributes]):
    type_name: ClassVar[str] = "slow_close"
    go_name: ClassVar[str] = "SlowCloseToxic"
    Attributes: ClassVar[type[SlowCloseAttributes]] = SlowCloseAttributes

    def eof_time(self, t: float, ctx: LinkContext, st: ToxicState) -> float:
        delay = self.attrs.delay
        self.report(ctx, st, FaultAction.EOF_DELAYED, st.offset, delay_ms=delay)
        return max(t, ctx.now()) + delay / 1000.0
