"""Delays before retrying something that failed for a while: the log, a venue's socket or API."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Delays before retrying: `first_s` doubling to `max_s`, each shortened by up to `jitter` (a
    fraction) at random so that many clients do not retry in step."""

    first_s: float = 1.0
    max_s: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry number `attempt` (1 for the first)."""
        base = min(self.max_s, self.first_s * 2.0 ** max(0, attempt - 1))
        draw: float = (rng or random).random()  # nosec B311 # jitter, not a secret
        return base * (1 - self.jitter * draw)
