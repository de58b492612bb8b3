"""A toxic attached to a proxy: its name, stream and toxicity around a toxic type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netfault.simulator.proxy.toxics import Toxic


@dataclass(slots=True)
class ToxicSpec:
    """A named toxic on one stream of a proxy, as the API shows it."""

    name: str
    type: str
    stream: str  # as sent by the client; matched case-insensitively
    toxicity: float
    toxic: Toxic[Any]
    version: int = 0  # bumped on every update; part of the toxicity draw's key
    # netfault extension: joins only this many more connections, then leaves the proxy
    connections: int | None = None

    @property
    def direction(self) -> str:
        return self.stream.lower()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": go_number(self.toxicity),
        }
        if self.connections is not None:
            body["connections"] = self.connections
        return body


def go_number(value: float) -> float | int:
    """Go prints a float32 1.0 as `1`; keep that shape in JSON."""
    return int(value) if float(value).is_integer() else value
