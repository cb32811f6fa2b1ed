"""Fault switches the test flips on the fake; the server and the streams consult them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    fail_next: int = 0  # REST requests answered with ``fail_status``
    fail_status: int = 503
    throttle_next: int = 0  # REST requests answered 429 + Retry-After
    throttle_retry_after: int = 1
    ack_delay: float = 0.0  # seconds the next order ack is held (the order is live meanwhile)
    hold_ack: bool = False  # the next order ack waits until the test releases it
    lose_next_user: int = 0  # user-data messages not sent
    duplicate_next_user: int = 0  # user-data messages sent twice
    clock_skew_ms: int = 0  # added to the server clock
    lose_next_depth: int = 0  # depth diffs not sent (their update ids are skipped: a gap)

    def take_fail(self) -> int | None:
        if self.fail_next:
            self.fail_next -= 1
            return self.fail_status
        return None

    def take_throttle(self) -> bool:
        if self.throttle_next:
            self.throttle_next -= 1
            return True
        return False

    def take_ack_delay(self) -> float:
        delay, self.ack_delay = self.ack_delay, 0.0
        return delay

    def take_ack_hold(self) -> bool:
        hold, self.hold_ack = self.hold_ack, False
        return hold

    def take_lost_depth(self) -> bool:
        if self.lose_next_depth:
            self.lose_next_depth -= 1
            return True
        return False

    def user_copies(self) -> int:
        """How many times the next user-data message goes out: 0 (lost), 1, or 2 (duplicated)."""
        if self.lose_next_user:
            self.lose_next_user -= 1
            return 0
        if self.duplicate_next_user:
            self.duplicate_next_user -= 1
            return 2
        return 1
