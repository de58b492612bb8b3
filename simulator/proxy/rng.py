"""Seeded randomness keyed on what happened, never on when."""

from __future__ import annotations

import hashlib
import random


def derive(seed: int, *keys: object) -> int:
    """A 64-bit value fixed by the seed and the keys (proxy, connection, direction, offset...)."""
    text = "\x1f".join([str(seed), *(str(k) for k in keys)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def uniform(seed: int, *keys: object) -> float:
    """A float in [0, 1) fixed by the seed and the keys."""
    return derive(seed, *keys) / 2.0**64


def generator(seed: int, *keys: object) -> random.Random:
    """A PRNG whose whole sequence is fixed by the seed and the keys."""
    return random.Random(derive(seed, *keys))
