"""Prometheus counters of bytes per proxy and direction, as Toxiproxy's -proxy-metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netfault.simulator.proxy.collection import ProxyCollection

_HELP = {
    "received": "The total bytes received from a proxy",
    "sent": "The total bytes sent to a proxy",
}


def render_metrics(collection: ProxyCollection) -> str:
    """The Prometheus text exposition of every proxy's byte counters."""
    lines: list[str] = []
    for kind, text in _HELP.items():
        metric = f"toxiproxy_proxy_{kind}_bytes_total"
        lines.append(f"# HELP {metric} {text}")
        lines.append(f"# TYPE {metric} counter")
        for name, proxy in sorted(collection.all().items()):
            for direction, counter in proxy.counters.items():
                labels = (
                    f'direction="{direction}",listener="{_esc(proxy.listen)}",'
                    f'proxy="{_esc(name)}",upstream="{_esc(proxy.upstream)}"'
                )
                value = counter.received if kind == "received" else counter.sent
                lines.append(f"{metric}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
