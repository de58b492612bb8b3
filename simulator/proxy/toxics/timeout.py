"""timeout: drops all data and closes the connection `timeout` ms after the toxic starts.

0 holds the connection open forever. Removing the toxic closes the affected connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from netfault.simulator.proxy.toxics.base import Chunk, LinkContext, Toxic, ToxicState


@dataclass(frozen=True, slots=True)
class TimeoutAttributes:
    timeout: int = 0  # ms; 0 never closes


class TimeoutToxic(Toxic[TimeoutAttributes]):
    type_name: ClassVar[str] = "timeout"
    go_name: ClassVar[str] = "TimeoutToxic"
    Attributes: ClassVar[type[TimeoutAttributes]] = TimeoutAttributes

    def start(self, ctx: LinkContext, st: ToxicState) -> None:
        st.cancel_timer()
        timeout = self.attrs.timeout
        if timeout > 0:
            st.timer = ctx.call_at(ctx.now() + timeout / 1000.0, ctx.close)

    def removed(self, ctx: LinkContext, st: ToxicState) -> None:
        ctx.close()

    def transform(self, chunk: Chunk, ctx: LinkContext, st: ToxicState) -> list[Chunk]:
        return []
