"""Durations ("300s", "5m", 1.5) and sizes ("64KiB", "1MB", 4096) as written in scenarios."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_BYTES = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
    None: 1,
}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string with ms/s/m/h; ValueError when it is neither."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative ({value})")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration like 300s, 5m or 250ms, got {value!r}")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_size(value: object) -> int:
    """Bytes from a number or a string with B/KB/KiB/MB/MiB/GB/GiB."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 64KiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative ({value})")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size like 64KiB or 1MB, got {value!r}")
    return int(float(match.group(1)) * _BYTES[match.group(2)])
